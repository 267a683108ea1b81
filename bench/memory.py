#!/usr/bin/env python3
"""Memory cost of an idle runq container against runc, measured in one run.

    python3 bench/memory.py [--rounds 3] [--image busybox:latest] [--mem 256]

For each runtime, starts `sleep 600` detached, waits until it has settled, and reads the container's cgroup
memory usage (what Docker's `docker stats` shows: proxy + QEMU + guest RAM actually touched for runq) and the summed
RSS of its host processes. Prints medians and the runq/runc ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def cgroup_bytes(cid: str) -> int:
    """The container cgroup's memory use (v1 memory.usage_in_bytes or v2 memory.current), -1 if unavailable."""
    pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid], capture_output=True, text=True,
                         check=True).stdout.strip()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    v1 = next((line.split(":", 2)[2] for line in lines if line.split(":")[1:2] == ["memory"]), None)
    v2 = next((line.split("::", 1)[1] for line in lines if line.startswith("0::")), "")
    paths = ([f"/sys/fs/cgroup/memory{v1}/memory.usage_in_bytes"] if v1 else []) + \
        [f"/sys/fs/cgroup{v2}/memory.current"]
    for path in paths:
        try:
            with open(path) as f:
                return int(f.read())
        except OSError:
            continue
    return -1


def rss_bytes(cid: str) -> int:
    pids = subprocess.run(["docker", "top", cid, "-o", "pid"], capture_output=True, text=True,
                          check=True).stdout.split()[1:]
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def measure(runtime: str, image: str, mem: int, settle: float) -> tuple[int, int]:
    cid = subprocess.run(["docker", "run", "-d", "--runtime", runtime, "-e", f"RUNQ_MEM={mem}", image,
                          "sh", "-c", "echo up; sleep 600"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        end = time.monotonic() + 120
        while "up" not in subprocess.run(["docker", "logs", cid], capture_output=True, text=True).stdout:
            if time.monotonic() > end:
                raise SystemExit(f"{runtime}: container did not come up")
            time.sleep(0.2)
        time.sleep(settle)
        return cgroup_bytes(cid), rss_bytes(cid)
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--image", default="busybox:latest")
    ap.add_argument("--runtime", default="runq")
    ap.add_argument("--mem", type=int, default=256, help="RUNQ_MEM for the runq guest (MiB)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds to idle before measuring")
    a = ap.parse_args()
    res: dict[str, list[tuple[int, int]]] = {a.runtime: [], "runc": []}
    for i in range(a.rounds):
        for rt in res:
            res[rt].append(measure(rt, a.image, a.mem, a.settle))
        print(f"round {i + 1}/{a.rounds}: " + "  ".join(
            f"{rt} cgroup {v[-1][0] / 2**20:.1f} MiB rss {v[-1][1] / 2**20:.1f} MiB" for rt, v in res.items()),
            file=sys.stderr)
    med = {rt: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for rt, v in res.items()}
    for rt, (cg, rss) in med.items():
        print(f"{rt:<6} idle container: cgroup memory {cg / 2**20:7.1f} MiB, host RSS {rss / 2**20:7.1f} MiB")
    q, c = med[a.runtime], med["runc"]
    print(f"runq/runc: cgroup {q[0] / max(c[0], 1):.1f}x, RSS {q[1] / max(c[1], 1):.1f}x "
          f"(guest RAM {a.mem} MiB, rounds {a.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

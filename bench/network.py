#!/usr/bin/env python3
"""Throughput between two containers on one user-defined bridge: runq <-> runq against runc <-> runc, in one run.

    python3 bench/network.py [--rounds 3] [--mb 50] [--runtime runq] [--image busybox:latest]

The server container sends MB megabytes of zeros with busybox `nc -l -e dd`; the client container receives them
with `nc -e wc -c` and times the transfer itself (guest /proc/uptime, so boot time is not counted). Prints the
median MB/s of each pair and the ratio runq/runc. Needs root, dockerd, and runq registered with Docker.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import uuid

CLIENT = (
    "for i in $(seq 300); do read s _ < /proc/uptime; nc {server} 5001 -e sh -c 'wc -c > /tmp/n'; "
    "read e _ < /proc/uptime; [ \"$(cat /tmp/n 2>/dev/null)\" = {nbytes} ] && break; sleep 0.2; done; "
    "echo $s $e $(cat /tmp/n)"
)


def docker(*args: str, timeout: int = 600) -> str:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:4])}...: {p.stderr.strip()}")
    return p.stdout


def transfer(runtime: str, image: str, network: str, mb: int) -> float:
    """MB/s of one transfer between two fresh containers of `runtime`."""
    tag = uuid.uuid4().hex[:8]
    server, client = f"runq-bench-s-{tag}", f"runq-bench-c-{tag}"
    nbytes = mb * 1024 * 1024
    try:
        docker("run", "-d", "--runtime", runtime, "--name", server, "--network", network, image,
               "nc", "-l", "-p", "5001", "-e", "dd", "if=/dev/zero", "bs=65536", f"count={mb * 16}")
        out = docker("run", "--rm", "--runtime", runtime, "--name", client, "--network", network, image,
                     "sh", "-c", CLIENT.format(server=server, nbytes=nbytes)).split()
    finally:
        subprocess.run(["docker", "rm", "-f", server], capture_output=True)
    start, end, got = float(out[0]), float(out[1]), int(out[2])
    if got != nbytes:
        raise SystemExit(f"{runtime}: received {got} of {nbytes} bytes")
    return mb / max(end - start, 0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--runtime", default="runq", help="the runq runtime's name in Docker (default: runq)")
    ap.add_argument("--image", default="busybox:latest")
    args = ap.parse_args()
    network = "runq-bench-" + uuid.uuid4().hex[:8]
    docker("network", "create", network)
    results: dict[str, list[float]] = {args.runtime: [], "runc": []}
    try:
        for r in range(args.rounds):
            for runtime in results:  # interleaved, so drift hits both alike
                mbps = transfer(runtime, args.image, network, args.mb)
                results[runtime].append(mbps)
                print(f"round {r + 1}: {runtime:8s} {mbps:8.1f} MB/s", flush=True)
    finally:
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
    q, c = statistics.median(results[args.runtime]), statistics.median(results["runc"])
    print(f"\n{args.mb} MB over one user bridge, median of {args.rounds}:")
    print(f"  runq <-> runq  {q:8.1f} MB/s")
    print(f"  runc <-> runc  {c:8.1f} MB/s")
    print(f"  runq/runc      {q / c:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Nothing leaks: after a batch of containers ends and is removed, no VM process, state dir, mount or node stays."""

from __future__ import annotations

import glob
import subprocess
import time


def qemu_count() -> int:
    return len(subprocess.run(["pgrep", "-f", "qemu-system-x86_64"], capture_output=True, text=True).stdout.split())


def runq_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if "/var/lib/runq" in line or "/run/runq" in line]


def test_batch_of_runs_leaves_nothing_behind(docker):
    before_q, before_m = qemu_count(), runq_mounts()
    before_dirs = set(glob.glob("/run/runq/*/*"))
    for i in range(4):
        assert docker.run("sh", "-c", f"echo {i}").returncode == 0
    assert docker.run("false").returncode == 1
    assert docker.run_opts(["-e", "RUNQ_MEM=bad"], "true").returncode != 0
    name = docker.start_detached("sleep", "1000")
    time.sleep(2)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=True, timeout=60)
    time.sleep(1)
    assert qemu_count() == before_q
    assert runq_mounts() == before_m
    assert set(glob.glob("/run/runq/*/*")) == before_dirs

"""Docker lifecycle verbs on a runq container: top, pause/unpause, restart, wait."""

from __future__ import annotations

import subprocess
import time

from .test_signals import status, wait_for_log


def test_docker_top_lists_the_proxy_and_qemu(docker):
    name = docker.start_detached("sh", "-c", "echo ready; sleep 1000")
    wait_for_log(name, "ready")
    top = subprocess.run(["docker", "top", name], capture_output=True, text=True, timeout=30).stdout
    assert "runq-proxy" in top and "qemu-system-x86_64" in top


def test_pause_and_unpause_freeze_and_thaw_the_vm(docker):
    name = docker.start_detached("sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done")
    wait_for_log(name, "tick3")
    subprocess.run(["docker", "pause", name], check=True, capture_output=True, timeout=30)
    assert status(name).startswith("paused")
    n1 = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout.count("tick")
    time.sleep(1.5)
    n2 = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout.count("tick")
    assert n2 - n1 <= 1
    subprocess.run(["docker", "unpause", name], check=True, capture_output=True, timeout=30)
    wait_for_log(name, f"tick{n2 + 3}")


def test_restart_boots_a_fresh_vm_with_the_same_container(docker):
    name = docker.start_detached("sh", "-c", "echo boot; cat /proc/sys/kernel/random/boot_id; sleep 1000")
    logs = wait_for_log(name, "boot")
    subprocess.run(["docker", "restart", "-t", "1", name], check=True, capture_output=True, timeout=120)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
        if logs.count("boot\n") >= 2 and len(logs.split()) >= 4:
            break
        time.sleep(0.3)
    words = logs.split()
    assert words.count("boot") == 2
    boot_ids = [w for w in words if w != "boot"]
    assert len(set(boot_ids)) == 2  # a new guest kernel each time
    assert status(name).startswith("running")


def test_docker_wait_returns_the_exit_code(docker):
    name = docker.start_detached("sh", "-c", "sleep 1; exit 5")
    p = subprocess.run(["docker", "wait", name], capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "5"

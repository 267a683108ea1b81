"""Signals from Docker reach the workload in the VM; stop, kill and rm -f end the container like runc."""

from __future__ import annotations

import subprocess
import time

import pytest

TRAPS = " ".join(f"trap 'echo got-{s}' {s};" for s in ("TERM", "INT", "HUP", "USR1", "USR2", "QUIT", "CONT"))


def wait_for_log(name: str, text: str, timeout: float = 120) -> str:
    end = time.monotonic() + timeout
    logs = ""
    while time.monotonic() < end:
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
        if text in logs:
            return logs
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not in logs: {logs!r}")


def status(name: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name],
                          capture_output=True, text=True).stdout.strip()


def test_docker_kill_signals_reach_the_workload(docker):
    name = docker.start_detached("sh", "-c", f"{TRAPS} echo ready; while true; do sleep 0.2; done")
    wait_for_log(name, "ready")
    for sig in ("TERM", "INT", "HUP", "USR1", "USR2", "QUIT", "CONT"):
        subprocess.run(["docker", "kill", "-s", sig, name], check=True, capture_output=True)
        wait_for_log(name, f"got-{sig}", timeout=30)


def test_docker_stop_ends_a_trapping_workload_with_its_exit_code(docker):
    name = docker.start_detached("sh", "-c", "trap 'echo bye; exit 7' TERM; echo ready; while true; do sleep 0.2; done")
    wait_for_log(name, "ready")
    subprocess.run(["docker", "stop", "-t", "30", name], check=True, capture_output=True, timeout=60)
    assert status(name) == "exited 7"
    assert "bye" in subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout


def test_docker_stop_kills_a_workload_that_ignores_term(docker):
    name = docker.start_detached("sleep", "1000")
    wait_for_running(name)
    t0 = time.monotonic()
    subprocess.run(["docker", "stop", "-t", "1", name], check=True, capture_output=True, timeout=60)
    assert status(name) == "exited 137"
    assert time.monotonic() - t0 < 30


def wait_for_running(name: str) -> None:
    # `sleep` prints nothing; the proxy is up when docker says running, the guest shortly after.
    end = time.monotonic() + 60
    while time.monotonic() < end and not status(name).startswith("running"):
        time.sleep(0.2)
    time.sleep(1)


def test_docker_rm_force_removes_a_running_container(docker):
    name = docker.start_detached("sleep", "1000")
    wait_for_running(name)
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True, timeout=60)
    assert subprocess.run(["docker", "inspect", name], capture_output=True).returncode != 0


@pytest.mark.parametrize("sig", ["KILL", "9"])
def test_docker_kill_sigkill_ends_the_vm(docker, sig):
    name = docker.start_detached("sleep", "1000")
    wait_for_running(name)
    subprocess.run(["docker", "kill", "-s", sig, name], check=True, capture_output=True, timeout=60)
    subprocess.run(["docker", "wait", name], capture_output=True, timeout=60)
    assert status(name) == "exited 137"

"""podman (conmon) drives runq with `--runtime`: exit code, stdin with EOF, stdout."""

from __future__ import annotations

import os
import subprocess

import pytest

from .conftest import IMAGE, ROOT


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    top = tmp_path_factory.mktemp("podman")
    base = ["podman", "--root", str(top / "root"), "--runroot", str(top / "run"), "--cgroup-manager", "cgroupfs",
            "--events-backend", "file", "--runtime", os.path.join(ROOT, "runq")]
    save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
    loaded = subprocess.run(base + ["load", "-q"], stdin=save.stdout, capture_output=True, timeout=180)
    save.wait()
    assert loaded.returncode == 0, loaded.stderr

    def run(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(base + ["run", "--rm", "--network", "none", *args], capture_output=True, timeout=180,
                              **kw)

    yield run
    subprocess.run(base + ["rmi", "-a", "-f"], capture_output=True, timeout=120)
    with open("/proc/self/mountinfo") as f:  # podman bind-mounts its storage onto itself: leave no mount behind
        points = [line.split()[4] for line in f if line.split()[4].startswith(str(top))]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def test_podman_runs_a_command_in_a_vm_with_exit_code_and_stdin(podman):
    with open(os.path.join(ROOT, "kernel/version")) as f:
        guest = f.read().strip()
    p = podman("localhost/" + IMAGE, "sh", "-c", "uname -r; exit 4")
    assert p.stdout.decode().strip() == guest and p.returncode == 4, p.stderr
    p = podman("-i", "localhost/" + IMAGE, "sh", "-c", "wc -l", input=b"a\nb\nc\n")
    assert p.stdout.decode().strip() == "3"

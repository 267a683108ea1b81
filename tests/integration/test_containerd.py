"""containerd (io.containerd.runc.v2 shim) drives runq through `ctr --runc-binary`, without Docker's help."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from .conftest import IMAGE, ROOT

SOCKETS = ("/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock")
NS = "runq-test"
REF = "docker.io/library/" + IMAGE


@pytest.fixture(scope="module")
def ctr():
    sock = next((s for s in SOCKETS if os.path.exists(s)), None)
    assert sock, f"no containerd socket in {SOCKETS}"

    def run(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ctr", "-a", sock, "-n", NS, *args], capture_output=True, timeout=180, **kw)

    save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
    imported = run("images", "import", "-", stdin=save.stdout)
    save.wait()
    assert imported.returncode == 0, imported.stderr
    yield run
    run("images", "rm", REF)


def test_ctr_runs_a_command_in_a_vm_and_passes_its_exit_code(ctr):
    with open(os.path.join(ROOT, "kernel/version")) as f:
        guest = f.read().strip()
    name = "c" + uuid.uuid4().hex[:8]
    p = ctr("run", "--rm", "--runc-binary", os.path.join(ROOT, "runq"), REF, name, "sh", "-c", "uname -r; exit 3")
    assert p.stdout.decode().strip() == guest, p.stderr
    assert p.returncode == 3

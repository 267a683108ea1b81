"""runq as engines call it (runc CLI contract): create/start/state/ps/kill/delete on an OCI bundle, no engine."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from .conftest import IMAGE, ROOT

RUNQ = os.path.join(ROOT, "runq")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundle-rootfs")
    cid = subprocess.run(["docker", "create", IMAGE], capture_output=True, text=True, check=True).stdout.strip()
    try:
        exp = subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(d)], stdin=exp.stdout, check=True)
        exp.wait()
    finally:
        subprocess.run(["docker", "rm", cid], capture_output=True)
    return d


class Runq:
    def __init__(self, tmp_path, rootfs) -> None:
        self.root = str(tmp_path / "state")
        self.log = str(tmp_path / "log.json")
        self.bundle = tmp_path / "bundle"
        self.bundle.mkdir()
        self.id = "contract-" + uuid.uuid4().hex[:8]
        self("spec", "--bundle", str(self.bundle), check=True)  # runc's template config.json
        with open(self.bundle / "config.json") as f:
            spec = json.load(f)
        spec["root"] = {"path": str(rootfs), "readonly": False}
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["sh", "-c", "trap 'echo term; exit 3' TERM; echo up; while true; do sleep 0.2; done"]
        with open(self.bundle / "config.json", "w") as f:
            json.dump(spec, f)

    def __call__(self, *args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
        argv = [RUNQ, "--root", self.root, "--log", self.log, "--log-format", "json", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120, **kw)

    def state(self) -> dict:
        return json.loads(self("state", self.id, check=True).stdout)


@pytest.fixture
def runq(tmp_path, rootfs):
    r = Runq(tmp_path, rootfs)
    yield r
    r("delete", "--force", r.id)


def test_lifecycle_state_ps_kill_delete(runq, tmp_path):
    out = open(tmp_path / "out", "w")
    pidfile = str(tmp_path / "init.pid")
    p = subprocess.run([RUNQ, "--root", runq.root, "--log", runq.log, "--log-format", "json", "create", "--bundle",
                        str(runq.bundle), "--pid-file", pidfile, runq.id], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, timeout=120)
    assert p.returncode == 0, open(tmp_path / "out").read()
    st = runq.state()
    assert st["status"] == "created" and st["id"] == runq.id
    assert st["bundle"] == str(runq.bundle)  # the engine's bundle, not runq's rewritten one
    assert int(open(pidfile).read()) == st["pid"] > 0
    assert runq("start", runq.id).returncode == 0
    assert runq.state()["status"] == "running"
    end = time.monotonic() + 120
    while "up" not in open(tmp_path / "out").read() and time.monotonic() < end:
        time.sleep(0.2)
    pids = json.loads(runq("ps", "--format", "json", runq.id, check=True).stdout)
    assert st["pid"] in pids and len(pids) >= 2  # the proxy and QEMU are host processes of the container
    assert runq("kill", runq.id, "SIGTERM").returncode == 0
    end = time.monotonic() + 60
    while runq.state()["status"] != "stopped" and time.monotonic() < end:
        time.sleep(0.2)
    assert runq.state()["status"] == "stopped"
    assert "term" in open(tmp_path / "out").read()
    k = runq("kill", runq.id, "9")
    assert k.returncode != 0 and "container not running" in k.stderr
    assert runq("delete", runq.id).returncode == 0
    s = runq("state", runq.id)
    assert s.returncode != 0 and "container does not exist" in s.stderr
    assert any(json.loads(line).get("msg") == "container does not exist" for line in open(runq.log))


def test_delete_force_on_running_and_on_missing_container(runq, tmp_path):
    with open(tmp_path / "out", "w") as out:  # the container keeps its stdio: no pipes we would wait on
        p = subprocess.run([RUNQ, "--root", runq.root, "create", "--bundle", str(runq.bundle), runq.id],
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=120)
    assert p.returncode == 0, open(tmp_path / "out").read()
    assert runq("start", runq.id).returncode == 0
    assert runq("delete", runq.id).returncode != 0  # running: refused without --force
    assert runq("delete", "--force", runq.id).returncode == 0
    assert runq("delete", "--force", runq.id).returncode == 0  # already gone: still 0, as with runc
    assert runq("state", runq.id).returncode != 0


def test_bad_flag_is_one_line_on_stderr_and_an_error_in_the_log(runq):
    p = runq("--mem", "12", "create", "--bundle", str(runq.bundle), runq.id)
    assert p.returncode == 1
    assert p.stderr.strip() == "--mem: invalid value '12': want an integer >= 64 MiB"
    lines = [json.loads(line) for line in open(runq.log)]
    assert lines[-1]["level"] == "error" and lines[-1]["msg"] == p.stderr.strip()


def test_version_and_features(runq):
    v = runq("--version", check=True).stdout.splitlines()
    assert v[0].startswith("runq version ") and v[1].startswith("commit: ") and v[2].startswith("spec: 1.")
    assert "ociVersionMin" in runq("features", check=True).stdout


def test_exec_is_refused_with_a_clear_message(runq):
    p = runq("exec", "--process", "/dev/null", runq.id)
    assert p.returncode != 0 and "not supported yet" in p.stderr


def test_q35_machine_boots_with_virtio_pci(runq, tmp_path):
    spec_path = runq.bundle / "config.json"
    spec = json.loads(spec_path.read_text())
    spec["process"]["args"] = ["sh", "-c", "ls /sys/bus/pci/devices | wc -l; uname -r"]
    spec_path.write_text(json.dumps(spec))
    out_path = tmp_path / "out"
    with open(out_path, "w") as out:
        p = subprocess.run([RUNQ, "--machine", "q35", "--root", runq.root, "run", "--bundle", str(runq.bundle),
                            runq.id], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=180)
    lines = out_path.read_text().split()
    assert p.returncode == 0, out_path.read_text()
    assert int(lines[0]) > 0  # PCI devices exist: not a microvm
    with open(os.path.join(ROOT, "kernel/version")) as f:
        assert lines[1] == f.read().strip()

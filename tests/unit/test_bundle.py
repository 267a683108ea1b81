"""Bundle rewrite: what runc runs for a runq container, and what travels to the guest (runq.bundle)."""

import pytest

import os

from runq import accel, bundle, statedir
from runq.config import ConfigError, RuntimeOptions, container_config


@pytest.fixture(autouse=True)
def no_host_probe(monkeypatch):
    monkeypatch.setattr(accel, "kvm_status", lambda *a, **k: (False, "test host"))
    monkeypatch.setattr(accel, "tsc_khz", lambda: 2600000)


def docker_spec(**over):
    s = {
        "ociVersion": "1.0.2-dev",
        "process": {"terminal": False, "user": {"uid": 1000, "gid": 1000, "additionalGids": [100]},
                    "args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin", "RUNQ_MEM=300"], "cwd": "/work",
                    "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 2345, "soft": 1234}],
                    "apparmorProfile": "docker-default", "noNewPrivileges": True},
        "root": {"path": "rootfs"},
        "hostname": "h1",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]},
                   {"destination": "/etc/hosts", "type": "bind", "source": "/x/hosts", "options": ["rbind"]}],
        "linux": {"maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
                  "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                              "syscalls": [{"names": ["read", "write", "exit"], "action": "SCMP_ACT_ALLOW"}]},
                  "sysctl": {"net.ipv4.ip_forward": "1"}, "namespaces": [{"type": "pid"}]},
    }
    s.update(over)
    return s


def rewrite(spec, opts=RuntimeOptions()):
    cfg = container_config(opts, spec, "a" * 64)
    return bundle.rewrite(spec, cfg, "/bundle", "/var/lib/runq", "/run/runq/t/" + "a" * 64)


def test_container_process_becomes_the_proxy_running_the_bundled_python():
    new, payload = rewrite(docker_spec())
    args = new["process"]["args"]
    assert args[0] == "/.runq/py/lib/ld-linux-x86-64.so.2"
    assert "/.runq/lib/runq-proxy" in args and args[-1] == "/.runq/run/proxy.json"
    assert new["process"]["user"] == {"uid": 0, "gid": 0}
    assert "CAP_SYS_ADMIN" in new["process"]["capabilities"]["bounding"]


def test_original_process_travels_to_the_guest():
    _, p = rewrite(docker_spec())
    g = p.guest
    assert g.args == ["sh", "-c", "echo hi"] and "RUNQ_MEM=300" in g.env
    assert (g.uid, g.gid, g.additional_gids, g.cwd, g.hostname) == (1000, 1000, [100], "/work", "h1")
    assert ("RLIMIT_NOFILE", 1234, 2345) in g.rlimits
    assert g.capabilities["bounding"] == ["CAP_CHOWN"] and g.no_new_privileges
    assert g.sysctl == {"net.ipv4.ip_forward": "1"}
    assert g.masked_paths == ["/proc/kcore"]
    assert g.seccomp_bpf and len(bytes.fromhex(g.seccomp_bpf)) % 8 == 0  # compiled on the host
    assert p.vm.mem == 300


def test_seccomp_sysctl_rlimits_and_apparmor_leave_the_host_container():
    new, _ = rewrite(docker_spec())
    assert "seccomp" not in new["linux"] and "sysctl" not in new["linux"]
    assert "rlimits" not in new["process"] and "apparmorProfile" not in new["process"]
    assert new["linux"]["namespaces"] == [{"type": "pid"}]  # namespaces stay with runc


def test_tmpfs_mounts_move_into_the_guest_and_runtime_root_is_bound_read_only():
    new, p = rewrite(docker_spec(), RuntimeOptions(tmpfs=("/tmp", "/scratch")))
    dests = [m["destination"] for m in new["mounts"]]
    assert "/scratch" not in dests and "/etc/hosts" in dests
    assert ("/scratch", "nosuid,size=1m") in p.guest.tmpfs and ("/tmp", "nodev,nosuid") in p.guest.tmpfs
    assert len([t for t in p.guest.tmpfs if t[0] == "/scratch"]) == 1
    root_mount = next(m for m in new["mounts"] if m["destination"] == "/.runq")
    assert root_mount["source"] == "/var/lib/runq" and "ro" in root_mount["options"]
    assert new["root"]["path"] == "/bundle/rootfs"


def test_kvm_adds_dev_kvm_and_tcg_does_not():
    new, _ = rewrite(docker_spec(), RuntimeOptions(accel="kvm"))
    assert any(d["path"] == "/dev/kvm" for d in new["linux"]["devices"])
    new, _ = rewrite(docker_spec(), RuntimeOptions(accel="tcg"))
    assert not any(d.get("path") == "/dev/kvm" for d in new["linux"].get("devices", []))


@pytest.mark.parametrize("change,field", [
    ({"ociVersion": "0.9"}, "ociVersion"),
    ({"linux": {"maskedPaths": []}}, "privileged"),
    ({"linux": {"maskedPaths": ["/x"], "devices": [{"path": "/dev/mem", "type": "c"}]}}, "privileged"),
    ({"linux": {"maskedPaths": ["/x"], "devices": [{"path": "/dev/sda", "type": "b"}]}}, "linux.devices"),
    ({"mounts": [{"destination": "/.runq/x", "type": "bind", "source": "/"}]}, "mounts"),
    ({"linux": {"maskedPaths": ["/x"], "seccomp": {"defaultAction": "SCMP_ACT_DANCE"}}}, "linux.seccomp"),
])
def test_unsupported_specs_are_refused_naming_the_field(change, field):
    with pytest.raises(ConfigError) as e:
        rewrite(docker_spec(**change))
    assert e.value.field == field


def test_payload_round_trips_through_json():
    _, p = rewrite(docker_spec())
    assert bundle.ProxyPayload.from_json(p.to_json()) == p


def test_state_dir_depends_on_runc_root_and_id():
    a = statedir.path("/run/docker/runtime-runq/moby", "x")
    assert a != statedir.path("/run/containerd/runc/k8s.io", "x")
    assert a.startswith("/run/runq/") and a.endswith("/x")


def test_state_dir_removal_takes_files_and_subdirs(tmp_path, monkeypatch):
    monkeypatch.setattr(statedir, "STATE_BASE", str(tmp_path))
    d = statedir.path("/root", "c1")
    os.makedirs(os.path.join(d, "run"))
    open(os.path.join(d, "run", "proxy.json"), "w").close()
    statedir.remove("/root", "c1")
    assert not os.path.exists(d)

"""Bundle rewrite: turn the engine's OCI config into the one runc runs, plus the proxy's payload.

runc keeps namespaces, cgroups, hooks, mounts and the lifecycle. Its container process becomes the runq proxy
(which runs QEMU); the original OCI process travels to the guest inside :class:`ProxyPayload`.
"""

from __future__ import annotations

import copy
import json
import os
import resource
from dataclasses import asdict, dataclass
from typing import Any

from . import layout, linux
from .statedir import path as state_dir  # noqa: F401 - re-exported for callers
from .channel import GuestConfig
from .config import ContainerConfig, DNSConfig, VMConfig
from .errors import ConfigError

PROXY_CAPS = [
    "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_CHROOT", "CAP_NET_ADMIN", "CAP_SYS_ADMIN",
]
RLIMITS = linux.RLIMITS
# Limits a runc container inherits from its caller when the spec does not set them; the VM's workload gets the same.
INHERITED_RLIMITS = ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_MEMLOCK", "RLIMIT_STACK")
PROXY_RUN = layout.CONTAINER_MOUNT + "/run"  # the state dir's run/ inside the container (before pivot)
DEFAULT_SHM = 64 * 1024 * 1024


@dataclass(frozen=True)
class ProxyPayload:
    """What the proxy reads at start (state-dir file bind-mounted into the container)."""

    vm: VMConfig
    guest: GuestConfig
    dns: DNSConfig
    log_fd: int = -1
    network: bool = False  # the container has its own network namespace: its links become guest NICs
    net_mode: str = "auto"  # auto | macvtap | tap (RUNQ_NET_MODE)

    def to_json(self) -> str:
        return json.dumps({"vm": asdict(self.vm), "guest": self.guest.as_dict(), "dns": asdict(self.dns),
                           "log_fd": self.log_fd, "network": self.network, "net_mode": self.net_mode})

    @classmethod
    def from_json(cls, text: str) -> "ProxyPayload":
        raw = json.loads(text)
        dns = raw["dns"]
        return cls(
            vm=VMConfig(**raw["vm"]),
            guest=GuestConfig.from_dict(raw["guest"]),
            dns=DNSConfig(tuple(dns["servers"]), tuple(dns["options"]), tuple(dns["search"]), dns["preserve"]),
            log_fd=raw["log_fd"],
            network=bool(raw.get("network", False)),
            net_mode=str(raw.get("net_mode", "auto")),
        )


def check_spec(spec: dict[str, Any]) -> None:
    """Refuse what runq cannot run, with runc-style messages."""
    version = str(spec.get("ociVersion", ""))
    if not version.startswith("1."):
        raise ConfigError("ociVersion", version, "unsupported spec, need 1.x")
    if not spec.get("process"):
        raise ConfigError("process", None, "the spec has no process to run")
    linux = spec.get("linux") or {}
    if not linux.get("maskedPaths") or any(d.get("path") == "/dev/mem" for d in linux.get("devices") or []):
        raise ConfigError("privileged", True, "privileged mode is not supported by runq")
    for d in linux.get("devices") or []:
        if d.get("type") == "b" and not str(d.get("path", "")).startswith("/dev/runq/"):
            raise ConfigError("linux.devices", d.get("path"), "block devices must be mapped below /dev/runq/")
    for m in spec.get("mounts") or []:
        dest = os.path.normpath(str(m.get("destination", "/")))
        if dest == layout.CONTAINER_MOUNT or dest.startswith(layout.CONTAINER_MOUNT + "/"):
            raise ConfigError("mounts", dest, f"invalid mount point: {layout.CONTAINER_MOUNT} is reserved for runq")


def _shm_size(spec: dict[str, Any]) -> int:
    for m in spec.get("mounts") or []:
        if m.get("destination") != "/dev/shm":
            continue
        for opt in m.get("options") or []:
            if opt.startswith("size="):
                return parse_size(opt[5:])
        src = m.get("source")
        if m.get("type") == "bind" or "bind" in (m.get("options") or []) or "rbind" in (m.get("options") or []):
            try:
                st = os.statvfs(src)
                return st.f_blocks * st.f_frsize
            except (OSError, TypeError):
                pass
    return DEFAULT_SHM


def parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower()
    if t and t[-1] in units:
        return int(t[:-1]) * units[t[-1]]
    return int(t)


def _rlimits(process: dict[str, Any]) -> list[tuple[str, int, int]]:
    out: dict[str, tuple[str, int, int]] = {}
    for name in INHERITED_RLIMITS:
        soft, hard = resource.getrlimit(RLIMITS[name])
        out[name] = (name, soft, hard)
    for rl in process.get("rlimits") or []:
        name = str(rl.get("type", ""))
        if name not in RLIMITS:
            raise ConfigError("process.rlimits", name, "unknown rlimit type")
        out[name] = (name, int(rl.get("soft", 0)), int(rl.get("hard", 0)))
    return list(out.values())


def rewrite(spec: dict[str, Any], cfg: ContainerConfig, bundle: str, runtime_root: str, sdir: str,
            log_fd: int = -1) -> tuple[dict[str, Any], ProxyPayload]:
    """Return (spec for runc, payload for the proxy). Pure apart from reading host rlimits and /dev/shm size."""
    check_spec(spec)
    new = copy.deepcopy(spec)
    process = new["process"]
    linux = new.setdefault("linux", {})

    # Mounts: tmpfs (other than /dev) move into the guest; everything else stays with runc.
    tmpfs: list[tuple[str, str]] = []
    kept = []
    for m in new.get("mounts") or []:
        if m.get("type") == "tmpfs" and m.get("destination") not in ("/dev",):
            tmpfs.append((m["destination"], ",".join(m.get("options") or [])))
        else:
            kept.append(m)
    have = {t[0] for t in tmpfs}
    for d in cfg.tmpfs_dirs:
        if d not in have:
            tmpfs.append((d, "nodev,nosuid"))
    kept.append({"destination": layout.CONTAINER_MOUNT, "type": "bind", "source": runtime_root,
                 "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"]})
    kept.append({"destination": PROXY_RUN, "type": "bind", "source": os.path.join(sdir, "run"),
                 "options": ["rbind", "rw", "nosuid", "nodev", "noexec", "rprivate"]})
    new["mounts"] = kept

    root = new.setdefault("root", {"path": "rootfs"})
    if not os.path.isabs(root.get("path", "rootfs")):
        root["path"] = os.path.join(bundle, root.get("path", "rootfs"))
    root["path"] = os.path.realpath(root["path"])  # runc refuses a rootfs path through a symlink (/var/run)

    user = process.get("user") or {}
    caps = process.get("capabilities") or {}
    guest = GuestConfig(
        args=list(process.get("args") or []),
        env=list(process.get("env") or []),
        cwd=process.get("cwd") or "/",
        uid=int(user.get("uid", 0)),
        gid=int(user.get("gid", 0)),
        additional_gids=[int(g) for g in user.get("additionalGids") or []],
        umask=user.get("umask"),
        terminal=bool(process.get("terminal")),
        hostname=str(new.get("hostname") or ""),
        rlimits=_rlimits(process),
        capabilities={k: list(v or []) for k, v in caps.items()},
        no_new_privileges=bool(process.get("noNewPrivileges")),
        sysctl=dict(linux.get("sysctl") or {}),
        tmpfs=tmpfs,
        cache9p=cfg.vm.cache9p,
        readonly_root=bool(root.get("readonly")),
        masked_paths=list(linux.get("maskedPaths") or []),
        readonly_paths=list(linux.get("readonlyPaths") or []),
        shm_size=_shm_size(spec),
        seccomp_bpf=_seccomp_bpf(linux.get("seccomp"), runtime_root),
        runqenv=cfg.runqenv,
        systemd=cfg.systemd,
        debug=cfg.vm.debug,
    )
    if not guest.args:
        raise ConfigError("process.args", [], "the container has no command to run")

    # The container's process becomes the proxy.
    launcher = os.path.join(layout.CONTAINER_MOUNT, layout.PROXY_LAUNCHER)
    argv = layout.python_argv(layout.CONTAINER_MOUNT, launcher)
    argv.insert(argv.index("-S"), "-I")
    process["args"] = argv + ["--name", cfg.vm.name, os.path.join(PROXY_RUN, "proxy.json")]
    process["env"] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "RUNQ_PROXY=1"]
    process["cwd"] = "/"
    process["user"] = {"uid": 0, "gid": 0}
    process["capabilities"] = {k: list(PROXY_CAPS) for k in ("bounding", "effective", "permitted")}
    process.pop("rlimits", None)
    process.pop("apparmorProfile", None)
    process.pop("selinuxLabel", None)
    linux.pop("seccomp", None)
    linux.pop("sysctl", None)

    if cfg.vm.accel == "kvm":
        _add_char_device(linux, "/dev/kvm", 10, 232)

    network = own_netns(linux)
    if network:
        # The proxy attaches the container's links to the VM: macvtap char devices (major from /proc/devices),
        # or /dev/net/tun where macvtap is missing. It makes private nodes itself, so only the cgroup rule is needed.
        major = macvtap_major()
        if major:
            _allow_char(linux, major, None)
        _allow_char(linux, 10, 200)

    payload = ProxyPayload(vm=cfg.vm, guest=guest, dns=cfg.dns, log_fd=log_fd, network=network,
                           net_mode=cfg.net_mode)
    return new, payload


def own_netns(linux: dict[str, Any]) -> bool:
    """True when runc gives the container a network namespace of its own (not the host's, not another one's).

    Docker's bridge/user/macvlan/none networks: a network namespace without a path. --network host: none at all.
    --network container:X: a path (that namespace's links belong to X, so runq leaves them alone).
    """
    return any(ns.get("type") == "network" and not ns.get("path") for ns in linux.get("namespaces") or [])


def macvtap_major(proc_devices: str = "/proc/devices") -> int:
    """The macvtap char major, loading the module (a throwaway macvtap) if the kernel has not registered it yet.

    0 when macvtap is unavailable: the proxy then falls back to a tap device.
    """
    major = _char_major(proc_devices, "macvtap")
    if major:
        return major
    try:
        from .proxy.network import load_macvtap
        load_macvtap()
    except Exception:  # noqa: BLE001 - no macvtap: the tap fallback needs only /dev/net/tun
        return 0
    return _char_major(proc_devices, "macvtap")


def _char_major(proc_devices: str, name: str) -> int:
    try:
        with open(proc_devices) as f:
            text = f.read()
    except OSError:
        return 0
    section = text.split("Block devices:")[0]
    for line in section.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == name and parts[0].isdigit():
            return int(parts[0])
    return 0


def _allow_char(linux: dict[str, Any], major: int, minor: int | None) -> None:
    rule: dict[str, Any] = {"allow": True, "type": "c", "major": major, "access": "rwm"}
    if minor is not None:
        rule["minor"] = minor
    linux.setdefault("resources", {}).setdefault("devices", []).append(rule)


def _seccomp_bpf(profile: dict[str, Any] | None, runtime_root: str) -> str:
    """The profile as BPF (hex) for the guest, compiled here with the runtime root's libseccomp (host's as fallback)."""
    if not profile:
        return ""
    from .guest import seccomp

    try:
        lib = seccomp.library(os.path.join(runtime_root, layout.PY_LIB, "libseccomp.so.2"))
    except OSError:
        lib = seccomp.library()
    try:
        return seccomp.compile_bpf(profile, lib).hex()
    except seccomp.SeccompError as e:
        raise ConfigError("linux.seccomp", "profile", str(e)) from None


def _add_char_device(linux: dict[str, Any], path: str, major: int, minor: int) -> None:
    devices = linux.setdefault("devices", [])
    if not any(d.get("path") == path for d in devices):
        devices.append({"path": path, "type": "c", "major": major, "minor": minor, "fileMode": 0o600,
                        "uid": 0, "gid": 0})
    _allow_char(linux, major, minor)

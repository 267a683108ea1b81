"""The one place where runq configuration is parsed and validated.

Sources, lowest priority first: built-in defaults, runtime flags (daemon.json ``runtimeArgs``), the container's
``RUNQ_*`` environment variables (from the OCI spec), and the OCI spec itself. The result is one frozen
:class:`ContainerConfig`; every error is a :class:`ConfigError` naming the field and the bad value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from . import accel as accel_mod
from .argv import BOOL_FLAGS, VALUE_FLAGS, split_global
from .errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

MIN_MEM = 64
CACHE_MODES = ("none", "loose", "fscache", "mmap")
ACCELS = ("auto", "kvm", "tcg")
MACHINES = ("microvm", "q35", "pc")
NET_MODES = ("auto", "macvtap", "tap")
TRUE_WORDS = ("1", "on", "yes", "true")
DEFAULT_CPU = 1
DEFAULT_MEM = 256
# Tolerates "host", "host,rtm=off", "Skylake-Server,-hle,+pcid".
_CPUARGS_RE = re.compile(r"^[A-Za-z0-9_.+=-]+(,[A-Za-z0-9_.+=-]+)*$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_SEARCH_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_DNSOPT_RE = re.compile(r"^[A-Za-z0-9_-]+(:[0-9]+)?$")


def to_bool(value: str) -> bool:
    """runq's boolean words: 1|on|yes|true (case-insensitive, trimmed) are true, everything else false."""
    return value.strip().lower() in TRUE_WORDS


def _int_at_least(fieldname: str, value: str | int, low: int, unit: str = "") -> int:
    try:
        n = int(str(value).strip(), 10)
    except ValueError:
        raise ConfigError(fieldname, value, f"want an integer >= {low}{unit}") from None
    if n < low:
        raise ConfigError(fieldname, value, f"want an integer >= {low}{unit}")
    return n


def parse_cache(fieldname: str, value: str) -> str:
    v = value.strip()
    if v not in CACHE_MODES:
        raise ConfigError(fieldname, value, "want one of " + "|".join(CACHE_MODES))
    return v


def parse_cpuargs(fieldname: str, value: str) -> str:
    v = value.replace(" ", "").strip(",")
    if not v or not _CPUARGS_RE.match(v):
        raise ConfigError(fieldname, value, "want a QEMU -cpu value such as host or host,rtm=off")
    return v


def parse_dns_servers(fieldname: str, value: str) -> tuple[str, ...]:
    servers = tuple(s.strip() for s in value.split(",") if s.strip())
    for s in servers:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            if not _HOSTNAME_RE.match(s):
                raise ConfigError(fieldname, value, "want a comma list of IP addresses or host names") from None
    return servers


def parse_dns_words(fieldname: str, value: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    words = tuple(w for w in re.split(r"[\s,]+", value.strip()) if w)
    for w in words:
        if not pattern.match(w):
            raise ConfigError(fieldname, value, what)
    return words


def parse_tmpfs_dirs(fieldname: str, value: str) -> tuple[str, ...]:
    dirs = tuple(d.strip() for d in value.split(",") if d.strip())
    for d in dirs:
        if not d.startswith("/") or "\x00" in d or ".." in d.split("/"):
            raise ConfigError(fieldname, value, "want a comma list of absolute directories")
    return dirs


@dataclass(frozen=True)
class RuntimeOptions:
    """Runtime-wide flags: runq's own (daemon.json runtimeArgs) plus runc's global flags we pass on."""

    cpu: int = DEFAULT_CPU
    mem: int = DEFAULT_MEM
    dns: tuple[str, ...] = ()
    dns_opts: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_preserve: bool = False
    tmpfs: tuple[str, ...] = ()
    cache9p: str = "mmap"
    cpuargs: str = "host"
    noexec: bool = False
    runqenv: bool = False
    nestedvm: bool = False
    accel: str = "auto"
    machine: str = "microvm"
    runc: str = ""
    runq_root: str = ""
    boot_timeout: int = 0  # seconds; 0 = derived from accel and memory
    # runc's global flags
    root: str = ""
    log: str = ""
    log_format: str = "text"
    debug: bool = False
    systemd_cgroup: bool = False
    rootless: str = ""


def _set_accel(v: str) -> str:
    if v not in ACCELS:
        raise ConfigError("--accel", v, "want one of " + "|".join(ACCELS))
    return v


def _set_machine(v: str) -> str:
    if v not in MACHINES:
        raise ConfigError("--machine", v, "want one of " + "|".join(MACHINES))
    return v


def _set_log_format(v: str) -> str:
    if v not in ("text", "json"):
        raise ConfigError("--log-format", v, "want text or json")
    return v


# Validation of global flag values, by RuntimeOptions field (fields not listed are free strings).
PARSERS: dict[str, Callable[[str], Any]] = {
    "cpu": lambda v: _int_at_least("--cpu", v, 1),
    "mem": lambda v: _int_at_least("--mem", v, MIN_MEM, " MiB"),
    "dns": lambda v: parse_dns_servers("--dns", v),
    "dns_opts": lambda v: parse_dns_words("--dns-opts", v, _DNSOPT_RE,
                                          "want resolv.conf options such as ndots:2,timeout:1"),
    "dns_search": lambda v: parse_dns_words("--dns-search", v, _SEARCH_RE, "want a list of domain names"),
    "tmpfs": lambda v: parse_tmpfs_dirs("--tmpfs", v),
    "cache9p": lambda v: parse_cache("--9pcache", v),
    "cpuargs": lambda v: parse_cpuargs("--cpuargs", v),
    "accel": _set_accel,
    "machine": _set_machine,
    "boot_timeout": lambda v: _int_at_least("--boot-timeout", v, 1, " seconds"),
    "log_format": _set_log_format,
}
_BOOL_FIELDS = set(BOOL_FLAGS.values())
assert set(PARSERS) <= set(VALUE_FLAGS.values())


def options_from_flags(raw: dict[str, str | bool]) -> RuntimeOptions:
    """Validate the raw global flags (runq.argv.split_global) into RuntimeOptions."""
    values: dict[str, Any] = {}
    for fieldname, value in raw.items():
        if fieldname in _BOOL_FIELDS:
            values[fieldname] = bool(value)
        elif isinstance(value, str):
            values[fieldname] = PARSERS[fieldname](value) if fieldname in PARSERS else value
    return RuntimeOptions(**values)


def parse_global_flags(argv: list[str]) -> tuple[RuntimeOptions, list[str]]:
    """Parse and validate leading global flags; return the options and the rest (command and arguments)."""
    raw, rest = split_global(argv)
    return options_from_flags(raw), rest


# ---------------------------------------------------------------------------------------------------------------
# Per-container configuration


@dataclass(frozen=True)
class VMConfig:
    """Everything that shapes the QEMU command line. Frozen and validated; QEMU argv is built from it alone."""

    name: str
    cpus: int
    mem: int
    accel: str  # kvm | tcg (resolved, never auto)
    accel_reason: str
    cpuargs: str
    machine: str
    nestedvm: bool
    cache9p: str
    tsc_khz: int
    debug: bool
    boot_timeout: int

    def __post_init__(self) -> None:
        if self.accel not in ("kvm", "tcg"):
            raise ConfigError("accel", self.accel, "want kvm or tcg after resolution")
        if self.cpus < 1:
            raise ConfigError("cpus", self.cpus, "want >= 1")
        if self.mem < MIN_MEM:
            raise ConfigError("mem", self.mem, f"want >= {MIN_MEM} MiB")
        if self.machine not in MACHINES:
            raise ConfigError("machine", self.machine, "want one of " + "|".join(MACHINES))
        if self.cache9p not in CACHE_MODES:
            raise ConfigError("cache9p", self.cache9p, "want one of " + "|".join(CACHE_MODES))


@dataclass(frozen=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    preserve: bool = True  # keep Docker's resolv.conf unless runq DNS settings are given


@dataclass(frozen=True)
class ContainerConfig:
    vm: VMConfig
    dns: DNSConfig
    noexec: bool
    runqenv: bool
    systemd: bool
    tmpfs_dirs: tuple[str, ...] = field(default=())
    net_mode: str = "auto"  # how container links reach the guest: auto (macvtap, else tap), macvtap, tap


def _env_map(env: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def resolve_machine(requested: str, available: list[str] | None) -> str:
    """microvm where QEMU has it; otherwise the first of q35, pc that it has."""
    if available is None or requested in available:
        return requested
    for m in ("q35", "pc"):
        if m in available:
            return m
    raise ConfigError("--machine", requested, "this QEMU offers none of microvm, q35, pc")


def container_config(opts: RuntimeOptions, spec: dict[str, Any], container_id: str,
                     machines: list[str] | None = None) -> ContainerConfig:
    """Combine runtime flags with the container's RUNQ_* environment into one validated config.

    `machines`: the machine types the bundled QEMU offers (None: unknown, take the request as is).
    """
    env = _env_map((spec.get("process") or {}).get("env") or [])
    cpus = opts.cpu
    mem = opts.mem
    if "RUNQ_CPU" in env:
        cpus = _int_at_least("RUNQ_CPU", env["RUNQ_CPU"], 1)
    if "RUNQ_MEM" in env:
        mem = _int_at_least("RUNQ_MEM", env["RUNQ_MEM"], MIN_MEM, " MiB")
    cache9p = parse_cache("RUNQ_9PCACHE", env["RUNQ_9PCACHE"]) if "RUNQ_9PCACHE" in env else opts.cache9p
    cpuargs = parse_cpuargs("RUNQ_CPUARGS", env["RUNQ_CPUARGS"]) if "RUNQ_CPUARGS" in env else opts.cpuargs
    accel_req = opts.accel
    if "RUNQ_ACCEL" in env:
        accel_req = env["RUNQ_ACCEL"].strip()
        if accel_req not in ACCELS:
            raise ConfigError("RUNQ_ACCEL", env["RUNQ_ACCEL"], "want one of " + "|".join(ACCELS))
    accel, reason = accel_mod.resolve(accel_req)

    servers, options, search = opts.dns, opts.dns_opts, opts.dns_search
    given = bool(servers or options or search)
    if "RUNQ_DNS" in env:
        servers, given = parse_dns_servers("RUNQ_DNS", env["RUNQ_DNS"]), True
    if "RUNQ_DNS_OPTS" in env:
        options = parse_dns_words("RUNQ_DNS_OPTS", env["RUNQ_DNS_OPTS"], _DNSOPT_RE,
                                  "want resolv.conf options such as ndots:2,timeout:1")
        given = True
    if "RUNQ_DNS_SEARCH" in env:
        search = parse_dns_words("RUNQ_DNS_SEARCH", env["RUNQ_DNS_SEARCH"], _SEARCH_RE, "want a list of domain names")
        given = True
    preserve = not given or opts.dns_preserve
    if "RUNQ_DNS_PRESERVE" in env:
        preserve = to_bool(env["RUNQ_DNS_PRESERVE"])

    noexec = opts.noexec or ("RUNQ_NOEXEC" in env and to_bool(env["RUNQ_NOEXEC"]))
    runqenv = to_bool(env["RUNQ_RUNQENV"]) if "RUNQ_RUNQENV" in env else opts.runqenv
    systemd = to_bool(env.get("RUNQ_SYSTEMD", ""))
    net_mode = env.get("RUNQ_NET_MODE", "auto").strip() or "auto"
    if net_mode not in NET_MODES:
        raise ConfigError("RUNQ_NET_MODE", env["RUNQ_NET_MODE"], "want one of " + "|".join(NET_MODES))

    boot_timeout = opts.boot_timeout or ((120 if accel == "tcg" else 30) + mem // 2048)
    vm = VMConfig(
        name=container_id[:12], cpus=cpus, mem=mem, accel=accel, accel_reason=reason, cpuargs=cpuargs,
        machine=resolve_machine(opts.machine, machines), nestedvm=opts.nestedvm, cache9p=cache9p,
        tsc_khz=accel_mod.tsc_khz() if accel == "tcg" else 0, debug=opts.debug, boot_timeout=boot_timeout,
    )
    return ContainerConfig(vm=vm, dns=DNSConfig(servers, options, search, preserve), noexec=noexec,
                           runqenv=runqenv, systemd=systemd, tmpfs_dirs=opts.tmpfs, net_mode=net_mode)


def with_vm(cfg: ContainerConfig, **changes: Any) -> ContainerConfig:
    return replace(cfg, vm=replace(cfg.vm, **changes))

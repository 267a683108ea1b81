"""Splitting runq's global flags from the command, without validating them.

Kept free of heavy imports: every engine call (start, kill, delete, state...) passes through here, and only
`create`/`run` need the validated configuration (runq.config).
"""

from __future__ import annotations

from .errors import ConfigError

# Global flags taking a value: flag name -> RuntimeOptions field ("" = accepted and ignored).
VALUE_FLAGS = {
    "cpu": "cpu", "mem": "mem", "dns": "dns", "dns-opts": "dns_opts", "dns-search": "dns_search",
    "tmpfs": "tmpfs", "9pcache": "cache9p", "cpuargs": "cpuargs", "accel": "accel", "machine": "machine",
    "runc": "runc", "runq-root": "runq_root", "boot-timeout": "boot_timeout",
    # runc's own global flags
    "root": "root", "log": "log", "log-format": "log_format", "criu": "",
}
# Global boolean flags: --flag or --flag=true|false.
BOOL_FLAGS = {
    "dns-preserve": "dns_preserve", "noexec": "noexec", "runqenv": "runqenv", "nestedvm": "nestedvm",
    "debug": "debug", "systemd-cgroup": "systemd_cgroup",
}
TRUE_WORDS = ("1", "on", "yes", "true")


def split_global(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Leading global flags as {field: raw value}, and the rest (command and its arguments).

    Flags may be written --flag value, --flag=value or with a single dash, as urfave/cli (runc) accepts.
    """
    raw: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg in ("-", "--", "-v", "--version", "-h", "--help"):
            break
        name, eq, inline = arg.lstrip("-").partition("=")
        if name == "rootless":
            raw["rootless"] = inline if eq else "true"
            i += 1
        elif name in BOOL_FLAGS:
            raw[BOOL_FLAGS[name]] = inline.strip().lower() in TRUE_WORDS if eq else True
            i += 1
        elif name in VALUE_FLAGS:
            if eq:
                value, i = inline, i + 1
            elif i + 1 < len(argv):
                value, i = argv[i + 1], i + 2
            else:
                raise ConfigError(f"--{name}", "", "flag needs a value")
            if VALUE_FLAGS[name]:
                raw[VALUE_FLAGS[name]] = value
        else:
            raise ConfigError("flag", arg, "unknown global flag (see runq --help)")
    return raw, argv[i:]

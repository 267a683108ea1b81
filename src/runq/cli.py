"""runq command line: runc-compatible global flags and commands, plus runq's own runtime flags.

    runq [runq flags] [runc global flags] COMMAND [command flags] ARGS...

runq flags (daemon.json runtimeArgs): --cpu N --mem MiB --dns LIST --dns-opts LIST --dns-search LIST
--dns-preserve --tmpfs DIRS --9pcache none|loose|fscache|mmap --cpuargs CPU --noexec --runqenv --nestedvm
--accel auto|kvm|tcg --machine microvm|q35|pc --runc PATH --runq-root DIR --boot-timeout SECONDS.
runc global flags: --root DIR --log FILE --log-format text|json --debug --systemd-cgroup --rootless.
Per-container environment (overrides the flags): RUNQ_CPU RUNQ_MEM RUNQ_ACCEL RUNQ_CPUARGS RUNQ_9PCACHE RUNQ_DNS
RUNQ_DNS_OPTS RUNQ_DNS_SEARCH RUNQ_DNS_PRESERVE RUNQ_NOEXEC RUNQ_RUNQENV RUNQ_SYSTEMD RUNQ_NET_MODE.
"""

from __future__ import annotations

import sys

from . import __version__
from .argv import split_global
from .errors import ConfigError, RunqError
from .runtime import Runtime

OCI_SPEC_VERSION = "1.1.0"

HELP = __doc__ + """
Commands:
  create, start, run, state, kill, delete, ps, list, pause, resume, update, events, features, spec, exec
  doctor     say which accelerator runq will use and why, and what is missing
  --version  print runq, OCI spec and runc versions
"""


def version(rt: Runtime) -> int:
    print(f"runq version {__version__}")
    print(f"commit: {_commit(rt)}")
    print(f"spec: {OCI_SPEC_VERSION}")
    try:
        from . import spawn

        out = spawn.run([rt.runc_path(), "--version"], capture=True, quiet=True)[1].decode()
        print(f"runc: {out.splitlines()[0] if out else 'unknown'}")
    except (RunqError, OSError):
        print("runc: not found")
    return 0


def _commit(rt: Runtime) -> str:
    try:
        with open(f"{rt.runtime_root}/VERSION") as f:
            return f.read().split()[-1]
    except (OSError, IndexError):
        return "unknown"


def dispatch(rt: Runtime, rest: list[str]) -> int:
    if not rest or rest[0] in ("-h", "--help", "help"):
        print(HELP)
        return 0 if rest else 1
    verb, args = rest[0], rest[1:]
    if verb in ("-v", "--version", "version"):
        return version(rt)
    if verb in ("create", "run"):
        from .config import options_from_flags
        from .lifecycle import create

        return create.run(rt, options_from_flags(rt.flags), args, verb)
    if verb == "delete":
        from .lifecycle import delete
        return delete.run(rt, args)
    if verb == "state":
        from .lifecycle import state
        return state.run(rt, args)
    if verb == "exec":
        from .lifecycle import exec as exec_mod
        return exec_mod.run(rt, args)
    if verb == "doctor":
        from . import doctor
        from .config import options_from_flags

        return doctor.run(rt, options_from_flags(rt.flags))
    if verb in ("checkpoint", "restore"):
        raise RunqError(f"runq: {verb} is not supported for VM containers")
    from .lifecycle import passthrough
    if verb in passthrough.VERBS:
        return passthrough.run(rt, verb, args)
    raise RunqError(f"runq: unknown command {verb!r} (see runq --help)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags, rest = split_global(argv)
    except ConfigError as e:
        return Runtime(_salvage_log(argv)).error(str(e))
    rt = Runtime(flags)
    try:
        return dispatch(rt, rest)
    except (ConfigError, RunqError) as e:
        return rt.error(str(e))


def _salvage_log(argv: list[str]) -> dict[str, str | bool]:
    """Find --log/--log-format even when other flags are bad, so the engine still sees the error line."""
    found: dict[str, str | bool] = {}
    for i, a in enumerate(argv):
        for name, key in (("log", "log"), ("log-format", "log_format")):
            for prefix in (f"--{name}", f"-{name}"):
                if a == prefix and i + 1 < len(argv):
                    found[key] = argv[i + 1]
                elif a.startswith(prefix + "="):
                    found[key] = a.split("=", 1)[1]
    return found


if __name__ == "__main__":
    sys.exit(main())

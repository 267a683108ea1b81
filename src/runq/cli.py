"""runq command line: runc-compatible global flags and commands, plus runq's own runtime flags.

    runq [runq flags] [runc global flags] COMMAND [command flags] ARGS...

runq flags (daemon.json runtimeArgs): --cpu N --mem MiB --dns LIST --dns-opts LIST --dns-search LIST
--dns-preserve --tmpfs DIRS --9pcache none|loose|fscache|mmap --cpuargs CPU --noexec --runqenv --nestedvm
--accel auto|kvm|tcg --machine microvm|q35|pc --runc PATH --runq-root DIR --boot-timeout SECONDS.
runc global flags: --root DIR --log FILE --log-format text|json --debug --systemd-cgroup --rootless.
"""

from __future__ import annotations

import subprocess
import sys

from . import __version__
from .config import ConfigError, RuntimeOptions, parse_global_flags
from .runtime import Runtime, RunqError

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
        out = subprocess.run([rt.runc_path(), "--version"], capture_output=True, text=True).stdout
        first = out.splitlines()[0] if out else "unknown"
        print(f"runc: {first}")
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
        from .lifecycle import create
        return create.run(rt, args, verb)
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
        return doctor.run(rt)
    if verb in ("checkpoint", "restore"):
        raise RunqError(f"runq: {verb} is not supported for VM containers")
    from .lifecycle import passthrough
    if verb in passthrough.VERBS:
        return passthrough.run(rt, verb, args)
    raise RunqError(f"runq: unknown command {verb!r} (see runq --help)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts, rest = parse_global_flags(argv)
    except ConfigError as e:
        return Runtime(_salvage_log(argv)).error(str(e))
    rt = Runtime(opts)
    try:
        return dispatch(rt, rest)
    except (ConfigError, RunqError) as e:
        return rt.error(str(e))


def _salvage_log(argv: list[str]) -> RuntimeOptions:
    """Find --log/--log-format even when other flags are bad, so the engine still sees the error line."""
    log, fmt = "", "text"
    for i, a in enumerate(argv):
        for name in ("log", "log-format"):
            for prefix in (f"--{name}", f"-{name}"):
                value = None
                if a == prefix and i + 1 < len(argv):
                    value = argv[i + 1]
                elif a.startswith(prefix + "="):
                    value = a.split("=", 1)[1]
                if value is not None:
                    if name == "log":
                        log = value
                    elif value in ("text", "json"):
                        fmt = value
    return RuntimeOptions(log=log, log_format=fmt)


if __name__ == "__main__":
    sys.exit(main())

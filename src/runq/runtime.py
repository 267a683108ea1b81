"""Per-invocation context of the runq CLI: the global flags, runc, logging. Light imports only (hot path)."""

from __future__ import annotations

import os
import sys
import time

from . import layout, spawn
from .errors import RunqError

RUNC_CANDIDATES = ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc")


class Runtime:
    """The global flags of one call. `flags` holds raw values; create/run validate them via runq.config."""

    def __init__(self, flags: dict[str, str | bool]) -> None:
        self.flags = flags

    def flag(self, name: str, default: str = "") -> str:
        v = self.flags.get(name, default)
        return v if isinstance(v, str) else default

    @property
    def root(self) -> str:
        return self.flag("root")

    @property
    def debug_on(self) -> bool:
        return self.flags.get("debug") is True

    @property
    def runtime_root(self) -> str:
        if self.flag("runq_root"):
            return self.flag("runq_root")
        if os.environ.get("RUNQ_ROOT"):
            return os.environ["RUNQ_ROOT"]
        # Installed layout: <root>/lib/runq/runtime.py
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if os.path.exists(os.path.join(here, layout.KERNEL)):
            return here
        return layout.DEFAULT_ROOT

    def runc_path(self) -> str:
        if self.flag("runc"):
            return self.flag("runc")
        dirs = os.environ.get("PATH", "").split(":")
        for cand in [os.path.join(d, "runc") for d in dirs if d] + list(RUNC_CANDIDATES):
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return cand
        raise RunqError("runc not found: install runc or pass --runc PATH")

    def runc_argv(self, *args: str) -> list[str]:
        argv = [self.runc_path()]
        if self.root:
            argv += ["--root", self.root]
        if self.flag("log"):
            argv += ["--log", self.flag("log"), "--log-format", self.flag("log_format", "text")]
        if self.debug_on:
            argv.append("--debug")
        if self.flags.get("systemd_cgroup") is True:
            argv.append("--systemd-cgroup")
        if self.flag("rootless"):
            argv.append(f"--rootless={self.flag('rootless')}")
        return argv + list(args)

    def runc(self, *args: str, capture: bool = False, quiet: bool = False,
             pass_fds: tuple[int, ...] = ()) -> tuple[int, bytes]:
        return spawn.run(self.runc_argv(*args), capture=capture, quiet=quiet, pass_fds=pass_fds)

    def log(self, level: str, msg: str) -> None:
        path = self.flag("log")
        if not path:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        if self.flag("log_format", "text") == "json":
            import json

            line = json.dumps({"level": level, "msg": msg, "time": now})
        else:
            line = f'time="{now}" level={level} msg="{msg}"'
        try:
            with open(path, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass

    def error(self, msg: str) -> int:
        """Report a failure the runc way: bare message on stderr, error line in the log. Returns exit status 1."""
        self.log("error", msg)
        print(msg, file=sys.stderr)
        return 1

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self.log("debug", msg)

"""Per-invocation context of the runq CLI: the parsed global options, runc, logging."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass

from . import layout
from .config import RuntimeOptions


class RunqError(Exception):
    """A failure reported to the engine as one line (stderr and the --log file); exit status 1."""


@dataclass(frozen=True)
class Runtime:
    opts: RuntimeOptions

    @property
    def runtime_root(self) -> str:
        if self.opts.runq_root:
            return self.opts.runq_root
        if os.environ.get("RUNQ_ROOT"):
            return os.environ["RUNQ_ROOT"]
        # The entry point lives in the runtime root: <root>/lib/runq/runtime.py
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if os.path.exists(os.path.join(here, layout.KERNEL)):
            return here
        return layout.DEFAULT_ROOT

    def runc_path(self) -> str:
        if self.opts.runc:
            return self.opts.runc
        for cand in (shutil.which("runc"), "/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"):
            if cand and os.access(cand, os.X_OK):
                return cand
        raise RunqError("runc not found: install runc or pass --runc PATH")

    def runc_argv(self, *args: str) -> list[str]:
        o = self.opts
        argv = [self.runc_path()]
        if o.root:
            argv += ["--root", o.root]
        if o.log:
            argv += ["--log", o.log, "--log-format", o.log_format]
        if o.debug:
            argv.append("--debug")
        if o.systemd_cgroup:
            argv.append("--systemd-cgroup")
        if o.rootless:
            argv.append(f"--rootless={o.rootless}")
        return argv + list(args)

    def log(self, level: str, msg: str) -> None:
        if not self.opts.log:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        if self.opts.log_format == "json":
            line = json.dumps({"level": level, "msg": msg, "time": now})
        else:
            line = f'time="{now}" level={level} msg="{msg}"'
        try:
            with open(self.opts.log, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass

    def error(self, msg: str) -> int:
        """Report a failure the runc way: bare message on stderr, error line in the log. Returns exit status 1."""
        self.log("error", msg)
        print(msg, file=sys.stderr)
        return 1

    def debug(self, msg: str) -> None:
        if self.opts.debug:
            self.log("debug", msg)

"""Verbs runc does unchanged for runq containers: the container process is the proxy, so runc's view is right.

start, kill (numbers and names, --all), ps (host pids of proxy and QEMU), list, pause, resume, update, events,
features, spec. `kill` reaches the proxy, which forwards the signal into the guest.
"""

from __future__ import annotations

import os

from ..runtime import Runtime

VERBS = ("start", "kill", "ps", "list", "pause", "resume", "update", "events", "features", "spec")


def run(rt: Runtime, verb: str, args: list[str]) -> int:
    argv = rt.runc_argv(verb, *args)
    os.execv(argv[0], argv)
    return 127  # not reached

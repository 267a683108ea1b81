"""`runq delete [--force] ID`: runc's delete, then runq's state dir goes too."""

from __future__ import annotations

import shutil
import subprocess

from .. import bundle as bundle_mod
from ..runtime import Runtime, RunqError
from . import cmdflags


def run(rt: Runtime, args: list[str]) -> int:
    flags, pos = cmdflags.parse(args, set(), {"force"}, {"f": "force"})
    if len(pos) != 1:
        raise RunqError('"delete" requires exactly 1 argument(s)')
    cid = pos[0]
    argv = ["delete"] + (["--force"] if flags.get("force") else []) + [cid]
    rc = subprocess.call(rt.runc_argv(*argv))
    if rc == 0 or not _exists(rt, cid):
        shutil.rmtree(bundle_mod.state_dir(rt.opts.root, cid), ignore_errors=True)
    return rc


def _exists(rt: Runtime, cid: str) -> bool:
    return subprocess.run(rt.runc_argv("state", cid), capture_output=True).returncode == 0

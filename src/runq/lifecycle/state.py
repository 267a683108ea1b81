"""`runq state ID`: runc's OCI state, with the bundle the engine gave us (not runq's rewritten one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .. import bundle as bundle_mod
from ..runtime import Runtime, RunqError


def run(rt: Runtime, args: list[str]) -> int:
    if len(args) != 1:
        raise RunqError('"state" requires exactly 1 argument(s)')
    cid = args[0]
    proc = subprocess.run(rt.runc_argv("state", cid), stdout=subprocess.PIPE)
    if proc.returncode != 0:
        return proc.returncode
    state = json.loads(proc.stdout)
    try:
        with open(os.path.join(bundle_mod.state_dir(rt.opts.root, cid), "meta.json")) as f:
            bundle = json.load(f)["bundle"]
        state["bundle"] = bundle
        if not os.path.isabs(state.get("rootfs", "/")):
            state["rootfs"] = os.path.join(bundle, state["rootfs"])
    except (OSError, ValueError, KeyError):
        pass
    sys.stdout.write(json.dumps(state, indent=2) + "\n")
    return 0

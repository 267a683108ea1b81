"""`runq state ID`: runc's OCI state, with the bundle the engine gave us (not runq's rewritten one)."""

from __future__ import annotations

import json
import os
import sys

from .. import statedir
from ..errors import RunqError
from ..runtime import Runtime


def run(rt: Runtime, args: list[str]) -> int:
    if len(args) != 1:
        raise RunqError('"state" requires exactly 1 argument(s)')
    cid = args[0]
    rc, out = rt.runc("state", cid, capture=True)
    if rc != 0:
        return rc
    state = json.loads(out)
    try:
        with open(os.path.join(statedir.path(rt.root, cid), "meta.json")) as f:
            bundle = json.load(f)["bundle"]
        state["bundle"] = bundle
    except (OSError, ValueError, KeyError):
        pass
    sys.stdout.write(json.dumps(state, indent=2) + "\n")
    return 0

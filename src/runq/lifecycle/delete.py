"""`runq delete [--force] ID`: runc's delete, then runq's state dir goes too."""

from __future__ import annotations

from .. import statedir
from ..errors import RunqError
from ..runtime import Runtime
from . import cmdflags


def run(rt: Runtime, args: list[str]) -> int:
    flags, pos = cmdflags.parse(args, set(), {"force"}, {"f": "force"})
    if len(pos) != 1:
        raise RunqError('"delete" requires exactly 1 argument(s)')
    cid = pos[0]
    rc, _ = rt.runc("delete", *(["--force"] if flags.get("force") else []), cid)
    if rc == 0 or rt.runc("state", cid, capture=True, quiet=True)[0] != 0:
        statedir.remove(rt.root, cid)
    return rc

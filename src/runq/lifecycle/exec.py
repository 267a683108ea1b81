"""`runq exec`: running a second process inside the VM is not implemented yet."""

from __future__ import annotations

from ..errors import RunqError
from ..runtime import Runtime


def run(rt: Runtime, args: list[str]) -> int:
    raise RunqError("runq: exec is not supported yet: 'docker exec' into the VM arrives in a later release")

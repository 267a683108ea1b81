"""runq's per-container state directory (rewritten bundle, proxy payload). Light imports: used on every delete."""

from __future__ import annotations

import os
import zlib

STATE_BASE = "/run/runq"


def path(runc_root: str, container_id: str) -> str:
    """/run/runq/<tag of the runc root>/<id>: engines may reuse an id under different roots."""
    tag = "%08x" % zlib.crc32(os.path.abspath(runc_root or "/run/runc").encode())
    return os.path.join(STATE_BASE, tag, container_id)


def remove(runc_root: str, container_id: str) -> None:
    """Remove the state dir (files and subdirs, no symlinks followed). The tag dir stays: a concurrent create may
    be making its own state dir in it."""
    top = path(runc_root, container_id)
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames:
            try:
                os.unlink(os.path.join(dirpath, name))
            except OSError:
                pass
        for name in dirnames:
            try:
                os.rmdir(os.path.join(dirpath, name))
            except OSError:
                pass
    try:
        os.rmdir(top)
    except OSError:
        pass

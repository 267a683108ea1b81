"""Minimal deterministic cpio "newc" (SVR4, no CRC) writer and reader, as used for Linux initramfs.

Every entry gets mtime 0, uid/gid 0 and a sequential inode number; `write_tree` emits entries sorted by path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


@dataclass
class Entry:
    name: str           # path without leading '/'
    mode: int           # full st_mode (type bits + permissions)
    data: bytes = b""   # file contents or symlink target
    rdevmajor: int = 0
    rdevminor: int = 0
    nlink: int = 1


class CpioWriter:
    """Streams newc entries to a binary file object. Call close() to write the trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.ino = 0
        self.size = 0

    def _write(self, b: bytes) -> None:
        self.out.write(b)
        self.size += len(b)

    def _header(self, name: str, mode: int, filesize: int, nlink: int, rdevmajor: int, rdevminor: int,
                ino: int) -> None:
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, nlink, 0, filesize, 0, 0, rdevmajor, rdevminor, len(encoded), 0)
        self._write(MAGIC + b"".join(b"%08X" % f for f in fields))
        self._write(encoded + b"\0" * _pad4(_HEADER_LEN + len(encoded)))

    def add(self, e: Entry) -> None:
        name = e.name.lstrip("/")
        if not name:
            raise ValueError("empty entry name")
        self.ino += 1
        self._header(name, e.mode, len(e.data), e.nlink, e.rdevmajor, e.rdevminor, self.ino)
        self._write(e.data + b"\0" * _pad4(len(e.data)))

    def add_dir(self, name: str, perm: int = 0o755) -> None:
        self.add(Entry(name, stat.S_IFDIR | perm, nlink=2))

    def add_file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self.add(Entry(name, stat.S_IFREG | perm, data))

    def add_symlink(self, name: str, target: str) -> None:
        self.add(Entry(name, stat.S_IFLNK | 0o777, target.encode()))

    def add_chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self.add(Entry(name, stat.S_IFCHR | perm, rdevmajor=major, rdevminor=minor))

    def close(self) -> None:
        self.ino += 1
        self._header(TRAILER, 0, 0, 1, 0, 0, 0)
        self.out.flush()


def tree_entries(top: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """(archive name, host path) for everything under `top`, sorted by archive name (parents before children)."""
    found: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            found.append((os.path.relpath(full, top), full))
    found.sort()
    return iter(found)


def write_tree(out: BinaryIO, top: str | os.PathLike[str], extra: list[Entry] | None = None) -> int:
    """Archive the directory tree `top` (regular files, dirs, symlinks, char/block devices) plus `extra` entries.

    Entries are sorted by name, owned by 0:0, with mtime 0. Returns the archive size in bytes.
    """
    entries: dict[str, Entry | str] = {}
    for name, full in tree_entries(top):
        entries[name] = full
    for e in extra or []:
        entries[e.name.lstrip("/")] = e
    w = CpioWriter(out)
    for name in sorted(entries):
        item = entries[name]
        if isinstance(item, Entry):
            w.add(item)
            continue
        st = os.lstat(item)
        perm = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            w.add_dir(name, perm)
        elif stat.S_ISLNK(st.st_mode):
            w.add_symlink(name, os.readlink(item))
        elif stat.S_ISREG(st.st_mode):
            with open(item, "rb") as f:
                w.add_file(name, f.read(), perm)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            w.add(Entry(name, stat.S_IFMT(st.st_mode) | perm,
                        rdevmajor=os.major(st.st_rdev), rdevminor=os.minor(st.st_rdev)))
        else:
            raise ValueError(f"unsupported file type: {item}")
    w.close()
    return w.size


def read(data: bytes) -> list[Entry]:
    """Parse a newc archive (up to the trailer) back into entries."""
    out: list[Entry] = []
    pos = 0
    while True:
        if data[pos:pos + 6] != MAGIC:
            raise ValueError(f"bad cpio magic at offset {pos}")
        f = [int(data[pos + 6 + i * 8: pos + 14 + i * 8], 16) for i in range(13)]
        mode, nlink, filesize, rmaj, rmin, namesize = f[1], f[4], f[6], f[9], f[10], f[11]
        name_start = pos + _HEADER_LEN
        name = data[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += _pad4(pos)
        body = data[pos:pos + filesize]
        pos += filesize
        pos += _pad4(pos)
        if name == TRAILER:
            return out
        out.append(Entry(name, mode, body, rmaj, rmin, nlink))

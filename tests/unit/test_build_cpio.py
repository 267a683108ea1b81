"""The initrd's cpio newc writer: output that the kernel (and GNU cpio) can read, byte-for-byte deterministic."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from runq.build import cpio


def _tree(tmp_path: Path) -> Path:
    top = tmp_path / "tree"
    (top / "usr" / "bin").mkdir(parents=True)
    (top / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(top / "usr" / "bin" / "tool", 0o755)
    (top / "a-file").write_bytes(b"x" * 5)          # sorts before "a/" but after "a"
    (top / "a").mkdir()
    (top / "a" / "b.txt").write_bytes(b"")
    os.symlink("usr/bin/tool", top / "link")
    (top / "tmp").mkdir()
    os.chmod(top / "tmp", 0o1777)
    return top


def _archive(top: Path) -> bytes:
    buf = io.BytesIO()
    console = cpio.Entry("dev/console", stat.S_IFCHR | 0o600, rdevmajor=5, rdevminor=1)
    dev = cpio.Entry("dev", stat.S_IFDIR | 0o755, nlink=2)
    size = cpio.write_tree(buf, top, [dev, console])
    assert size == len(buf.getvalue())
    return buf.getvalue()


def test_write_tree_round_trips_files_dirs_symlinks_and_device_nodes(tmp_path: Path) -> None:
    entries = {e.name: e for e in cpio.read(_archive(_tree(tmp_path)))}
    assert entries["usr/bin/tool"].data == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(entries["usr/bin/tool"].mode) == 0o755
    assert stat.S_ISLNK(entries["link"].mode) and entries["link"].data == b"usr/bin/tool"
    assert stat.S_ISDIR(entries["tmp"].mode) and stat.S_IMODE(entries["tmp"].mode) == 0o1777
    con = entries["dev/console"]
    assert stat.S_ISCHR(con.mode) and (con.rdevmajor, con.rdevminor) == (5, 1)
    assert entries["a/b.txt"].data == b""


def test_entries_are_sorted_so_parents_come_before_children(tmp_path: Path) -> None:
    names = [e.name for e in cpio.read(_archive(_tree(tmp_path)))]
    assert names == sorted(names)
    for i, n in enumerate(names):
        if "/" in n:
            assert names.index(n.rsplit("/", 1)[0]) < i


def test_output_is_deterministic_mtime_zero_owner_root(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    first = _archive(top)
    os.utime(top / "a" / "b.txt", (1_000_000, 1_000_000))
    assert _archive(top) == first
    # header fields: uid, gid, mtime are all zero for every entry
    pos = 0
    while pos < len(first):
        assert first[pos:pos + 6] == b"070701"
        fields = [int(first[pos + 6 + i * 8: pos + 14 + i * 8], 16) for i in range(13)]
        assert fields[2] == fields[3] == fields[5] == 0
        namesize, filesize = fields[11], fields[6]
        name = first[pos + 110: pos + 110 + namesize - 1]
        pos += 110 + namesize
        pos += (4 - pos % 4) % 4
        pos += filesize + (4 - filesize % 4) % 4
        if name == b"TRAILER!!!":
            break
    assert first[pos:].strip(b"\0") == b""


def test_every_entry_starts_4_byte_aligned(tmp_path: Path) -> None:
    buf = io.BytesIO()
    w = cpio.CpioWriter(buf)
    for n in ("a", "bb", "ccc", "dddd"):
        w.add_file(n, b"x" * len(n))
    w.close()
    data = buf.getvalue()
    offsets = [i for i in range(0, len(data), 4) if data[i:i + 6] == b"070701"]
    assert len(offsets) == 5                        # 4 files + trailer, all found at 4-byte boundaries
    assert len(data) % 4 == 0


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_gnu_cpio_lists_the_archive(tmp_path: Path) -> None:
    data = _archive(_tree(tmp_path))
    out = subprocess.run(["cpio", "-it", "--quiet"], input=data, capture_output=True, check=True).stdout.decode()
    assert out.split() == sorted(e.name for e in cpio.read(data))
    verbose = subprocess.run(["cpio", "-itv", "--quiet"], input=data, capture_output=True, check=True).stdout
    assert b"5,   1" in verbose and b"dev/console" in verbose


def test_reader_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        cpio.read(b"not a cpio archive at all" * 10)

"""DT_NEEDED / DT_SONAME parsing of ELF files and the library closure used to bundle python and qemu."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from runq.build import elfdeps

VADDR = 0x400000


def make_elf(needed: list[str], soname: str | None = None, runpath: str | None = None,
             interp: str | None = None) -> bytes:
    """A minimal ELF64 LE image: PT_LOAD over the whole file (at VADDR), PT_DYNAMIC, optional PT_INTERP."""
    strtab = b"\0"
    offsets: dict[str, int] = {}
    for s in [*needed, *(x for x in (soname, runpath) if x)]:
        offsets[s] = len(strtab)
        strtab += s.encode() + b"\0"
    nph = 3 if interp else 2
    phoff = 64
    interp_off = phoff + nph * 56
    interp_bytes = (interp.encode() + b"\0") if interp else b""
    strtab_off = interp_off + len(interp_bytes)
    dyn_off = (strtab_off + len(strtab) + 7) & ~7
    dyn = [(elfdeps.DT_NEEDED, offsets[n]) for n in needed]
    if soname:
        dyn.append((elfdeps.DT_SONAME, offsets[soname]))
    if runpath:
        dyn.append((elfdeps.DT_RUNPATH, offsets[runpath]))
    dyn += [(elfdeps.DT_STRTAB, VADDR + strtab_off), (elfdeps.DT_NULL, 0)]
    dyn_bytes = b"".join(struct.pack("<qQ", t, v) for t, v in dyn)
    total = dyn_off + len(dyn_bytes)

    ident = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, phoff, 0, 0, 64, 56, nph, 64, 0, 0)
    phdrs = struct.pack("<IIQQQQQQ", elfdeps.PT_LOAD, 5, 0, VADDR, VADDR, total, total, 0x1000)
    phdrs += struct.pack("<IIQQQQQQ", elfdeps.PT_DYNAMIC, 6, dyn_off, VADDR + dyn_off, VADDR + dyn_off,
                         len(dyn_bytes), len(dyn_bytes), 8)
    if interp:
        phdrs += struct.pack("<IIQQQQQQ", elfdeps.PT_INTERP, 4, interp_off, VADDR + interp_off,
                             VADDR + interp_off, len(interp_bytes), len(interp_bytes), 1)
    img = header + phdrs + interp_bytes + strtab
    img += b"\0" * (dyn_off - len(img)) + dyn_bytes
    assert len(img) == total
    return img


def test_parse_dynamic_reads_needed_soname_runpath_and_interp() -> None:
    info = elfdeps.parse_dynamic(make_elf(["libfoo.so.1", "libc.so.6"], soname="libbar.so.2",
                                          runpath="$ORIGIN/../lib:/opt/x", interp="/lib64/ld-linux-x86-64.so.2"))
    assert info.needed == ["libfoo.so.1", "libc.so.6"]
    assert info.soname == "libbar.so.2"
    assert info.rpath == ["$ORIGIN/../lib", "/opt/x"]
    assert info.interp == "/lib64/ld-linux-x86-64.so.2"


def test_parse_dynamic_rejects_non_elf_and_32bit() -> None:
    with pytest.raises(elfdeps.ElfError):
        elfdeps.parse_dynamic(b"#!/bin/sh\n")
    with pytest.raises(elfdeps.ElfError):
        elfdeps.parse_dynamic(b"\x7fELF\x01\x01" + b"\0" * 60)


def test_closure_follows_needed_transitively_and_keys_by_soname(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    # libfoo.so.1 is a symlink to the real file, as on Debian: the closure must return the real file
    (lib / "libfoo.so.1.2.3").write_bytes(make_elf(["libbaz.so.0"], soname="libfoo.so.1"))
    os.symlink("libfoo.so.1.2.3", lib / "libfoo.so.1")
    (lib / "libbaz.so.0").write_bytes(make_elf([], soname="libbaz.so.0"))
    (tmp_path / "prog").write_bytes(make_elf(["libfoo.so.1"]))
    found = elfdeps.closure([tmp_path / "prog"], [str(lib)])
    assert found == {"libfoo.so.1": str(lib / "libfoo.so.1.2.3"), "libbaz.so.0": str(lib / "libbaz.so.0")}


def test_closure_honours_origin_runpath_before_search_dirs(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "priv").mkdir()
    (tmp_path / "sys").mkdir()
    (tmp_path / "priv" / "libq.so").write_bytes(make_elf([]))
    (tmp_path / "sys" / "libq.so").write_bytes(make_elf([]))
    (tmp_path / "bin" / "prog").write_bytes(make_elf(["libq.so"], runpath="$ORIGIN/../priv"))
    found = elfdeps.closure([tmp_path / "bin" / "prog"], [str(tmp_path / "sys")])
    assert found["libq.so"] == str(tmp_path / "priv" / "libq.so")


def test_closure_reports_an_unresolvable_library(tmp_path: Path) -> None:
    (tmp_path / "prog").write_bytes(make_elf(["libmissing.so.9"]))
    with pytest.raises(elfdeps.ElfError, match="libmissing.so.9"):
        elfdeps.closure([tmp_path / "prog"], [str(tmp_path)])


def test_ld_so_conf_includes_are_followed(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("# comment\n/opt/a\n")
    (tmp_path / "conf.d" / "b.conf").write_text("/opt/b\n")
    (tmp_path / "ld.so.conf").write_text("/first\ninclude conf.d/*.conf\n")
    assert elfdeps.ld_so_conf_dirs(str(tmp_path / "ld.so.conf")) == ["/first", "/opt/a", "/opt/b"]


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3.11") or shutil.which("readelf") is None,
                    reason="needs Debian python3.11 and readelf")
def test_needed_of_a_real_binary_matches_readelf() -> None:
    out = subprocess.run(["readelf", "-dW", "/usr/bin/python3.11"], capture_output=True, text=True).stdout
    expected = [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]
    assert elfdeps.read_dynamic("/usr/bin/python3.11").needed == expected

"""Shared-library dependencies of ELF files, from their dynamic section (no ldd needed).

Only ELF64 little-endian (x86_64) is supported, which is all runq builds for.
"""

from __future__ import annotations

import glob
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_SONAME = 14
DT_RPATH = 15
DT_RUNPATH = 29

# Debian's own library dirs first (so /usr/local or other ld.so.conf entries do not shadow packaged libraries).
DEFAULT_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]


class ElfError(Exception):
    pass


@dataclass
class DynInfo:
    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: list[str] = field(default_factory=list)      # DT_RUNPATH, else DT_RPATH (split on ':')
    interp: str | None = None


def parse_dynamic(data: bytes) -> DynInfo:
    """DT_NEEDED / DT_SONAME / DT_RUNPATH / PT_INTERP of an ELF64 LE image. Static binaries give empty results."""
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ElfError("only ELF64 little-endian is supported")
    (e_phoff,) = struct.unpack_from("<Q", data, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []            # (vaddr, offset, filesz)
    dyn: tuple[int, int] | None = None                 # (offset, size)
    info = DynInfo()
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, off)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dyn = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            info.interp = data[p_offset:p_offset + p_filesz].split(b"\0", 1)[0].decode()
    if dyn is None:
        return info

    def vaddr_to_offset(addr: int) -> int:
        for vaddr, offset, filesz in loads:
            if vaddr <= addr < vaddr + filesz:
                return addr - vaddr + offset
        raise ElfError(f"address {addr:#x} not in any PT_LOAD segment")

    entries: list[tuple[int, int]] = []
    strtab_addr: int | None = None
    for pos in range(dyn[0], dyn[0] + dyn[1], 16):
        tag, val = struct.unpack_from("<qQ", data, pos)
        if tag == DT_NULL:
            break
        if tag == DT_STRTAB:
            strtab_addr = val
        entries.append((tag, val))
    if strtab_addr is None:
        return info
    strtab = vaddr_to_offset(strtab_addr)

    def string(idx: int) -> str:
        start = strtab + idx
        return data[start:data.index(b"\0", start)].decode()

    runpath: list[str] | None = None
    rpath: list[str] = []
    for tag, val in entries:
        if tag == DT_NEEDED:
            info.needed.append(string(val))
        elif tag == DT_SONAME:
            info.soname = string(val)
        elif tag == DT_RUNPATH:
            runpath = [p for p in string(val).split(":") if p]
        elif tag == DT_RPATH:
            rpath = [p for p in string(val).split(":") if p]
    info.rpath = runpath if runpath is not None else rpath
    return info


def read_dynamic(path: str | os.PathLike[str]) -> DynInfo:
    with open(path, "rb") as f:
        return parse_dynamic(f.read())


def ld_so_conf_dirs(conf: str = "/etc/ld.so.conf") -> list[str]:
    """Directories listed in ld.so.conf (following `include` globs)."""
    out: list[str] = []

    def parse(path: str, depth: int) -> None:
        if depth > 5:
            return
        try:
            lines = open(path).read().splitlines()
        except OSError:
            return
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include "):
                pattern = line.split(None, 1)[1]
                if not os.path.isabs(pattern):
                    pattern = os.path.join(os.path.dirname(path), pattern)
                for p in sorted(glob.glob(pattern)):
                    parse(p, depth + 1)
            else:
                out.append(line)

    parse(conf, 0)
    return out


def search_dirs() -> list[str]:
    dirs: list[str] = []
    for d in DEFAULT_DIRS + ld_so_conf_dirs():
        if d not in dirs:
            dirs.append(d)
    return dirs


def closure(roots: Iterable[str | os.PathLike[str]], dirs: list[str] | None = None) -> dict[str, str]:
    """Map soname -> real path of every shared library needed (transitively) by the ELF files `roots`.

    Includes the program interpreter (ld.so) under its file name. Raises ElfError for an unresolvable library.
    """
    dirs = search_dirs() if dirs is None else dirs
    found: dict[str, str] = {}
    todo: list[str] = [str(r) for r in roots]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        info = read_dynamic(real)
        origin = os.path.dirname(os.path.abspath(path))
        if info.interp:
            name = os.path.basename(info.interp)
            if name not in found:
                found[name] = os.path.realpath(info.interp)
                todo.append(info.interp)
        for lib in info.needed:
            if lib in found:
                continue
            loc = _find(lib, [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in info.rpath] + dirs)
            if loc is None:
                raise ElfError(f"{lib} (needed by {path}) not found in {dirs}")
            found[lib] = os.path.realpath(loc)
            todo.append(loc)
    return found


def _find(lib: str, dirs: list[str]) -> str | None:
    if "/" in lib:
        return lib if os.path.exists(lib) else None
    for d in dirs:
        p = os.path.join(d, lib)
        if os.path.exists(p):
            return p
    return None

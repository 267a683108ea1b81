"""Pulling the uncompressed ELF kernel (for PVH boot) out of an XZ-compressed bzImage."""

from __future__ import annotations

import lzma

import pytest

from runq.build.common import BuildError
from runq.build.kernel import XZ_MAGIC, decompress_modules, extract_vmlinux

ELF = b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 64


def test_extracts_the_elf_from_an_xz_stream_between_setup_code_and_trailer() -> None:
    blob = b"MZ\x90 fake setup code" * 50 + lzma.compress(ELF, format=lzma.FORMAT_XZ) + b"\x12\x34\x56\x78trailer"
    assert extract_vmlinux(blob) == ELF


def test_skips_a_stray_magic_and_a_stream_that_is_not_an_elf() -> None:
    decoy = lzma.compress(b"not a kernel", format=lzma.FORMAT_XZ)
    blob = b"junk" + XZ_MAGIC + b"broken" + decoy + b"pad" + lzma.compress(ELF, format=lzma.FORMAT_XZ)
    assert extract_vmlinux(blob) == ELF


def test_image_without_xz_kernel_is_an_error() -> None:
    with pytest.raises(BuildError):
        extract_vmlinux(b"MZ" + b"\0" * 4096)


def test_compressed_modules_become_plain_ko(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "kernel" / "fs"
    d.mkdir(parents=True)
    (d / "a.ko.xz").write_bytes(lzma.compress(b"module-a", format=lzma.FORMAT_XZ))
    (d / "b.ko").write_bytes(b"module-b")
    assert decompress_modules(tmp_path) == 1
    assert sorted(p.name for p in d.iterdir()) == ["a.ko", "b.ko"]
    assert (d / "a.ko").read_bytes() == b"module-a"

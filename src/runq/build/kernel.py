"""`kernel` step: Debian's kernel image package -> $ROOT/kernel/{vmlinux,version,modules/<kver>/}.

The .deb is fetched with `apt-get download` (never taken from /boot), the uncompressed ELF kernel is pulled out
of the XZ stream inside the bzImage (booted via PVH: much faster under TCG than decompressing in the guest).
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import subprocess
from pathlib import Path

from runq import layout
from runq.build.common import (
    BuildError,
    Context,
    apt_update,
    atomic_dir,
    clean_stale_tmp,
    fingerprint,
    human,
    log,
    need_command,
    run,
    stamp_matches,
    write_stamp,
)

META_PACKAGE = "linux-image-amd64"
XZ_MAGIC = b"\xfd7zXZ\x00"


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed ELF kernel inside an XZ-compressed bzImage (like scripts/extract-vmlinux)."""
    start = bzimage.find(XZ_MAGIC)
    while start >= 0:
        try:
            out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
        except lzma.LZMAError:
            out = b""
        if out.startswith(b"\x7fELF"):
            return out
        start = bzimage.find(XZ_MAGIC, start + 1)
    raise BuildError("no XZ stream with an ELF kernel found in the kernel image")


def _apt_cache(ctx: Context, *args: str) -> str:
    proc = run(["apt-cache", *args], capture=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        apt_update(ctx)
        proc = run(["apt-cache", *args], capture=True)
    return proc.stdout


def image_package(ctx: Context) -> str:
    """The versioned image package the meta package depends on, e.g. linux-image-6.1.0-57-amd64."""
    out = _apt_cache(ctx, "depends", META_PACKAGE)
    m = re.search(r"^\s*\|?Depends:\s*(linux-image-\d\S*)", out, re.M)
    if not m:
        raise BuildError(f"cannot find the image package {META_PACKAGE} depends on:\n{out}")
    return m.group(1)


def candidate_version(ctx: Context, pkg: str) -> str:
    out = _apt_cache(ctx, "show", "--no-all-versions", pkg)
    m = re.search(r"^Version:\s*(\S+)", out, re.M)
    if not m:
        raise BuildError(f"no version for {pkg} in apt-cache show")
    return m.group(1)


def fetch_deb(ctx: Context, pkg: str) -> Path:
    """Path of the .deb for the candidate version of `pkg` in the cache dir (apt-get download unless present)."""
    version = candidate_version(ctx, pkg)
    fname = f"{pkg}_{version.replace(':', '%3a')}_amd64.deb"
    if (ctx.cache / fname).is_file() and (ctx.cache / fname).stat().st_size > 0:
        return ctx.cache / fname
    ctx.cache.mkdir(parents=True, exist_ok=True)
    log(f"  apt-get download {pkg}={version} -> {ctx.cache}")
    proc = run(["apt-get", "download", f"{pkg}={version}"], cwd=ctx.cache, capture=True, check=False)
    if proc.returncode != 0:
        apt_update(ctx)
        run(["apt-get", "download", f"{pkg}={version}"], cwd=ctx.cache, capture=True)
    if not (ctx.cache / fname).is_file():
        raise BuildError(f"apt-get download did not produce {ctx.cache / fname}")
    return ctx.cache / fname


def decompress_modules(tree: Path) -> int:
    """Turn every .ko.xz / .ko.zst / .ko.gz under `tree` into a plain .ko. Returns how many were converted."""
    n = 0
    for dirpath, _, files in os.walk(tree):
        for f in files:
            p = Path(dirpath) / f
            if f.endswith(".ko.xz"):
                p.with_suffix("").write_bytes(lzma.decompress(p.read_bytes()))
            elif f.endswith(".ko.gz"):
                p.with_suffix("").write_bytes(gzip.decompress(p.read_bytes()))
            elif f.endswith(".ko.zst"):
                with open(p.with_suffix(""), "wb") as out:
                    subprocess.run(["zstd", "-dcq", str(p)], stdout=out, check=True)
            else:
                continue
            os.chmod(p.with_suffix(""), 0o644)
            p.unlink()
            n += 1
    return n


def build(ctx: Context) -> str:
    need_command(ctx, "dpkg-deb", "dpkg")
    depmod = need_command(ctx, "depmod", "kmod")
    target = ctx.path("kernel")
    clean_stale_tmp(target.parent, target.name)
    if target.is_dir():
        clean_stale_tmp(target, "initrd")
    pkg = image_package(ctx)
    kver = pkg.removeprefix("linux-image-")
    deb = fetch_deb(ctx, pkg)
    fp = fingerprint([deb], pkg)
    old_version = _read(target / "version")
    if (not ctx.force and stamp_matches(target, fp) and (target / "vmlinux").is_file()
            and (target / "modules" / kver / "modules.dep").is_file()):
        return f"up to date ({kver})"

    with atomic_dir(target) as tmp:
        x = tmp / ".x"
        run(["dpkg-deb", "-x", str(deb), str(x)], capture=True)
        vmlinuz = x / "boot" / f"vmlinuz-{kver}"
        if not vmlinuz.is_file():
            raise BuildError(f"{deb.name} has no boot/vmlinuz-{kver}")
        vmlinux = extract_vmlinux(vmlinuz.read_bytes())
        (tmp / "vmlinux").write_bytes(vmlinux)
        os.chmod(tmp / "vmlinux", 0o644)
        (tmp / "version").write_text(kver + "\n")
        os.chmod(tmp / "version", 0o644)

        mods = next((p for p in (x / "lib" / "modules" / kver, x / "usr" / "lib" / "modules" / kver)
                     if p.is_dir()), None)
        if mods is None:
            raise BuildError(f"{deb.name} has no lib/modules/{kver}")
        if any(f.endswith(".ko.zst") for _, _, fs in os.walk(mods) for f in fs):
            need_command(ctx, "zstd", "zstd")
        decompress_modules(mods)
        base = tmp / ".depmod"
        (base / "lib" / "modules").mkdir(parents=True)
        os.rename(mods, base / "lib" / "modules" / kver)
        sysmap = x / "boot" / f"System.map-{kver}"
        run([depmod, "-a", "-b", str(base), *(["-F", str(sysmap)] if sysmap.is_file() else []), kver],
            capture=True)
        (tmp / "modules").mkdir(mode=0o755)
        os.rename(base / "lib" / "modules" / kver, tmp / "modules" / kver)
        shutil.rmtree(base)
        shutil.rmtree(x)
        if old_version == kver and (target / "initrd").is_file():
            shutil.copy2(target / "initrd", tmp / "initrd")   # same kernel: the initrd's modules still match
        elif (target / "initrd").is_file():
            log(f"  kernel changed ({old_version} -> {kver}): old initrd dropped, re-run the initrd step")
        write_stamp(tmp, fp)
    size = (target / "vmlinux").stat().st_size
    return f"{kver}, vmlinux {human(size)} (from {deb.name})"


def _read(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def kernel_version(ctx: Context) -> str:
    """The kver of the kernel step's output; fails if the kernel step has not run."""
    v = _read(ctx.path(layout.KERNEL_VERSION))
    if not v or not (ctx.path(layout.MODULES) / v / "modules.dep").is_file():
        raise BuildError(f"no kernel in {ctx.path('kernel')}: run the 'kernel' step first")
    return v

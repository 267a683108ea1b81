"""`qemu` step: Debian's qemu-system-x86_64 with its ld.so, libs and firmware in $ROOT/qemu."""

from __future__ import annotations

import os
from pathlib import Path

from runq.build import elfdeps
from runq.build.common import (
    BuildError,
    Context,
    atomic_dir,
    clean_stale_tmp,
    copy_real,
    fingerprint,
    fix_dir_modes,
    human,
    log,
    need_file,
    run,
    stamp_matches,
    tree_size,
    write_stamp,
)

QEMU = "/usr/bin/qemu-system-x86_64"
# Firmware dirs, in QEMU's own search order: earlier wins (Debian builds with
# --firmwarepath=/usr/share/qemu:/usr/share/seabios:...; e.g. bios-microvm.bin is qboot in /usr/share/qemu).
FIRMWARE_DIRS = ("/usr/share/qemu", "/usr/share/seabios")
FIRMWARE_EXCLUDE = ("keymaps",)
# QEMU modules (dlopen'ed) that TCG needs: Debian builds the TCG accelerator ops as a module.
MODULE_DIR = "/usr/lib/x86_64-linux-gnu/qemu"
MODULES = ("accel-tcg-x86_64.so",)
# QEMU locates its module dir relative to its "exec dir" (/proc/self/exe). When started through the bundled loader
# that is qemu/lib/, and CONFIG_QEMU_MODDIR (/usr/lib/x86_64-linux-gnu/qemu) relocated against bindir (/usr/bin)
# becomes qemu/lib/../lib/x86_64-linux-gnu/qemu. Putting the modules there makes them found without QEMU_MODULE_DIR.
MODULE_SUBDIR = "lib/x86_64-linux-gnu/qemu"


def firmware_files() -> dict[str, str]:
    """Relative path under share/ -> source file (symlinks not resolved yet; dangling ones dropped)."""
    out: dict[str, str] = {}
    for top in reversed(FIRMWARE_DIRS):           # later dirs first, so earlier dirs overwrite
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            rel_dir = os.path.relpath(dirpath, top)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d not in FIRMWARE_EXCLUDE]
            for f in filenames:
                src = os.path.join(dirpath, f)
                if os.path.exists(src):
                    out[os.path.normpath(os.path.join(rel_dir, f))] = src
    return out


def argv(qdir: Path) -> list[str]:
    return [str(qdir / "lib" / "ld-linux-x86-64.so.2"), "--library-path", str(qdir / "lib"),
            str(qdir / "bin" / "qemu-system-x86_64")]


def check(qdir: Path) -> str:
    proc = run([*argv(qdir), "-L", str(qdir / "share"), "-M", "microvm", "-nodefaults", "-display", "none",
                "-version"], env={}, capture=True)
    return proc.stdout.splitlines()[0] if proc.stdout else ""


def machines(qdir: Path) -> list[str]:
    """Machine types this QEMU offers (first word of each `-M help` line after the header)."""
    proc = run([*argv(qdir), "-L", str(qdir / "share"), "-M", "help"], env={}, capture=True)
    return sorted({line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()})


def build(ctx: Context) -> str:
    need_file(ctx, QEMU, "qemu-system-x86")
    need_file(ctx, "/usr/share/qemu/qboot.rom", "qemu-system-data")
    need_file(ctx, "/usr/share/seabios/bios-256k.bin", "seabios")
    target = ctx.path("qemu")
    clean_stale_tmp(target.parent, target.name)
    modules = [os.path.join(MODULE_DIR, m) for m in MODULES]
    for m in modules:
        if not os.path.exists(m):
            raise BuildError(f"{m} missing (TCG needs it; it ships with qemu-system-x86)")
    try:
        libs = elfdeps.closure([QEMU, *modules])
    except elfdeps.ElfError as e:
        raise BuildError(str(e)) from e
    fw = firmware_files()
    fp = fingerprint([QEMU, *modules, *libs.values(), *fw.values()], repr(sorted(libs)), repr(sorted(fw)),
                     "with qemu/machines")
    if not ctx.force and stamp_matches(target, fp):
        return f"up to date ({check(target)})"

    with atomic_dir(target) as tmp:
        copy_real(QEMU, tmp / "bin" / "qemu-system-x86_64", 0o755)
        for soname, real in sorted(libs.items()):
            copy_real(real, tmp / "lib" / soname, 0o755)
        for m in modules:
            copy_real(m, tmp / MODULE_SUBDIR / os.path.basename(m), 0o755)
        for rel, src in sorted(fw.items()):
            copy_real(src, tmp / "share" / rel, 0o644)
        fix_dir_modes(tmp)
        check(tmp)
        (tmp / "machines").write_text("".join(m + "\n" for m in machines(tmp)))  # read by runq create
        write_stamp(tmp, fp)
    version = check(target)
    log(f"  qemu/: {len(libs)} libs, {len(modules)} modules, {len(fw)} firmware files, {human(tree_size(target))}")
    return f"{human(tree_size(target))}, {version}"


"""`initrd` step: $ROOT/kernel/initrd, an uncompressed cpio newc archive booting straight into the Python guest init.

Contents: /init (python script), Debian's python3.11 at its Debian paths with the stdlib subset the guest init
imports (.py + unchecked-hash __pycache__ pycs), the guest side of the runq package under /runq, the kernel
modules needed at boot under /modules (+ load.list), empty mount points and /dev/console.
"""

from __future__ import annotations

import ast
import os
import shutil
import stat
from pathlib import Path

from runq import layout
from runq.build import cpio, elfdeps
from runq.build.common import (
    LOADER_NAME,
    BuildError,
    Context,
    clean_env,
    clean_stale_tmp,
    copy_real,
    human,
    log,
    make_tmp_dir,
    need_file,
    run,
)
from runq.build.kernel import kernel_version
from runq.build.kmod import ModuleDB, ModuleError, strip_signature
from runq.build.pybundle import PY_VER, compile_tree

# Modules the guest may import lazily (inside functions), so they are not seen by importing runq.guest.init.
GUEST_EXTRA_MODULES: list[str] = ["ctypes", "json", "select", "signal", "struct", "termios", "fcntl", "resource",
                                  "errno", "pty", "tty", "stat"]
ENCODINGS = ["encodings", "encodings.aliases", "encodings.utf_8", "encodings.ascii", "encodings.latin_1"]
GUEST_ENTRY = "runq.guest.init"
# Files of the runq package the guest needs besides runq/guest/ (missing ones are only warned about).
GUEST_PACKAGE_FILES = ["__init__.py", "channel.py", "linux.py"]

REQUIRED_KMODS = ["virtio_mmio", "virtio_pci", "9p", "9pnet_virtio", "virtio_console", "virtio_rng", "virtio_net",
                  "virtio_blk"]
OPTIONAL_KMODS = ["vmw_vsock_virtio_transport"]

INIT_SCRIPT = ('#!/usr/bin/python3.11 -S\n'
               'import sys; sys.path.insert(0, "/runq"); from runq.guest.init import main; main()\n')
EMPTY_DIRS = {"proc": 0o555, "sys": 0o555, "dev": 0o755, "rootfs": 0o755, "tmp": 0o1777, "run": 0o755}
GUEST_STDLIB = "usr/lib/python3.11"
GUEST_LIBDIR = "lib/x86_64-linux-gnu"
SIZE_TARGET = 25_000_000
# Device nodes present before the guest init mounts devtmpfs: the kernel opens /dev/console for init's stdio, and
# Python's hash randomization falls back to /dev/urandom when getrandom() would block (crng not ready yet).
DEV_NODES = [("dev/console", 5, 1, 0o600), ("dev/null", 1, 3, 0o666), ("dev/urandom", 1, 9, 0o666)]

_DISCOVER = r'''
import sys
sys.path.insert(0, {src!r})
for _m in {mods!r}:
    __import__(_m)
print(repr({{n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}}))
'''


def guest_modules(ctx: Context) -> dict[str, str]:
    """module name -> file (in the bundled python / guest source) for everything the guest init imports."""
    mods = [GUEST_ENTRY, *ENCODINGS, *GUEST_EXTRA_MODULES]
    code = _DISCOVER.format(src=str(ctx.guest_src), mods=mods)
    proc = run(ctx.bundled_python("-P", "-c", code), env=clean_env(), cwd="/", capture=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"importing {GUEST_ENTRY} from {ctx.guest_src} with the bundled python failed:\n"
                         f"{proc.stderr.strip()}")
    found: dict[str, str | None] = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    return {n: f for n, f in sorted(found.items()) if f}


def plan_python(ctx: Context, files: dict[str, str]) -> tuple[dict[str, Path], list[str]]:
    """Split imported module files into (guest path -> source file) for the stdlib part, and runq extras.

    Returns (stdlib/lib-dynload/binary/lib mapping, list of extra runq-relative paths seen in sys.modules).
    """
    pydir = ctx.path(layout.PY_DIR)
    stdlib = (pydir / "lib" / PY_VER).resolve()
    pkg = (ctx.guest_src / "runq").resolve()
    out: dict[str, Path] = {}
    runq_extra: list[str] = []
    for name, f in files.items():
        p = Path(f).resolve()
        if p.is_relative_to(stdlib):
            out[f"{GUEST_STDLIB}/{p.relative_to(stdlib)}"] = p
        elif p.is_relative_to(pkg):
            runq_extra.append(str(p.relative_to(pkg)))
        else:
            raise BuildError(f"module {name} comes from {f}, outside the bundled stdlib and {pkg}")
    if f"{GUEST_STDLIB}/os.py" not in out:            # prefix landmark (os may be frozen, keep the file anyway)
        out[f"{GUEST_STDLIB}/os.py"] = stdlib / "os.py"

    # The interpreter and the shared libraries it and the chosen extension modules need, from py/lib.
    pylib = pydir / "lib"
    out[f"usr/bin/{PY_VER}"] = pydir / "bin" / PY_VER
    elves = [pydir / "bin" / PY_VER] + [src for dst, src in out.items() if dst.endswith(".so")]
    try:
        libs = elfdeps.closure(elves, [str(pylib)])
    except elfdeps.ElfError as e:
        raise BuildError(f"initrd: {e}") from e
    for soname in libs:
        if soname == LOADER_NAME:
            out[f"lib64/{LOADER_NAME}"] = pylib / LOADER_NAME
        else:
            out[f"{GUEST_LIBDIR}/{soname}"] = pylib / soname
    return out, runq_extra


def require_guest_init(ctx: Context) -> None:
    init = ctx.guest_src / "runq" / "guest" / "init.py"
    if not init.is_file():
        raise BuildError(f"{init} is missing: the initrd needs the guest init "
                         f"(use --guest-src DIR or RUNQ_GUEST_SRC to build from another source tree)")


def guest_package_files(ctx: Context, extra: list[str]) -> list[str]:
    """runq-relative .py files to ship: __init__/channel/linux, all of guest/, and any other runq module imported."""
    pkg = ctx.guest_src / "runq"
    require_guest_init(ctx)
    rels: set[str] = set()
    for f in GUEST_PACKAGE_FILES:
        if (pkg / f).is_file():
            rels.add(f)
        else:
            log(f"  warning: {pkg / f} missing, not in the initrd")
    for dirpath, dirnames, filenames in os.walk(pkg / "guest"):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rels.update(os.path.relpath(os.path.join(dirpath, f), pkg) for f in filenames if f.endswith(".py"))
    rels.update(e for e in extra if e.endswith(".py"))
    return sorted(rels)


def boot_modules(ctx: Context) -> tuple[str, list[Path]]:
    """(kver, .ko files in load order) for the modules needed at boot."""
    kver = kernel_version(ctx)
    tree = ctx.path(layout.MODULES) / kver
    try:
        db = ModuleDB.load(str(tree))
        order = db.load_order(REQUIRED_KMODS, OPTIONAL_KMODS)
    except ModuleError as e:
        raise BuildError(f"kernel modules: {e}") from e
    paths = [tree / db.paths[name] for name in order]
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise BuildError(f"duplicate module file names in {names}")
    for p in paths:
        if not p.name.endswith(".ko"):
            raise BuildError(f"{p} is not a plain .ko (the kernel step decompresses modules)")
    return kver, paths


def populate(ctx: Context, tree: Path) -> tuple[int, int, str]:
    """Fill the staging tree. Returns (number of stdlib modules, number of runq files, kver)."""
    require_guest_init(ctx)
    files = guest_modules(ctx)
    pyfiles, runq_extra = plan_python(ctx, files)
    runq_files = guest_package_files(ctx, runq_extra)
    kver, kos = boot_modules(ctx)

    for d, mode in EMPTY_DIRS.items():
        (tree / d).mkdir()
        os.chmod(tree / d, mode)
    (tree / GUEST_STDLIB / "lib-dynload").mkdir(parents=True)      # exec_prefix landmark, even if unused
    for dst, src in sorted(pyfiles.items()):
        executable = dst.endswith(".so") or dst.startswith(("usr/bin/", "lib64/", GUEST_LIBDIR + "/"))
        copy_real(src, tree / dst, 0o755 if executable else 0o644)
    pkg = ctx.guest_src / "runq"
    for rel in runq_files:
        copy_real(pkg / rel, tree / "runq" / "runq" / rel, 0o644)
    mdir = tree / layout.GUEST_MODULES_DIR.lstrip("/")
    mdir.mkdir()
    for ko in kos:
        (mdir / ko.name).write_bytes(strip_signature(ko.read_bytes()))
        os.chmod(mdir / ko.name, 0o644)
    (tree / layout.GUEST_MODULES_LIST.lstrip("/")).write_text("".join(k.name + "\n" for k in kos))
    (tree / "init").write_text(INIT_SCRIPT)
    os.chmod(tree / "init", 0o755)
    for dirpath, dirnames, _ in os.walk(tree):
        for d in dirnames:
            p = Path(dirpath) / d
            if p.relative_to(tree).as_posix() not in EMPTY_DIRS:
                os.chmod(p, 0o755)
    compile_tree(ctx.bundled_python(), tree, Path("/"))
    return len(pyfiles), len(runq_files), kver


def chroot_check(tree: Path) -> str:
    """Run the initrd's python natively in a chroot and import what the guest imports (needs root)."""
    chroot = shutil.which("chroot", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if os.geteuid() != 0 or not chroot:
        return "skipped (needs root)"
    mods = ",".join([GUEST_ENTRY, *GUEST_EXTRA_MODULES])
    proc = run([chroot, str(tree), f"/usr/bin/{PY_VER}", "-S", "-B", "-c",
                f"import sys; sys.path.insert(0, '/runq'); import {mods}; print(sys.prefix)"],
               env={"PATH": "/usr/bin:/bin"}, capture=True, check=False)
    if proc.returncode != 0 or proc.stdout.strip() != "/usr":
        raise BuildError(f"initrd python check failed in chroot:\n{proc.stdout}{proc.stderr}")
    return "ok"


def build(ctx: Context) -> str:
    target = ctx.path(layout.INITRD)
    if not target.parent.is_dir():
        raise BuildError(f"{target.parent} missing: run the 'kernel' step first")
    clean_stale_tmp(target.parent, target.name)
    work = make_tmp_dir(target.parent, "initrd")
    try:
        tree = work / "tree"
        tree.mkdir(mode=0o755)
        n_std, n_runq, kver = populate(ctx, tree)
        check = chroot_check(tree)
        nodes = [cpio.Entry(name, stat.S_IFCHR | perm, rdevmajor=major, rdevminor=minor)
                 for name, major, minor, perm in DEV_NODES]
        raw = work / "initrd.cpio"
        with open(raw, "wb") as f:
            size = cpio.write_tree(f, tree, nodes)
        out = compress_lz4(ctx, raw)
        packed = out.stat().st_size
        os.chmod(out, 0o644)
        os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if size > SIZE_TARGET:
        log(f"  warning: initrd is {human(size)}, above the {human(SIZE_TARGET)} target")
    return (f"{human(size)}, lz4 {human(packed)} ({n_std} python files, {n_runq} runq files, kernel {kver}, "
            f"chroot check {check})")


def compress_lz4(ctx: Context, raw: Path) -> Path:
    """lz4 legacy format, which the kernel unpacks itself. Under TCG a 14 MB initrd costs ~0.3 s more to load into
    the guest than its 6 MB lz4 form (measured), and unpacking lz4 is cheap."""
    need_file(ctx, "/usr/bin/lz4", "lz4")
    out = raw.with_suffix(".lz4")
    run(["lz4", "-l", "-9", "-q", "-f", str(raw), str(out)])
    return out


"""`python` step: a self-contained copy of Debian's python3.11 in $ROOT/py (binary, ld.so + libs, stdlib)."""

from __future__ import annotations

import os
from pathlib import Path

from runq import layout
from runq.build import elfdeps
from runq.build.common import (
    DEBIAN_PYTHON,
    DEBIAN_STDLIB,
    BuildError,
    Context,
    atomic_dir,
    clean_env,
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

PY_VER = "python3.11"
# Top-level stdlib entries left out of the bundle (fnmatch-free: exact names or prefixes ending in '*').
STDLIB_EXCLUDE_TOP = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
                      "config-3.11-*", "site-packages", "dist-packages")
# Directory names left out at any depth (test suites nested inside packages, bytecode caches).
STDLIB_EXCLUDE_ANY = ("__pycache__", "test", "tests", "idle_test")
# Loaded with dlopen() by glibc (pthread_cancel/pthread_exit unwinding), so not in any DT_NEEDED.
EXTRA_LIBS = ("libgcc_s.so.1", "libseccomp.so.2")  # glibc loads libgcc_s; runq create loads libseccomp
CHECK_IMPORTS = "sys,ctypes,json,ssl,socket,subprocess,resource,termios,fcntl,select,signal"


def _excluded_top(name: str) -> bool:
    for pat in STDLIB_EXCLUDE_TOP:
        if (pat.endswith("*") and name.startswith(pat[:-1])) or name == pat:
            return True
    return False


def stdlib_files(stdlib: str = DEBIAN_STDLIB) -> list[str]:
    """Relative paths of the stdlib files to bundle (after exclusions; dangling symlinks dropped)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(stdlib):
        rel_dir = os.path.relpath(dirpath, stdlib)
        keep = []
        for d in sorted(dirnames):
            if rel_dir == "." and _excluded_top(d):
                continue
            if d in STDLIB_EXCLUDE_ANY:
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if rel_dir == "." and _excluded_top(f):
                continue
            full = os.path.join(dirpath, f)
            if not os.path.exists(full):        # dangling symlink
                continue
            out.append(os.path.normpath(os.path.join(rel_dir, f)))
    return out


def python_libs(python: str = DEBIAN_PYTHON, stdlib: str = DEBIAN_STDLIB) -> dict[str, str]:
    """soname -> real path for python and every lib-dynload extension (plus EXTRA_LIBS and ld.so)."""
    dynload = os.path.join(stdlib, "lib-dynload")
    roots = [python] + sorted(os.path.join(dynload, f) for f in os.listdir(dynload) if f.endswith(".so"))
    dirs = elfdeps.search_dirs()
    for lib in EXTRA_LIBS:
        loc = elfdeps._find(lib, dirs)
        if loc:
            roots.append(loc)
    libs = elfdeps.closure(roots, dirs)
    for lib in EXTRA_LIBS:
        loc = elfdeps._find(lib, dirs)
        if loc:
            libs[lib] = os.path.realpath(loc)
    return libs


def compile_tree(ctx_python: list[str], tree: Path, final: Path | None = None, jobs: int = 0) -> None:
    """Precompile every .py under `tree` (unchecked-hash pycs); `final` is the path recorded in the pycs."""
    # -B: the imports done by compileall itself must not leave timestamp pycs behind; -f: rewrite any existing pyc.
    argv = [*ctx_python, "-B", "-m", "compileall", "-q", "-f", f"-j{jobs}", "--invalidation-mode", "unchecked-hash"]
    if final is not None:
        argv += ["-s", str(tree), "-p", str(final)]
    run([*argv, str(tree)], env=clean_env(), capture=True)


def loader_argv(pydir: Path) -> list[str]:
    return [str(pydir / "lib" / "ld-linux-x86-64.so.2"), "--library-path", str(pydir / "lib"),
            str(pydir / "bin" / PY_VER), "-S"]


def check(pydir: Path) -> str:
    """The acceptance check: the bundled python imports the essentials with `env -i` and reports its prefix."""
    proc = run([*loader_argv(pydir), "-c", f"import {CHECK_IMPORTS}; print(sys.prefix)"],
               env={}, capture=True)
    return proc.stdout.strip()


def build(ctx: Context) -> str:
    need_file(ctx, DEBIAN_PYTHON, "python3.11")
    need_file(ctx, os.path.join(DEBIAN_STDLIB, "lib-dynload"), "libpython3.11-stdlib")
    target = ctx.path(layout.PY_DIR)
    clean_stale_tmp(target.parent, target.name)
    files = stdlib_files()
    try:
        libs = python_libs()
    except elfdeps.ElfError as e:
        raise BuildError(str(e)) from e
    fp = fingerprint([DEBIAN_PYTHON, *libs.values(), *(os.path.join(DEBIAN_STDLIB, f) for f in files)],
                     repr(sorted(libs)), repr(files))
    if not ctx.force and stamp_matches(target, fp):
        return f"up to date ({check(target)})"

    with atomic_dir(target) as tmp:
        copy_real(DEBIAN_PYTHON, tmp / "bin" / PY_VER, 0o755)
        for soname, real in sorted(libs.items()):
            copy_real(real, tmp / "lib" / soname, 0o755)
        std = tmp / "lib" / PY_VER
        for rel in files:
            src = os.path.join(DEBIAN_STDLIB, rel)
            copy_real(src, std / rel, 0o755 if rel.endswith(".so") else 0o644)
        fix_dir_modes(tmp)
        compile_tree(loader_argv(tmp), std, target / "lib" / PY_VER)
        got = check(tmp)
        if got != str(tmp):
            raise BuildError(f"bundled python reports sys.prefix={got!r}, expected {str(tmp)!r}")
        write_stamp(tmp, fp)
    got = check(target)
    if got != str(target):
        raise BuildError(f"bundled python reports sys.prefix={got!r}, expected {str(target)!r}")
    log(f"  py/: {len(libs)} libs, {len(files)} stdlib files, {human(tree_size(target))}; sys.prefix={got}")
    return f"{human(tree_size(target))}"

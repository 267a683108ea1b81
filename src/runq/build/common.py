"""Shared helpers for the build steps: logging, subprocesses, atomic output, copying, apt, fingerprints."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runq import layout

LOADER_NAME = "ld-linux-x86-64.so.2"
HOST_LOADER = "/lib64/ld-linux-x86-64.so.2"
DEBIAN_PYTHON = "/usr/bin/python3.11"
DEBIAN_STDLIB = "/usr/lib/python3.11"
STAMP_NAME = ".build-stamp"
TMP_PREFIX = ".tmp-"
# Bumped whenever the produced layout changes, so that fingerprint stamps from older builds are invalidated.
BUILD_FORMAT = "1"


class BuildError(Exception):
    """A step failed with a message meant for the user (no traceback needed)."""


@dataclass
class Context:
    """Everything a step needs to know: where to write and where the sources are."""

    root: Path                      # runtime root being assembled
    src: Path                       # directory holding the `runq` package (lib step)
    guest_src: Path                 # directory holding the `runq` package for the initrd (guest side)
    cache: Path                     # download cache (kernel .deb)
    force: bool = False
    tag: str = "busybox:latest"
    verbose: bool = False
    _apt_updated: list[bool] = field(default_factory=lambda: [False])

    def path(self, rel: str) -> Path:
        return self.root / rel

    def bundled_python(self, *args: str) -> list[str]:
        """argv running the bundled python (from the py step) through its own loader; fails if it is missing."""
        py = self.path(layout.PY_BIN)
        loader = self.path(layout.PY_LIB) / LOADER_NAME
        if not py.is_file() or not loader.is_file():
            raise BuildError(f"bundled python missing under {self.path(layout.PY_DIR)}: run the 'python' step first")
        return [str(loader), "--library-path", str(self.path(layout.PY_LIB)), str(py), "-S", *args]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, capture: bool = False, env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise BuildError with its output."""
    try:
        proc = subprocess.run(list(argv), text=True, env=env, cwd=cwd,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)
    except FileNotFoundError as e:
        raise BuildError(f"command not found: {argv[0]}") from e
    if check and proc.returncode != 0:
        detail = ""
        if capture:
            detail = ("\n" + (proc.stdout or "") + (proc.stderr or "")).rstrip()
        raise BuildError(f"command failed (exit {proc.returncode}): {' '.join(map(str, argv))}{detail}")
    return proc


def clean_env() -> dict[str, str]:
    """A minimal environment (like `env -i`) for running bundled binaries."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}


# ---------------------------------------------------------------------------------------------------------------------
# apt

def apt_install(ctx: Context, packages: Iterable[str]) -> None:
    """apt-get install -y the packages (running apt-get update once if a package is not found)."""
    pkgs = list(packages)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = run(["apt-get", "install", "-y", "--no-install-recommends", *pkgs], capture=True, env=env, check=False)
    if proc.returncode != 0 and not ctx._apt_updated[0]:
        apt_update(ctx)
        proc = run(["apt-get", "install", "-y", "--no-install-recommends", *pkgs], capture=True, env=env, check=False)
    if proc.returncode != 0:
        raise BuildError(f"apt-get install {' '.join(pkgs)} failed:\n{proc.stdout}{proc.stderr}")


def apt_update(ctx: Context) -> None:
    if not ctx._apt_updated[0]:
        log("  apt-get update")
        run(["apt-get", "update", "-q"], capture=True)
        ctx._apt_updated[0] = True


def need_command(ctx: Context, command: str, package: str) -> str:
    """Path of `command`, installing the Debian `package` that provides it if needed."""
    found = shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""))
    if found:
        return found
    log(f"  installing {package} (for {command})")
    apt_install(ctx, [package])
    found = shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise BuildError(f"{command} still missing after installing {package}")
    return found


def need_file(ctx: Context, path: str, package: str) -> None:
    """Make sure `path` exists, installing the Debian `package` that provides it if not."""
    if not os.path.exists(path):
        log(f"  installing {package} (for {path})")
        apt_install(ctx, [package])
        if not os.path.exists(path):
            raise BuildError(f"{path} still missing after installing {package}")


# ---------------------------------------------------------------------------------------------------------------------
# atomic output

def clean_stale_tmp(parent: Path, name: str) -> None:
    """Remove leftovers of interrupted builds of `name` (our own temp dirs/files `.tmp-<name>-*`) in `parent`."""
    for p in glob.glob(str(parent / f"{TMP_PREFIX}{glob.escape(name)}-*")):
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(p)


def make_tmp_dir(parent: Path, name: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=parent))
    os.chmod(tmp, 0o755)
    return tmp


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging dir next to `target`; on success it replaces `target`, on failure it is removed."""
    tmp = make_tmp_dir(target.parent, target.name)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, target)


def replace_dir(new: Path, target: Path) -> None:
    """Put directory `new` in place of `target` (two renames, then the old tree is removed)."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-old-", dir=target.parent))
        os.rename(target, old / target.name)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_atomic(target: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write a file via a temp file in the same directory plus rename."""
    if isinstance(data, str):
        data = data.encode()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------------------------------
# copying

def copy_real(src: str | os.PathLike[str], dst: Path, mode: int | None = None) -> None:
    """Copy the file `src` points to (symlinks followed) to `dst`, with an explicit mode (default: src mode & 0755)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    if mode is None:
        mode = 0o755 if os.stat(src).st_mode & 0o111 else 0o644
    os.chmod(dst, mode)


def fix_dir_modes(top: Path) -> None:
    """0755 for every directory under (and including) `top` (mkdtemp creates 0700)."""
    os.chmod(top, 0o755)
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


# ---------------------------------------------------------------------------------------------------------------------
# fingerprints (skip a step when its inputs did not change)

def fingerprint(paths: Iterable[str | os.PathLike[str]], *extra: str) -> str:
    """Hash of (path, size, mtime) of the input files, plus extra strings and the build format."""
    h = hashlib.sha256(f"format={BUILD_FORMAT}\n".encode())
    for e in extra:
        h.update(f"extra={e}\n".encode())
    for p in sorted(set(map(str, paths))):
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


def stamp_matches(target: Path, fp: str) -> bool:
    try:
        return (target / STAMP_NAME).read_text().strip() == fp
    except OSError:
        return False


def write_stamp(staging: Path, fp: str) -> None:
    (staging / STAMP_NAME).write_text(fp + "\n")
    os.chmod(staging / STAMP_NAME, 0o644)


def human(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def tree_size(top: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(top):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total

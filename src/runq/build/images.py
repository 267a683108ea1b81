"""`busybox-image` step: a tiny local Docker image (Debian's static busybox + users) for tests."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from runq.build import elfdeps
from runq.build.common import BuildError, Context, apt_update, log, need_command, run

BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
users:x:100:
alice:x:1000:
nogroup:x:65534:
"""
# (path, mode, uid, gid)
DIRS = [("bin", 0o755, 0, 0), ("dev", 0o755, 0, 0), ("etc", 0o755, 0, 0), ("home", 0o755, 0, 0),
        ("home/alice", 0o755, 1000, 1000), ("proc", 0o555, 0, 0), ("root", 0o700, 0, 0), ("sys", 0o555, 0, 0),
        ("tmp", 0o1777, 0, 0), ("var", 0o755, 0, 0)]


def is_static(path: str) -> bool:
    try:
        info = elfdeps.read_dynamic(path)
    except (OSError, elfdeps.ElfError):
        return False
    return info.interp is None and not info.needed


def static_busybox(ctx: Context, workdir: Path) -> Path:
    """A static busybox binary from Debian's busybox-static (installed, else downloaded and unpacked)."""
    for c in BUSYBOX_CANDIDATES:
        if is_static(c):
            return Path(c)
    need_command(ctx, "dpkg-deb", "dpkg")
    ctx.cache.mkdir(parents=True, exist_ok=True)
    log(f"  apt-get download {BUSYBOX_PACKAGE}")
    proc = run(["apt-get", "download", BUSYBOX_PACKAGE], cwd=ctx.cache, capture=True, check=False)
    if proc.returncode != 0:
        apt_update(ctx)
        run(["apt-get", "download", BUSYBOX_PACKAGE], cwd=ctx.cache, capture=True)
    debs = sorted(ctx.cache.glob(f"{BUSYBOX_PACKAGE}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise BuildError(f"apt-get download {BUSYBOX_PACKAGE} produced no .deb in {ctx.cache}")
    run(["dpkg-deb", "-x", str(debs[-1]), str(workdir / "x")], capture=True)
    for c in BUSYBOX_CANDIDATES:
        p = workdir / "x" / c.lstrip("/")
        if is_static(str(p)):
            return p
    raise BuildError(f"no static busybox in {debs[-1]}")


def applets(busybox: Path) -> list[str]:
    out = run([str(busybox), "--list"], capture=True).stdout.split()
    return sorted(a for a in set(out) if a and "/" not in a and a != "busybox")


def rootfs_tar(busybox: bytes, applet_names: list[str]) -> bytes:
    """The image rootfs as a tar (numeric owners, mtime 0, sorted)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, data: bytes = b"",
                link: str = "") -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime, ti.linkname = kind, mode, uid, gid, 0, link
            ti.uname = ti.gname = ""
            ti.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for path, mode, uid, gid in DIRS:
            add(path, tarfile.DIRTYPE, mode, uid, gid)
        add("bin/busybox", tarfile.REGTYPE, 0o755, data=busybox)
        for a in applet_names:
            add(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, data=PASSWD.encode())
        add("etc/group", tarfile.REGTYPE, 0o644, data=GROUP.encode())
    return buf.getvalue()


def build(ctx: Context) -> str:
    docker = need_command(ctx, "docker", "docker.io")
    exists = run([docker, "image", "inspect", ctx.tag], capture=True, check=False).returncode == 0
    if exists and not ctx.force:
        return f"{ctx.tag} exists (use --force to rebuild)"
    work = Path(tempfile.mkdtemp(prefix="runq-busybox-"))
    try:
        bb = static_busybox(ctx, work)
        names = applets(bb)
        data = rootfs_tar(bb.read_bytes(), names)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    proc = subprocess.run([docker, "import", "-c", 'CMD ["sh"]', "-", ctx.tag], input=data,
                          capture_output=True)
    if proc.returncode != 0:
        raise BuildError(f"docker import failed: {proc.stderr.decode(errors='replace').strip()}")
    return f"{ctx.tag} ({len(names)} applets, {len(data) // 1024} KiB tar, {proc.stdout.decode().strip()[:19]})"

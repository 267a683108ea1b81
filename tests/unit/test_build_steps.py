"""Pure logic of the build steps: what gets bundled, in which order, and what fails loudly."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from runq.build import __main__ as cli
from runq.build import images, initrd, lib, pybundle, qemu
from runq.build.common import BuildError, Context, atomic_dir


def _ctx(tmp_path: Path, guest_src: Path | None = None) -> Context:
    return Context(root=tmp_path / "root", src=tmp_path / "src", guest_src=guest_src or tmp_path / "src",
                   cache=tmp_path / "cache")


def test_all_runs_kernel_before_initrd_and_never_the_image(tmp_path: Path) -> None:
    assert cli.expand(["all"]) == ["python", "qemu", "kernel", "lib", "initrd"]
    assert cli.expand(["initrd", "all", "busybox-image"])[-1] == "busybox-image"
    assert cli.expand(["lib", "lib"]) == ["lib"]


def test_stdlib_copy_drops_tests_tk_idle_config_and_caches(tmp_path: Path) -> None:
    std = tmp_path / "python3.11"
    for rel in ["os.py", "json/__init__.py", "json/__pycache__/x.pyc", "test/test_os.py", "idlelib/a.py",
                "tkinter/b.py", "config-3.11-x86_64-linux-gnu/Makefile", "dist-packages/pkg.py",
                "lib-dynload/_json.cpython-311-x86_64-linux-gnu.so", "unittest/test/t.py", "unittest/case.py"]:
        (std / rel).parent.mkdir(parents=True, exist_ok=True)
        (std / rel).write_text("")
    os.symlink("/nonexistent/sitecustomize.py", std / "sitecustomize.py")       # dangling: dropped
    assert sorted(pybundle.stdlib_files(str(std))) == [
        "json/__init__.py", "lib-dynload/_json.cpython-311-x86_64-linux-gnu.so", "os.py", "unittest/case.py"]


def test_qemu_firmware_from_the_first_dir_wins_and_keymaps_are_skipped(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    q, s = tmp_path / "qemu", tmp_path / "seabios"
    (q / "keymaps").mkdir(parents=True)
    s.mkdir()
    (q / "qboot.rom").write_text("qboot")
    os.symlink("qboot.rom", q / "bios-microvm.bin")
    (s / "bios-microvm.bin").write_text("seabios microvm")
    (s / "bios-256k.bin").write_text("seabios")
    (q / "keymaps" / "de").write_text("")
    monkeypatch.setattr(qemu, "FIRMWARE_DIRS", (str(q), str(s)))
    fw = qemu.firmware_files()
    assert sorted(fw) == ["bios-256k.bin", "bios-microvm.bin", "qboot.rom"]
    assert Path(fw["bios-microvm.bin"]).read_text() == "qboot"


def test_busybox_rootfs_has_applet_links_users_and_sticky_tmp() -> None:
    data = images.rootfs_tar(b"\x7fELFbusybox", ["sh", "ls", "id"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        m = {t.name: t for t in tar.getmembers()}
        assert m["bin/sh"].issym() and m["bin/sh"].linkname == "busybox"
        assert m["bin/busybox"].mode == 0o755
        assert (m["home/alice"].uid, m["home/alice"].gid) == (1000, 1000)
        assert m["tmp"].mode == 0o1777
        assert all(t.mtime == 0 for t in m.values())
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
        group = tar.extractfile("etc/group").read().decode()    # type: ignore[union-attr]
    assert "alice:x:1000:1000:alice:/home/alice:/bin/sh" in passwd.splitlines()
    assert {line.split(":")[0]: line.split(":")[2] for line in passwd.splitlines()} == {
        "root": "0", "daemon": "1", "alice": "1000", "nobody": "65534"}
    assert {line.split(":")[0]: line.split(":")[2] for line in group.splitlines()} == {
        "root": "0", "daemon": "1", "users": "100", "alice": "1000", "nogroup": "65534"}


def _guest_tree(top: Path, with_init: bool = True) -> None:
    (top / "runq" / "guest" / "__pycache__").mkdir(parents=True)
    (top / "runq" / "__init__.py").write_text("__version__ = '9.9'\n")
    (top / "runq" / "channel.py").write_text("")
    (top / "runq" / "cli.py").write_text("")           # host side: not shipped unless imported
    (top / "runq" / "guest" / "__init__.py").write_text("")
    (top / "runq" / "guest" / "__pycache__" / "x.pyc").write_text("")
    if with_init:
        (top / "runq" / "guest" / "init.py").write_text("def main(): pass\n")


def test_initrd_ships_guest_package_plus_imported_runq_modules_only(tmp_path: Path) -> None:
    _guest_tree(tmp_path / "src")
    files = initrd.guest_package_files(_ctx(tmp_path), ["layout.py"])
    assert files == ["__init__.py", "channel.py", "guest/__init__.py", "guest/init.py", "layout.py"]


def test_initrd_fails_clearly_without_guest_init(tmp_path: Path) -> None:
    _guest_tree(tmp_path / "src", with_init=False)
    with pytest.raises(BuildError, match="guest/init.py is missing"):
        initrd.guest_package_files(_ctx(tmp_path), [])


def test_init_script_runs_guest_main_with_debian_python_without_site() -> None:
    first, second = initrd.INIT_SCRIPT.splitlines()
    assert first == "#!/usr/bin/python3.11 -S"
    assert 'sys.path.insert(0, "/runq")' in second and "from runq.guest.init import main; main()" in second
    assert initrd.GUEST_EXTRA_MODULES[:12] == ["ctypes", "json", "select", "signal", "struct", "termios", "fcntl",
                                               "resource", "errno", "pty", "tty", "stat"]


def test_lib_copies_only_py_files_and_reads_version_without_importing(tmp_path: Path) -> None:
    _guest_tree(tmp_path / "src")
    (tmp_path / "src" / "runq" / "notes.txt").write_text("")
    assert lib.package_files(tmp_path / "src" / "runq") == ["__init__.py", "channel.py", "cli.py",
                                                             "guest/__init__.py", "guest/init.py"]
    assert lib.source_version(tmp_path / "src").startswith("9.9")


def test_failed_atomic_build_leaves_the_old_output_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["old"]
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["new"]
    assert oct(target.stat().st_mode & 0o777) == "0o755"

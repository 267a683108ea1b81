"""Where things live: the runtime root on the host, its bind mount inside the container, and the initrd.

Standard library only: imported by the host CLI, the proxy and (partly) the build.

Runtime root (default /var/lib/runq, env RUNQ_ROOT or runtime flag --runq-root):

    runq                      entry point (sh script running the bundled Python on runq.cli)
    py/                       self-contained Python: bin/python3.11, lib/ld-linux-x86-64.so.2 + .so deps,
                              lib/python3.11/ (stdlib, lib-dynload)
    lib/                      the runq package (lib/runq/...) and pinned pure-Python host deps
    lib/runq-proxy            the proxy launcher script (python file)
    qemu/bin/qemu-system-x86_64, qemu/lib/ (ld.so + .so deps), qemu/share/ (firmware for -L), qemu/machines
    kernel/vmlinux            uncompressed guest kernel, booted via PVH
    kernel/initrd             cpio newc, lz4 (legacy): /init (python guest init), python subset, boot modules
    kernel/modules/<kver>/    full module tree of the guest kernel (shared read-only over 9p at /lib/modules)
    kernel/version            <kver>
    rootfs/ dev/ proc/ sys/   empty mount points used by the proxy after pivot_root
    run/                      mount point for the per-container state dir (proxy payload)
    VERSION                   build stamp (runq version + git commit)

Inside a container the runtime root is bind-mounted read-only at CONTAINER_MOUNT; the proxy then pivots into it so
the container's rootfs ends up at /rootfs.
"""

from __future__ import annotations

import os

DEFAULT_ROOT = "/var/lib/runq"
CONTAINER_MOUNT = "/.runq"
LOADER = "lib/ld-linux-x86-64.so.2"

PY_DIR = "py"
PY_BIN = "py/bin/python3.11"
PY_LIB = "py/lib"
LIB_DIR = "lib"
PROXY_LAUNCHER = "lib/runq-proxy"
QEMU_BIN = "qemu/bin/qemu-system-x86_64"
QEMU_LIB = "qemu/lib"
QEMU_SHARE = "qemu/share"
QEMU_MACHINES = "qemu/machines"  # machine types the bundled QEMU offers, one per line (written by the build)
KERNEL = "kernel/vmlinux"
INITRD = "kernel/initrd"
MODULES = "kernel/modules"
KERNEL_VERSION = "kernel/version"
PIVOT_DIRS = ("rootfs", "dev", "proc", "sys", "run")  # mount points: pivot targets and the state-dir bind

# In the guest initrd
GUEST_MODULES_DIR = "/modules"          # *.ko needed at boot
GUEST_MODULES_LIST = "/modules/load.list"  # one file name per line, in load order


def runtime_root() -> str:
    """The runtime root on the host: $RUNQ_ROOT or the default."""
    return os.environ.get("RUNQ_ROOT") or DEFAULT_ROOT


def python_argv(root: str, script: str) -> list[str]:
    """argv running `script` with the bundled Python through its own loader (no host libraries involved)."""
    return [
        os.path.join(root, PY_LIB, "ld-linux-x86-64.so.2"),
        "--library-path", os.path.join(root, PY_LIB),
        os.path.join(root, PY_BIN), "-S", script,
    ]


def qemu_argv0(root: str) -> list[str]:
    """argv prefix running the bundled QEMU through its own loader."""
    return [
        os.path.join(root, QEMU_LIB, "ld-linux-x86-64.so.2"),
        "--library-path", os.path.join(root, QEMU_LIB),
        os.path.join(root, QEMU_BIN),
    ]


def qemu_machines(root: str) -> list[str] | None:
    """Machine types of the bundled QEMU, or None when the build did not record them."""
    try:
        with open(os.path.join(root, QEMU_MACHINES)) as f:
            return f.read().split()
    except OSError:
        return None

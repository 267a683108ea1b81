#!/usr/bin/env python3
"""Start-up cost of a runq container against the boot floor and runc, measured in one interleaved run.

    python3 bench/startup.py [--rounds 10] [--root /var/lib/runq] [--image busybox:latest]

(a) floor: the same QEMU, kernel and kernel command line as runq, booting a trivial busybox init (lz4 initrd, as
    runq's) that loads the same boot modules, mounts the 9p share and powers off (wall time from spawning QEMU to
    its exit);
(b) `docker run --rm --runtime runq IMAGE true`;
(c) `docker run --rm --runtime runc IMAGE true`.
Prints the medians and the ratios b/a and b/c. Needs root, dockerd, and an installed runtime root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

from runq import accel  # noqa: E402
from runq.build.cpio import Entry, write_tree  # noqa: E402
from runq.config import VMConfig  # noqa: E402
from runq.guest.init import ON_DEMAND, PCI_ONLY  # noqa: E402
from runq.proxy.qemu import qemu_argv  # noqa: E402

FLOOR_INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
for m in $(/bin/busybox cat /modules/boot.list); do /bin/busybox insmod /modules/$m 2>/dev/null; done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap rootfs /mnt
/bin/busybox ls /mnt >/dev/null
/bin/busybox reboot -f
"""


def read_cpio(path: str) -> dict[str, bytes]:
    """Regular files of a newc archive (enough to borrow the boot modules from runq's initrd)."""
    out: dict[str, bytes] = {}
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x02\x21\x4c\x18":  # lz4 legacy frame, as runq's build writes it
        data = subprocess.run(["lz4", "-d", "-c", path], capture_output=True, check=True).stdout
    pos = 0
    while pos + 110 <= len(data):
        hdr = data[pos:pos + 110]
        fields = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += (4 - pos % 4) % 4
        if name == "TRAILER!!!":
            break
        if mode & 0o170000 == 0o100000:
            out[name] = data[pos:pos + filesize]
        pos += filesize
        pos += (4 - pos % 4) % 4
    return out


def build_floor_initrd(root: str, work: str) -> str:
    tree = os.path.join(work, "tree")
    for d in ("bin", "proc", "sys", "dev", "mnt", "modules"):
        os.makedirs(os.path.join(tree, d))
    shutil.copy("/bin/busybox", os.path.join(tree, "bin/busybox"))
    for name, blob in read_cpio(os.path.join(root, "kernel/initrd")).items():
        if name.startswith("modules/"):
            with open(os.path.join(tree, name), "wb") as f:
                f.write(blob)
    with open(os.path.join(tree, "modules/load.list")) as f:
        boot = [m for m in f.read().split() if m[:-3] not in ON_DEMAND + PCI_ONLY]  # what runq's init loads
    with open(os.path.join(tree, "modules/boot.list"), "w") as f:
        f.write("\n".join(boot) + "\n")
    with open(os.path.join(tree, "init"), "w") as f:
        f.write(FLOOR_INIT)
    os.chmod(os.path.join(tree, "init"), 0o755)
    raw = os.path.join(work, "floor.cpio")
    with open(raw, "wb") as f:
        write_tree(f, tree, [Entry("dev/console", 0o020600, rdevmajor=5, rdevminor=1)])
    subprocess.run(["lz4", "-l", "-9", "-q", "-f", raw, raw + ".lz4"], check=True)  # packed like runq's
    return raw + ".lz4"


def floor_argv(root: str, initrd: str, share: str, fds: tuple[int, int]) -> list[str]:
    vm = VMConfig(name="floor", cpus=1, mem=256, accel="tcg" if not accel.kvm_status()[0] else "kvm",
                  accel_reason="", cpuargs="host", machine="microvm", nestedvm=False, cache9p="mmap",
                  tsc_khz=accel.tsc_khz(), debug=False, boot_timeout=60)
    argv = qemu_argv(vm, root=root, rootfs=share, channel_fd=fds[0], console_fd=fds[1])
    argv[argv.index("-initrd") + 1] = initrd
    return argv


def time_floor(argv: list[str], fds: tuple[int, int]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120, check=True)
    return time.monotonic() - t0


def time_docker(runtime: str, image: str) -> float:
    t0 = time.monotonic()
    subprocess.run(["docker", "run", "--rm", "--runtime", runtime, image, "true"], check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--root", default=os.environ.get("RUNQ_ROOT", "/var/lib/runq"))
    ap.add_argument("--image", default="busybox:latest")
    ap.add_argument("--runtime", default="runq")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="runq-bench-") as work:
        initrd = build_floor_initrd(a.root, work)
        share = os.path.join(work, "share")
        os.makedirs(share)
        s1, s2 = socket.socketpair(), socket.socketpair()
        fds = (s1[1].fileno(), s2[1].fileno())
        argv = floor_argv(a.root, initrd, share, fds)
        time_docker(a.runtime, a.image)  # warm caches once, not counted
        res: dict[str, list[float]] = {"floor": [], a.runtime: [], "runc": []}
        for i in range(a.rounds):
            res["floor"].append(time_floor(argv, fds))
            res[a.runtime].append(time_docker(a.runtime, a.image))
            res["runc"].append(time_docker("runc", a.image))
            print(f"round {i + 1}/{a.rounds}: " + "  ".join(f"{k} {v[-1]:.2f}s" for k, v in res.items()),
                  file=sys.stderr)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"median floor (a)              {med['floor']:.2f} s")
    print(f"median docker run {a.runtime:<8} (b) {med[a.runtime]:.2f} s")
    print(f"median docker run runc     (c) {med['runc']:.2f} s")
    print(f"b/a = {med[a.runtime] / med['floor']:.2f}   b/c = {med[a.runtime] / med['runc']:.2f}   "
          f"(rounds: {a.rounds}, accel: {argv[argv.index('-accel') + 1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

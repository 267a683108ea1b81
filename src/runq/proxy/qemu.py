"""The QEMU command line, built from one frozen :class:`VMConfig` and nothing else."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .. import layout
from ..channel import PORT_NAME
from ..config import VMConfig

# Measured on TCG (boot-measurements.md §1): each of these shortens boot or keeps it from hanging.
BASE_CMDLINE = (
    "console=ttyS0 panic=-1 no_timer_check tsc=reliable cryptomgr.notests mitigations=off init_on_alloc=0 "
    "audit=0 lsm=lockdown,yama random.trust_cpu=on nowatchdog rdinit=/init PYTHONHASHSEED=0"
)
# Python in the guest starts 3x faster without ASLR (QEMU reuses translated blocks); init switches ASLR back on
# (kernel.randomize_va_space=2) before it starts the workload.
FAST_PYTHON = "norandmaps"



def kernel_cmdline(vm: VMConfig) -> str:
    parts = [BASE_CMDLINE, FAST_PYTHON]
    if vm.accel == "tcg" and vm.machine == "microvm" and vm.tsc_khz:
        parts.append(f"tsc_early_khz={vm.tsc_khz}")  # microvm has no HPET/PM timer: PIT calibration can hang TCG
    parts.append("loglevel=7" if vm.debug else "quiet loglevel=1")
    if vm.machine != "microvm":
        parts.append("runq.vbus=pci")
    return " ".join(parts)


def _dev(vm: VMConfig, kind: str, props: str = "") -> str:
    """virtio-<kind>-device on microvm (virtio-mmio), virtio-<kind>-pci elsewhere."""
    if vm.machine == "microvm":
        name = f"virtio-{kind}-device"
    else:
        name = f"virtio-{kind}-pci" + (",disable-modern=true" if vm.nestedvm else "")
    return name + ("," + props if props else "")


def qemu_argv(vm: VMConfig, root: str = "/", readonly_root: bool = False,
              rootfs: str = "/rootfs", channel_fd: int = 3, console_fd: int = 4,
              nics: Sequence[tuple[int, str]] = ()) -> list[str]:
    """argv for QEMU as run by the proxy after pivot_root (runtime root at `root`, container rootfs at `rootfs`).

    `nics`: (fd, mac) per guest NIC; fd is an open macvtap or tap device the proxy passes to QEMU.
    """
    argv = layout.qemu_argv0(root)
    argv += ["-name", vm.name, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
             "-L", os.path.join(root, layout.QEMU_SHARE)]
    if vm.machine == "microvm":
        argv += ["-M", "microvm,x-option-roms=off,isa-serial=on"]
    else:
        argv += ["-M", vm.machine]
    if vm.accel == "kvm":
        cpu = vm.cpuargs + (",pmu=off" if vm.nestedvm else "")
        argv += ["-accel", "kvm", "-cpu", cpu]
    else:
        argv += ["-accel", "tcg,thread=" + ("multi" if vm.cpus > 1 else "single"), "-cpu", "max"]
    argv += ["-m", str(vm.mem), "-smp", str(vm.cpus)]
    argv += ["-kernel", os.path.join(root, layout.KERNEL), "-initrd", os.path.join(root, layout.INITRD),
             "-append", kernel_cmdline(vm)]
    # Guest console (kernel messages, init's early errors): a socket the proxy reads, never the workload's stdio.
    argv += ["-chardev", f"socket,id=con0,fd={console_fd}", "-serial", "chardev:con0"]
    ro = ",readonly=on" if readonly_root else ""
    argv += ["-fsdev", f"local,id=fs0,path={rootfs},security_model=none,multidevs=remap{ro}",
             "-device", _dev(vm, "9p", "fsdev=fs0,mount_tag=rootfs")]
    argv += ["-fsdev", f"local,id=fs1,path={os.path.join(root, layout.MODULES)},security_model=none,readonly=on",
             "-device", _dev(vm, "9p", "fsdev=fs1,mount_tag=modules")]
    argv += ["-device", _dev(vm, "serial", "max_ports=2"),
             "-chardev", f"socket,id=ch0,fd={channel_fd}",
             "-device", f"virtserialport,chardev=ch0,name={PORT_NAME}"]
    argv += ["-device", _dev(vm, "rng")]
    for i, (fd, mac) in enumerate(nics):
        rom = "" if vm.machine == "microvm" else ",romfile="  # no iPXE option ROM: we never network-boot
        argv += ["-netdev", f"tap,id=net{i},fd={fd}", "-device", _dev(vm, "net", f"netdev=net{i},mac={mac}{rom}")]
    return argv

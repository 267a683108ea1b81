"""QEMU command line built from the frozen VMConfig (runq.proxy.qemu)."""

import pytest

from runq.config import ConfigError, VMConfig
from runq.proxy.qemu import kernel_cmdline, qemu_argv


def vm(**kw):
    base = dict(name="abc", cpus=1, mem=256, accel="tcg", accel_reason="", cpuargs="host", machine="microvm",
                nestedvm=False, cache9p="mmap", tsc_khz=2600000, debug=False, boot_timeout=60)
    base.update(kw)
    return VMConfig(**base)


def arg_after(argv, flag):
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_tcg_microvm_boots_pvh_vmlinux_with_host_tsc():
    argv = qemu_argv(vm())
    assert arg_after(argv, "-M") == ["microvm,x-option-roms=off,isa-serial=on"]
    assert arg_after(argv, "-accel")[0].startswith("tcg")
    assert arg_after(argv, "-kernel") == ["/kernel/vmlinux"]
    assert "tsc_early_khz=2600000" in arg_after(argv, "-append")[0]
    assert "virtio-9p-device,fsdev=fs0,mount_tag=rootfs" in argv
    assert argv[0] == "/qemu/lib/ld-linux-x86-64.so.2"  # runs through its own loader


def test_kvm_uses_cpuargs_and_no_tsc_hint():
    argv = qemu_argv(vm(accel="kvm", cpuargs="host,rtm=off", tsc_khz=0))
    assert arg_after(argv, "-accel") == ["kvm"] and arg_after(argv, "-cpu") == ["host,rtm=off"]
    assert "tsc_early_khz" not in kernel_cmdline(vm(accel="kvm", tsc_khz=0))


def test_nestedvm_turns_pmu_off():
    assert arg_after(qemu_argv(vm(accel="kvm", nestedvm=True)), "-cpu") == ["host,pmu=off"]


def test_q35_fallback_uses_pci_devices():
    argv = qemu_argv(vm(machine="q35", nestedvm=True))
    assert arg_after(argv, "-M") == ["q35"]
    assert any(a.startswith("virtio-9p-pci,disable-modern=true") for a in argv)
    assert "runq.vbus=pci" in kernel_cmdline(vm(machine="q35"))


def test_size_and_readonly_root():
    argv = qemu_argv(vm(cpus=2, mem=512), readonly_root=True)
    assert arg_after(argv, "-m") == ["512"] and arg_after(argv, "-smp") == ["2"]
    assert any("path=/rootfs" in a and "readonly=on" in a for a in arg_after(argv, "-fsdev"))


def test_quiet_unless_debug():
    assert "quiet" in kernel_cmdline(vm())
    assert "quiet" not in kernel_cmdline(vm(debug=True))


@pytest.mark.parametrize("bad", [dict(accel="auto"), dict(mem=32), dict(cpus=0), dict(machine="virt"),
                                 dict(cache9p="x")])
def test_vmconfig_refuses_invalid_values(bad):
    with pytest.raises(ConfigError):
        vm(**bad)


def test_pci_nics_carry_no_option_rom_and_mmio_nics_need_none():
    q35 = qemu_argv(vm(machine="q35"), nics=[(7, "02:42:ac:11:00:02")])
    assert "virtio-net-pci,netdev=net0,mac=02:42:ac:11:00:02,romfile=" in q35
    mmio = qemu_argv(vm(), nics=[(7, "02:42:ac:11:00:02")])
    assert "virtio-net-device,netdev=net0,mac=02:42:ac:11:00:02" in mmio
    assert arg_after(mmio, "-netdev") == ["tap,id=net0,fd=7"]

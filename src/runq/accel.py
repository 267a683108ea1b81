"""Choosing the accelerator (KVM or TCG) and reading the host TSC frequency.

KVM counts as usable only on a real KVM host: the CPU advertises vmx/svm, the kvm_intel or kvm_amd module is
loaded, and /dev/kvm exists. /dev/kvm alone proves nothing (PVM hosts have it, and stock guests hang there).
"""

from __future__ import annotations

import os
import re

CACHE = "/run/runq/tsc_khz"


def _cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def kvm_status(cpuinfo: str | None = None, sys_module: str = "/sys/module",
               dev_kvm: str = "/dev/kvm") -> tuple[bool, str]:
    """(usable, reason) for KVM on this host."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    flags = _cpu_flags(cpuinfo)
    vendor = "kvm_intel" if "vmx" in flags else "kvm_amd" if "svm" in flags else ""
    if not vendor:
        return False, "the CPU does not advertise vmx/svm (no hardware virtualisation, or a PVM/nested host)"
    if not os.path.isdir(os.path.join(sys_module, vendor)):
        return False, f"CPU has {'vmx' if vendor == 'kvm_intel' else 'svm'} but kernel module {vendor} is not loaded"
    if not os.path.exists(dev_kvm):
        return False, f"{vendor} is loaded but {dev_kvm} is missing"
    return True, f"{vendor} loaded and {dev_kvm} present"


def resolve(requested: str) -> tuple[str, str]:
    """auto|kvm|tcg -> (kvm|tcg, reason)."""
    if requested == "tcg":
        return "tcg", "forced by --accel tcg"
    if requested == "kvm":
        return "kvm", "forced by --accel kvm"
    ok, why = kvm_status()
    return ("kvm", why) if ok else ("tcg", why)


def parse_tsc_khz(text: str) -> int:
    """Host TSC frequency in kHz from kernel log lines, 0 if absent. Prefers the refined calibration."""
    best = 0
    for pat in (r"tsc: Refined TSC clocksource calibration: ([0-9.]+) MHz", r"tsc: Detected ([0-9.]+) MHz"):
        m = re.search(pat, text)
        if m:
            best = int(float(m.group(1)) * 1000)
            break
    return best


def _cpuinfo_mhz() -> int:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.partition(":")[2]) * 1000)
    except (OSError, ValueError):
        pass
    return 0


def _kmsg_text() -> str:
    """Read what is in the kernel log ring buffer without blocking."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return ""
    out: list[str] = []
    try:
        while True:
            try:
                rec = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: record overwritten; keep reading
                continue
            if not rec:
                break
            out.append(rec.decode(errors="replace").partition(";")[2])
    finally:
        os.close(fd)
    return "".join(out)


def tsc_khz() -> int:
    """Host TSC kHz for the guest's tsc_early_khz=. Cached in /run/runq; 0 if unknown."""
    try:
        with open(CACHE) as f:
            return int(f.read())
    except (OSError, ValueError):
        pass
    khz = 0
    try:
        with open("/sys/devices/system/cpu/cpu0/tsc_freq_khz") as f:
            khz = int(f.read())
    except (OSError, ValueError):
        khz = parse_tsc_khz(_kmsg_text()) or _cpuinfo_mhz()
    if khz:
        try:
            os.makedirs(os.path.dirname(CACHE), exist_ok=True)
            tmp = f"{CACHE}.{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(str(khz))
            os.replace(tmp, CACHE)
        except OSError:
            pass
    return khz

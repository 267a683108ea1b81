"""Accelerator choice: KVM only on a real KVM host, never from /dev/kvm alone (runq.accel)."""

from runq import accel


def test_dev_kvm_without_vmx_or_svm_means_tcg(tmp_path):
    dev = tmp_path / "kvm"
    dev.write_text("")
    ok, why = accel.kvm_status("flags\t: fpu tsc hypervisor\n", str(tmp_path), str(dev))
    assert not ok and "vmx/svm" in why


def test_vmx_without_kvm_intel_module_means_tcg(tmp_path):
    dev = tmp_path / "kvm"
    dev.write_text("")
    ok, why = accel.kvm_status("flags\t: fpu vmx\n", str(tmp_path), str(dev))
    assert not ok and "kvm_intel" in why


def test_svm_with_kvm_amd_and_dev_kvm_means_kvm(tmp_path):
    (tmp_path / "kvm_amd").mkdir()
    dev = tmp_path / "kvm"
    dev.write_text("")
    assert accel.kvm_status("flags\t: fpu svm\n", str(tmp_path), str(dev))[0]


def test_tsc_khz_prefers_refined_calibration():
    log = "tsc: Detected 2445.402 MHz processor\ntsc: Refined TSC clocksource calibration: 2445.399 MHz\n"
    assert accel.parse_tsc_khz(log) == 2445399
    assert accel.parse_tsc_khz("tsc: Detected 2600.000 MHz processor") == 2600000
    assert accel.parse_tsc_khz("nothing") == 0

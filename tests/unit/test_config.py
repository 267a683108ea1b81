"""Configuration: runtime flags, RUNQ_* env and their validation (runq.config)."""

import pytest

from runq import accel
from runq.config import ConfigError, RuntimeOptions, container_config, parse_global_flags, to_bool


@pytest.fixture(autouse=True)
def no_host_probe(monkeypatch):
    monkeypatch.setattr(accel, "kvm_status", lambda *a, **k: (False, "test host"))
    monkeypatch.setattr(accel, "tsc_khz", lambda: 2600000)


def spec(*env):
    return {"ociVersion": "1.0.2-dev", "process": {"env": list(env), "args": ["true"]}}


def test_global_flags_accept_runq_and_runc_flags_in_all_spellings():
    opts, rest = parse_global_flags(["--cpu", "2", "--mem=512", "-debug", "--root", "/r", "--log", "/l",
                                     "--log-format", "json", "--systemd-cgroup", "--9pcache", "loose",
                                     "--nestedvm", "--noexec", "--runqenv", "--tmpfs", "/tmp,/var/tmp",
                                     "--dns", "8.8.8.8,dns.example", "--dns-opts", "timeout:2",
                                     "--dns-search", "example.com", "--cpuargs", " host, rtm=off ,",
                                     "create", "--bundle", "b", "id"])
    assert rest == ["create", "--bundle", "b", "id"]
    assert (opts.cpu, opts.mem, opts.debug, opts.root, opts.log, opts.log_format) == (2, 512, True, "/r", "/l", "json")
    assert opts.systemd_cgroup and opts.nestedvm and opts.noexec and opts.runqenv
    assert opts.tmpfs == ("/tmp", "/var/tmp")
    assert opts.dns == ("8.8.8.8", "dns.example")
    assert opts.cpuargs == "host,rtm=off"
    assert opts.cache9p == "loose"


@pytest.mark.parametrize("argv,field", [
    (["--mem", "63"], "--mem"), (["--mem", "lots"], "--mem"), (["--cpu", "0"], "--cpu"),
    (["--9pcache", "fast"], "--9pcache"), (["--accel", "hvf"], "--accel"), (["--dns", "not an ip!"], "--dns"),
    (["--tmpfs", "relative"], "--tmpfs"), (["--cpuargs", ""], "--cpuargs"), (["--bogus"], "flag"),
    (["--log-format", "xml"], "--log-format"),
])
def test_bad_runtime_flag_names_the_flag_and_value(argv, field):
    with pytest.raises(ConfigError) as e:
        parse_global_flags(argv + ["state", "x"])
    assert e.value.field == field
    assert str(e.value).startswith(f"{field}: invalid value")


def test_defaults_are_one_cpu_and_256_mib():
    cfg = container_config(RuntimeOptions(), spec(), "c" * 64)
    assert (cfg.vm.cpus, cfg.vm.mem, cfg.vm.cache9p, cfg.vm.cpuargs) == (1, 256, "mmap", "host")
    assert cfg.vm.name == "c" * 12


def test_container_env_overrides_runtime_flags():
    cfg = container_config(RuntimeOptions(cpu=1, mem=256), spec("RUNQ_CPU=2", "RUNQ_MEM=512", "RUNQ_9PCACHE=loose",
                                                                 "RUNQ_CPUARGS=host,rtm=off"), "x" * 64)
    assert (cfg.vm.cpus, cfg.vm.mem, cfg.vm.cache9p, cfg.vm.cpuargs) == (2, 512, "loose", "host,rtm=off")


@pytest.mark.parametrize("var,value", [("RUNQ_MEM", "abc"), ("RUNQ_MEM", "63"), ("RUNQ_MEM", ""),
                                       ("RUNQ_CPU", "0"), ("RUNQ_CPU", "two"), ("RUNQ_9PCACHE", "weird"),
                                       ("RUNQ_CPUARGS", ""), ("RUNQ_DNS", "1.2.3.4,bad host"), ("RUNQ_ACCEL", "x"),
                                       ("RUNQ_NET_MODE", "bridge")])
def test_bad_container_variable_is_named_in_the_error(var, value):
    with pytest.raises(ConfigError) as e:
        container_config(RuntimeOptions(), spec(f"{var}={value}"), "x" * 64)
    assert str(e.value).startswith(f"{var}: invalid value {value!r}")


def test_accel_auto_picks_tcg_without_real_kvm_and_can_be_forced():
    assert container_config(RuntimeOptions(), spec(), "x" * 64).vm.accel == "tcg"
    assert container_config(RuntimeOptions(accel="kvm"), spec(), "x" * 64).vm.accel == "kvm"
    assert container_config(RuntimeOptions(accel="kvm"), spec("RUNQ_ACCEL=tcg"), "x" * 64).vm.accel == "tcg"


def test_tsc_khz_only_travels_with_tcg():
    assert container_config(RuntimeOptions(), spec(), "x" * 64).vm.tsc_khz == 2600000
    assert container_config(RuntimeOptions(accel="kvm"), spec(), "x" * 64).vm.tsc_khz == 0


def test_dns_settings_from_env_replace_flags_and_empty_means_none():
    cfg = container_config(RuntimeOptions(dns=("8.8.8.8",)), spec("RUNQ_DNS="), "x" * 64)
    assert cfg.dns.servers == () and not cfg.dns.preserve
    cfg = container_config(RuntimeOptions(), spec(), "x" * 64)
    assert cfg.dns.preserve  # no runq DNS settings: Docker's resolv.conf stays
    cfg = container_config(RuntimeOptions(dns=("8.8.8.8",)), spec("RUNQ_DNS_PRESERVE=yes"), "x" * 64)
    assert cfg.dns.preserve


@pytest.mark.parametrize("word,expected", [("1", True), (" TRUE ", True), ("on", True), ("yes", True),
                                           ("0", False), ("", False), ("nope", False)])
def test_to_bool_accepts_runq_words(word, expected):
    assert to_bool(word) is expected


def test_microvm_falls_back_to_q35_then_pc_when_qemu_lacks_it():
    from runq.config import resolve_machine

    assert resolve_machine("microvm", ["microvm", "pc", "q35"]) == "microvm"
    assert resolve_machine("microvm", ["pc", "q35"]) == "q35"
    assert resolve_machine("microvm", ["pc"]) == "pc"
    assert resolve_machine("microvm", None) == "microvm"
    with pytest.raises(ConfigError):
        resolve_machine("microvm", ["isapc"])
    cfg = container_config(RuntimeOptions(), spec(), "x" * 64, machines=["pc", "q35"])
    assert cfg.vm.machine == "q35"

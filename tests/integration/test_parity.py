"""Security and filesystem options behave as with runc: the same command under runc and runq agrees."""

from __future__ import annotations



def both(docker, opts: list[str], script: str) -> tuple[str, str]:
    runq = docker.run_opts(opts, "sh", "-c", script)
    runc = docker.run_opts(opts, "sh", "-c", script, runtime="runc")
    assert runq.returncode == runc.returncode, (runq.stderr, runc.stderr)
    return runq.stdout.decode(), runc.stdout.decode()


def test_capability_sets_match_runc(docker):
    runq, runc = both(docker, [], "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status")
    assert runq == runc


def test_cap_add_and_drop_match_runc(docker):
    runq, runc = both(docker, ["--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"],
                      "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status")
    assert runq == runc


def test_non_root_user_gets_no_effective_capabilities(docker):
    runq, runc = both(docker, ["--user", "1000"], "grep -E '^Cap(Prm|Eff)' /proc/self/status")
    assert runq == runc


def test_no_new_privileges(docker):
    runq, runc = both(docker, ["--security-opt", "no-new-privileges"], "grep NoNewPrivs /proc/self/status")
    assert runq == runc == "NoNewPrivs:\t1\n"


def test_read_only_rootfs(docker):
    p = docker.run_opts(["--read-only"], "sh", "-c", "touch /x 2>&1; echo rc=$?")
    assert "Read-only file system" in p.stdout.decode() and "rc=1" in p.stdout.decode()


def test_sysctl_applies_to_the_guest_kernel_in_the_workloads_namespaces(docker):
    p = docker.run_opts(["--sysctl", "kernel.shm_rmid_forced=1", "--sysctl", "net.ipv4.ip_forward=1"], "cat",
                        "/proc/sys/kernel/shm_rmid_forced", "/proc/sys/net/ipv4/ip_forward")
    assert p.stdout.decode().split() == ["1", "1"]


def test_bad_sysctl_fails_the_container(docker):
    p = docker.run_opts(["--sysctl", "net.ipv4.no_such_knob=1"], "true")
    assert p.returncode != 0


def test_masked_proc_paths(docker):
    script = ('for p in /proc/timer_list /proc/sched_debug /proc/keys /proc/latency_stats /proc/scsi /sys/firmware '
              '/proc/acpi; do echo "$p $(cat $p 2>&1 | wc -c) $(ls $p 2>/dev/null | wc -l)"; done')
    runq, runc = both(docker, [], script)
    assert runq == runc


def test_default_open_files_limit_is_inherited_as_with_runc(docker):
    runq, runc = both(docker, [], "ulimit -n; ulimit -Hn")
    assert runq == runc


def test_shm_size(docker):
    p = docker.run_opts(["--shm-size", "32m"], "sh", "-c", "df -k /dev/shm | tail -1")
    assert p.stdout.decode().split()[1] == "32768"


def test_dockers_default_seccomp_profile_applies_in_the_guest(docker):
    # Seccomp mode 2 (filter) as with runc; unshare of a mount namespace is refused by Docker's default profile.
    runq, runc = both(docker, [], "grep ^Seccomp: /proc/self/status; unshare -m true 2>/dev/null; echo rc=$?")
    assert runq == runc
    assert "Seccomp:\t2" in runq and "rc=1" in runq


def test_seccomp_unconfined(docker):
    runq, runc = both(docker, ["--security-opt", "seccomp=unconfined"], "grep ^Seccomp: /proc/self/status")
    assert runq == runc == "Seccomp:\t0\n"


def test_custom_seccomp_profile_file(docker, tmp_path):
    import json

    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    runq, runc = both(docker, ["--security-opt", f"seccomp={path}"], "mkdir /x 2>&1; echo rc=$?")
    assert runq == runc
    assert "Operation not permitted" in runq

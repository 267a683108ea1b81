"""Guest seccomp: OCI profile terms -> libseccomp values, as runc translates them (runq.guest.seccomp)."""

import pytest

from runq.guest import seccomp


def test_errno_action_carries_errno_ret_and_defaults_to_eperm():
    assert seccomp.action("SCMP_ACT_ERRNO", None) == 0x00050001
    assert seccomp.action("SCMP_ACT_ERRNO", 38) == 0x00050026  # ENOSYS, as Docker's profile uses for clone3
    assert seccomp.action("SCMP_ACT_ALLOW", None) == 0x7FFF0000
    assert seccomp.action("SCMP_ACT_KILL_PROCESS", None) == 0x80000000


def test_unknown_action_or_operator_is_refused():
    with pytest.raises(seccomp.SeccompError):
        seccomp.action("SCMP_ACT_DANCE", None)
    with pytest.raises(seccomp.SeccompError):
        seccomp.rule_conditions([{"index": 0, "op": "SCMP_CMP_ALMOST", "value": 1}])


def test_conditions_on_distinct_arguments_stay_one_rule():
    conds = seccomp.rule_conditions([{"index": 0, "op": "SCMP_CMP_EQ", "value": 1},
                                     {"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 8, "valueTwo": 8}])
    assert conds == [[(0, 4, 1, 0), (1, 7, 8, 8)]]


def test_conditions_on_the_same_argument_become_separate_rules():
    conds = seccomp.rule_conditions([{"index": 0, "op": "SCMP_CMP_EQ", "value": 0},
                                     {"index": 0, "op": "SCMP_CMP_EQ", "value": 8}])
    assert conds == [[(0, 4, 0, 0)], [(0, 4, 8, 0)]]


def _in_child(fn) -> int:
    import os

    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn())
        except BaseException:
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_loaded_profile_denies_with_its_errno_and_allows_the_rest(tmp_path):
    import errno
    import os

    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
               "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EROFS}]}

    program = seccomp.compile_bpf(profile, seccomp.library())
    assert len(program) % 8 == 0 and len(program) > 8

    def child() -> int:
        import ctypes

        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as the guest has when not root
        seccomp.install_bpf(program)
        os.listdir(tmp_path)  # allowed
        try:
            os.mkdir(tmp_path / "x")
        except OSError as e:
            return 0 if e.errno == errno.EROFS else 2
        return 1

    assert _in_child(child) == 0
    assert not (tmp_path / "x").exists()


def test_a_rule_the_profile_repeats_is_accepted():
    rule = {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 16}]}
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [rule, rule]}
    assert seccomp.compile_bpf(profile, seccomp.library())

"""The OCI seccomp profile for the workload in the guest.

`runq create` compiles the profile (Docker's default, `--security-opt seccomp=FILE`) to a BPF program with libseccomp
on the host (:func:`compile_bpf`, ~ms), following runc's rules: unknown syscall names are skipped, conditions on the
same argument become separate rules, the default errno is EPERM. The guest only installs the ready program
(:func:`install_bpf`, one prctl): building it there with libseccomp costs ~0.3 s under TCG.
Standard library only; libseccomp.so.2 comes from the runtime root's Python bundle.
"""

from __future__ import annotations

import ctypes
import errno
import os

EPERM = 1
ACT_KILL_THREAD = 0x00000000
ACT_KILL_PROCESS = 0x80000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
ACT_NOTIFY = 0x7FC00000
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6,
       "SCMP_CMP_MASKED_EQ": 7}
ARCHES = {"SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32"}
FLTATR_CTL_NNP = 3  # SCMP_FLTATR_CTL_NNP: whether seccomp_load sets no_new_privs itself


class SeccompError(Exception):
    """The profile cannot be applied (one line naming the bad part)."""


def action(name: str, errno_ret: int | None) -> int:
    """OCI action name -> libseccomp action value."""
    if name == "SCMP_ACT_ERRNO":
        return ACT_ERRNO | ((EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return ACT_TRACE | ((EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    fixed = {"SCMP_ACT_KILL": ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
             "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS, "SCMP_ACT_TRAP": ACT_TRAP, "SCMP_ACT_ALLOW": ACT_ALLOW,
             "SCMP_ACT_LOG": ACT_LOG, "SCMP_ACT_NOTIFY": ACT_NOTIFY}
    if name not in fixed:
        raise SeccompError(f"seccomp: unknown action {name!r}")
    return fixed[name]


def rule_conditions(args: list[dict]) -> list[list[tuple[int, int, int, int]]]:
    """OCI args -> one or more condition lists (arg, op, a, b). As runc: when two conditions name the same
    argument, each condition becomes a rule of its own (libseccomp refuses repeated arguments in one rule)."""
    conds = []
    for a in args:
        op = a.get("op", "")
        if op not in OPS:
            raise SeccompError(f"seccomp: unknown operator {op!r}")
        conds.append((int(a.get("index", 0)), OPS[op], int(a.get("value", 0)), int(a.get("valueTwo", 0))))
    indices = [c[0] for c in conds]
    if len(set(indices)) != len(indices):
        return [[c] for c in conds]
    return [conds]


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def library(path: str = "libseccomp.so.2") -> ctypes.CDLL:
    """libseccomp with the prototypes runq uses."""
    return _declare(ctypes.CDLL(path, use_errno=True))


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def compile_bpf(profile: dict, lib: ctypes.CDLL) -> bytes:
    """The OCI profile as a classic BPF program (struct sock_filter array) for x86_64."""
    default = action(profile.get("defaultAction", "SCMP_ACT_ALLOW"), profile.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SeccompError("seccomp: seccomp_init failed")
    try:
        for arch in profile.get("architectures") or []:
            name = ARCHES.get(arch)
            if name is None:
                continue  # not an architecture this x86_64 guest can run
            token = lib.seccomp_arch_resolve_name(name.encode())
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and -rc != errno.EEXIST:
                raise SeccompError(f"seccomp: adding architecture {arch}: {errno.errorcode.get(-rc, rc)}")
        for rule in profile.get("syscalls") or []:
            act = action(rule.get("action", ""), rule.get("errnoRet"))
            if act == default:
                continue  # libseccomp refuses rules that repeat the default action
            for cond_list in rule_conditions(rule.get("args") or []):
                arr = (_ArgCmp * max(1, len(cond_list)))(*[_ArgCmp(*c) for c in cond_list])
                for sysname in rule.get("names") or []:
                    nr = lib.seccomp_syscall_resolve_name(sysname.encode())
                    if nr < 0:
                        continue  # unknown to this libseccomp/kernel: skipped, as runc does
                    rc = lib.seccomp_rule_add_array(ctx, act, nr, len(cond_list), arr)
                    if rc < 0 and -rc != errno.EEXIST:  # EEXIST: a rule the profile already gave (podman's has some)
                        raise SeccompError(f"seccomp: rule for {sysname}: {errno.errorcode.get(-rc, rc)}")
        fd = os.memfd_create("runq-seccomp")
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise SeccompError(f"seccomp: exporting the filter: {errno.errorcode.get(-rc, rc)}")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_bpf(program: bytes) -> None:
    """Install a compiled filter on the calling thread (needs no_new_privs or CAP_SYS_ADMIN); kept across exec."""
    if not program or len(program) % 8:
        raise SeccompError(f"seccomp: a BPF program of {len(program)} bytes is not a filter")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise SeccompError(f"seccomp: installing the filter: {os.strerror(err)}")

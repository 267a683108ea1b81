"""`docker run --runtime runq`: the command runs in a VM, with runc's exit codes, stdio, env, user and workdir."""

from __future__ import annotations

import os
import platform
import subprocess

import pytest

from .conftest import ROOT


def out(p: subprocess.CompletedProcess) -> str:
    return p.stdout.decode().strip()


def test_uname_reports_the_guest_kernel_not_the_host(docker):
    with open(os.path.join(ROOT, "kernel/version")) as f:
        guest = f.read().strip()
    p = docker.run("uname", "-r")
    assert p.returncode == 0, p.stderr
    assert out(p) == guest and guest != platform.release()


@pytest.mark.parametrize("cmd,code", [
    (["true"], 0), (["false"], 1), (["sh", "-c", "exit 42"], 42), (["/etc/hosts"], 126), (["/etc"], 126),
    (["no-such-command"], 127), (["sh", "-c", "exit -1"], 2),
])
def test_exit_codes_match_runc(docker, cmd, code):
    assert docker.run(*cmd).returncode == code


def test_missing_command_says_why_on_stderr(docker):
    p = docker.run("no-such-command")
    assert b"no-such-command" in p.stderr and b"not found" in p.stderr


def test_stdout_and_stderr_stay_separate(docker):
    p = docker.run("sh", "-c", "echo to-out; echo to-err >&2; echo out2")
    assert out(p).splitlines() == ["to-out", "out2"]
    assert p.stderr.decode().strip() == "to-err"


def test_docker_logs_keeps_streams_separate(docker):
    name = docker.start_detached("sh", "-c", "echo L-out; echo L-err >&2")
    subprocess.run(["docker", "wait", name], capture_output=True, timeout=120)
    logs = subprocess.run(["docker", "logs", name], capture_output=True, timeout=30)
    assert logs.stdout.decode().split() == ["L-out"]
    assert logs.stderr.decode().split() == ["L-err"]


def test_no_guest_chatter_on_workload_output(docker):
    p = docker.run("echo", "exactly-this")
    assert p.stdout == b"exactly-this\n" and p.stderr == b""


def test_stdin_is_forwarded_with_eof(docker):
    data = b"".join(b"line %d\n" % i for i in range(2000))
    p = docker.run_opts(["-i"], "sh", "-c", "wc -l; echo done", input=data)
    assert out(p).split() == ["2000", "done"]
    p = docker.run_opts(["-i"], "cat", input=b"hello\x00binary\xff")
    assert p.stdout == b"hello\x00binary\xff"


def test_stdin_without_i_is_empty(docker):
    assert out(docker.run("sh", "-c", "cat; echo end")) == "end"


def test_env_with_1000_variables_of_1kib_each(docker, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("".join(f"V{i:04d}={'x' * 1018}{i:04d}\n" for i in range(1000)))
    p = docker.run_opts(["--env-file", str(envfile)], "sh", "-c",
                        'env | grep -c "^V"; echo ${#V0999}; echo $V0500 | tail -c 5')
    assert p.returncode == 0, p.stderr
    assert out(p).split() == ["1000", "1022", "0500"]


def test_user_group_add_and_home(docker):
    assert out(docker.run_opts(["--user", "1000:1000"], "id")) == "uid=1000(alice) gid=1000(alice) groups=1000(alice)"
    assert out(docker.run_opts(["--user", "alice"], "sh", "-c", "echo $HOME")) == "/home/alice"
    assert out(docker.run("sh", "-c", "echo $HOME")) == "/root"
    groups = out(docker.run_opts(["--user", "1000", "--group-add", "100"], "id", "-G")).split()
    assert "100" in groups


def test_workdir_hostname_entrypoint(docker):
    assert out(docker.run_opts(["--workdir", "/tmp"], "pwd")) == "/tmp"
    assert out(docker.run_opts(["--hostname", "vmhost"], "hostname")) == "vmhost"
    assert out(docker.run_opts(["--entrypoint", "echo"], "via", "entrypoint")) == "via entrypoint"


def test_ulimit_reaches_the_workload(docker):
    p = docker.run_opts(["--ulimit", "nofile=1234:2345"], "sh", "-c", "ulimit -n; ulimit -Hn")
    assert out(p).split() == ["1234", "2345"]


def test_tmpfs_is_a_guest_tmpfs(docker):
    p = docker.run_opts(["--tmpfs", "/scratch:size=2m"], "sh", "-c", "grep ' /scratch ' /proc/mounts")
    assert out(p).startswith("tmpfs /scratch tmpfs") and "size=2048k" in out(p)


def test_workload_runs_as_pid_1_of_its_own_namespace(docker):
    assert out(docker.run("sh", "-c", "echo $$")) == "1"


def test_volume_is_shared_through_9p(docker, tmp_path):
    (tmp_path / "in.txt").write_text("from-host")
    p = docker.run_opts(["-v", f"{tmp_path}:/data"], "sh", "-c", "cat /data/in.txt; echo from-guest > /data/out.txt")
    assert out(p) == "from-host"
    assert (tmp_path / "out.txt").read_text() == "from-guest\n"


def test_guest_kernel_modules_are_at_lib_modules(docker):
    with open(os.path.join(ROOT, "kernel/version")) as f:
        guest = f.read().strip()
    p = docker.run("sh", "-c", "ls /lib/modules; grep -c ' /lib/modules 9p ' /proc/mounts")
    assert out(p).split() == [guest, "1"]


def test_runq_cpu_and_mem_size_the_vm(docker):
    p = docker.run_opts(["-e", "RUNQ_CPU=2", "-e", "RUNQ_MEM=512"], "sh", "-c",
                        "nproc; grep MemTotal /proc/meminfo")
    lines = out(p).splitlines()
    assert lines[0] == "2"
    mem_kib = int(lines[1].split()[1])
    assert 400 * 1024 < mem_kib <= 512 * 1024


def test_default_vm_is_one_cpu_256_mib(docker):
    p = docker.run("sh", "-c", "nproc; grep MemTotal /proc/meminfo")
    lines = out(p).splitlines()
    assert lines[0] == "1" and 180 * 1024 < int(lines[1].split()[1]) <= 256 * 1024


@pytest.mark.parametrize("env,shown", [((), "mmap"), (("-e", "RUNQ_9PCACHE=loose"), "loose")])
def test_9p_cache_mode_default_and_from_env(docker, env, shown):
    p = docker.run_opts(list(env), "grep", "^rootfs / 9p", "/proc/mounts")
    assert shown in out(p).split()[3].split(",")


def test_runq_variables_stay_visible_to_the_workload(docker):
    assert out(docker.run_opts(["-e", "RUNQ_MEM=300"], "sh", "-c", "echo $RUNQ_MEM")) == "300"


def test_runqenv_writes_the_environment_file(docker):
    p = docker.run_opts(["-e", "RUNQ_RUNQENV=1", "-e", "GREETING=hello world"], "sh", "-c",
                        "grep -E '^(GREETING|RUNQ_RUNQENV)=' /.runqenv; stat -c %a /.runqenv")
    lines = out(p).splitlines()
    assert sorted(lines[:2]) == ['GREETING="hello world"', 'RUNQ_RUNQENV="1"'] and lines[2] == "400"
    assert docker.run("sh", "-c", "test -e /.runqenv || echo absent").stdout == b"absent\n"


def test_megabytes_of_binary_stdio_arrive_intact(docker):
    data = os.urandom(3 * 1024 * 1024)
    p = docker.run_opts(["-i"], "sh", "-c", "cat; head -c 1000000 /dev/zero >&2", input=data)
    assert p.returncode == 0
    assert p.stdout == data
    assert p.stderr == b"\0" * 1000000

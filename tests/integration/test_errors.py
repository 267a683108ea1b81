"""Bad input fails `docker run` with one line naming the field, and leaves nothing behind."""

from __future__ import annotations

import glob
import subprocess

import pytest


@pytest.mark.parametrize("env,word", [("RUNQ_MEM=abc", "RUNQ_MEM"), ("RUNQ_MEM=32", "RUNQ_MEM"),
                                      ("RUNQ_CPU=0", "RUNQ_CPU"), ("RUNQ_9PCACHE=bogus", "RUNQ_9PCACHE")])
def test_bad_runq_variable_fails_docker_run_naming_it(docker, env, word):
    p = docker.run_opts(["-e", env], "true")
    assert p.returncode != 0
    assert word in p.stderr.decode()
    assert not glob.glob(f"/run/runq/*/*{docker.names[-1]}*")


def test_privileged_is_refused(docker):
    p = docker.run_opts(["--privileged"], "true")
    assert p.returncode != 0 and b"privileged mode is not supported" in p.stderr


def test_exec_says_not_supported_yet(docker):
    name = docker.start_detached("sleep", "1000")
    p = subprocess.run(["docker", "exec", name, "true"], capture_output=True, timeout=120)
    assert p.returncode != 0 and b"not supported yet" in p.stdout + p.stderr

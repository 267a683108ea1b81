"""Integration fixtures: a real dockerd with runq registered, the locally built busybox image."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

RUNTIME = os.environ.get("RUNQ_TEST_RUNTIME", "runq")
IMAGE = os.environ.get("RUNQ_TEST_IMAGE", "busybox:latest")
ROOT = os.environ.get("RUNQ_ROOT", "/var/lib/runq")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def docker_with_runq():
    """Fail (in CI) or skip (elsewhere) when the runtime is not installed and registered."""
    problem = None
    info = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True)
    if info.returncode != 0:
        problem = "dockerd is not reachable: " + info.stderr.strip()
    elif f'"{RUNTIME}"' not in info.stdout:
        problem = f"runtime {RUNTIME!r} is not registered in dockerd (run ./install.sh)"
    elif subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        problem = f"image {IMAGE} missing (python3 -m runq.build busybox-image)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


class Docker:
    """`docker` CLI helpers; every container gets a unique name and is removed afterwards."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def name(self) -> str:
        n = "runq-test-" + uuid.uuid4().hex[:10]
        self.names.append(n)
        return n

    def run(self, *args: str, input: bytes | None = None, timeout: int = 180, runtime: str = RUNTIME,
            docker_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        argv = ["docker", "run", "--runtime", runtime, "--name", self.name(), "--rm", *docker_args, IMAGE, *args]
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def run_opts(self, opts: list[str], *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(*args, docker_args=tuple(opts), **kw)

    def start_detached(self, *args: str, opts: tuple[str, ...] = ()) -> str:
        n = self.name()
        subprocess.run(["docker", "run", "-d", "--runtime", RUNTIME, "--name", n, *opts, IMAGE, *args],
                       check=True, capture_output=True, timeout=120)
        return n

    def cleanup(self) -> None:
        if self.names:
            subprocess.run(["docker", "rm", "-f", *self.names], capture_output=True, timeout=120)


@pytest.fixture
def docker():
    d = Docker()
    yield d
    d.cleanup()

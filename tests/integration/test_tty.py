"""`docker run -t`: a real terminal in the guest, window size and its changes included."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

from .conftest import IMAGE, RUNTIME


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_until(fd: int, text: bytes, timeout: float = 120) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end and text not in buf:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


@contextlib.contextmanager
def docker_in_terminal(docker, script: str, rows: int = 24, cols: int = 80):
    """`docker run -it ... sh -c script` with a pseudo terminal as its controlling tty; yields (master fd, process)."""
    master, slave = pty.openpty()
    set_size(slave, rows, cols)
    proc = subprocess.Popen(["docker", "run", "-it", "--rm", "--runtime", RUNTIME, "--name", docker.name(), IMAGE,
                             "sh", "-c", script], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        yield master, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_tty_in_guest_follows_window_size_changes(docker):
    script = ('tty; [ -t 0 ] && [ -t 1 ] && echo IS-A-TTY; '
              'for i in $(seq 100); do [ "$(stty size)" = "33 111" ] && break; sleep 0.1; done; '
              'echo SIZE1 $(stty size); '
              'read x; for i in $(seq 100); do [ "$(stty size)" = "40 120" ] && break; sleep 0.1; done; '
              'echo SIZE2 $(stty size)')
    with docker_in_terminal(docker, script, 33, 111) as (master, proc):
        got = read_until(master, b"SIZE1")
        got += read_until(master, b"\n", timeout=10)
        assert b"/dev/pts/" in got and b"IS-A-TTY" in got, got
        assert b"SIZE1 33 111" in got, got
        set_size(master, 40, 120)
        os.killpg(os.getpgid(proc.pid), 28)  # SIGWINCH to the docker client, as a terminal would
        os.write(master, b"go\r")
        got = read_until(master, b"SIZE2")
        got += read_until(master, b"\n", timeout=10)
        assert b"SIZE2 40 120" in got, got
        assert proc.wait(timeout=60) == 0


def test_tty_echo_and_line_discipline_are_the_guests(docker):
    with docker_in_terminal(docker, 'echo READY; read line; echo "got:$line"') as (master, proc):
        read_until(master, b"READY")
        os.write(master, b"hello\r")
        got = read_until(master, b"got:hello")
        assert b"got:hello" in got, got
        assert proc.wait(timeout=60) == 0

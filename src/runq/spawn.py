"""Running runc without the subprocess module (whose import costs more than runc itself on the hot path)."""

from __future__ import annotations

import os


def run(argv: list[str], capture: bool = False, quiet: bool = False,
        pass_fds: tuple[int, ...] = ()) -> tuple[int, bytes]:
    """Run argv to completion; return (exit status as the shell reports it, captured stdout)."""
    actions = []
    r = w = -1
    if capture:
        r, w = os.pipe()
        actions.append((os.POSIX_SPAWN_DUP2, w, 1))
    if quiet:
        actions.append((os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0))
        if not capture:
            actions.append((os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
    for fd in pass_fds:
        os.set_inheritable(fd, True)
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    out = b""
    if capture:
        os.close(w)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        out = b"".join(chunks)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status), out

"""Register runq with Docker (daemon.json) and make sure dockerd runs with that configuration.

    python3 -m runq.register [--root /var/lib/runq] [--name runq] [--daemon-json /etc/docker/daemon.json]
                             [-- RUNTIME ARGS...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from . import layout

DEFAULT_ARGS = ["--cpu", "1", "--mem", "256"]


def update_daemon_json(path: str, name: str, runtime_path: str, runtime_args: list[str]) -> bool:
    """Add or replace the runtime entry; keep everything else. Returns True if the file changed."""
    config: dict = {}
    if os.path.exists(path):
        with open(path) as f:
            text = f.read().strip()
        if text:
            config = json.loads(text)
    before = json.dumps(config, sort_keys=True)
    config.setdefault("runtimes", {})[name] = {"path": runtime_path, "runtimeArgs": runtime_args}
    if json.dumps(config, sort_keys=True) == before:
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".runq-tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return True


def docker_ready() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def dockerd_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def ensure_dockerd(changed: bool, log: str = "/var/log/runq-dockerd.log") -> None:
    """Start dockerd, or make a running one re-read daemon.json."""
    systemd = os.path.isdir("/run/systemd/system") and shutil.which("systemctl")
    pid = dockerd_pid()
    if systemd:
        subprocess.run(["systemctl", "enable", "--now", "docker"], check=False)
        if changed and pid:
            subprocess.run(["systemctl", "reload-or-restart", "docker"], check=True)
    elif pid is None:
        with open(log, "ab") as out:
            subprocess.Popen(["dockerd"], stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    elif changed:
        os.kill(pid, signal.SIGHUP)  # dockerd reloads "runtimes" on SIGHUP
        time.sleep(1)
    for _ in range(120):
        if docker_ready():
            return
        time.sleep(0.5)
    raise SystemExit(f"dockerd did not come up (see {log})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m runq.register", description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=layout.runtime_root(), help="runtime root (default %(default)s)")
    ap.add_argument("--name", default="runq", help="runtime name in Docker (default %(default)s)")
    ap.add_argument("--daemon-json", default="/etc/docker/daemon.json")
    ap.add_argument("runtime_args", nargs="*", help=f"runtimeArgs (default: {' '.join(DEFAULT_ARGS)})")
    a = ap.parse_args(argv)
    changed = update_daemon_json(a.daemon_json, a.name, os.path.join(a.root, "runq"),
                                 a.runtime_args or DEFAULT_ARGS)
    ensure_dockerd(changed)
    print(f"runtime {a.name!r} registered in {a.daemon_json} ({'changed' if changed else 'unchanged'}); dockerd ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`runq create` (and `runq run`): validate, rewrite the bundle into runq's state dir, hand it to runc."""

from __future__ import annotations

import json
import os
import shutil

from .. import bundle as bundle_mod
from .. import layout
from ..config import RuntimeOptions, container_config
from ..errors import RunqError
from ..runtime import Runtime
from . import cmdflags

VALUE = {"bundle", "pid-file", "console-socket", "pidfd-socket", "preserve-fds"}
BOOL = {"no-pivot", "no-new-keyring", "detach", "keep", "no-subreaper"}
ALIASES = {"b": "bundle", "d": "detach"}


def _load_spec(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunqError(f"bundle: {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise RunqError(f"bundle: cannot read {path}: {e}") from None


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def prepare(rt: Runtime, opts: RuntimeOptions, cid: str, bundle: str, preserve: int) -> tuple[str, int]:
    """Validate and rewrite; return (state dir, preserve-fds count for runc). Leaves nothing behind on error."""
    spec = _load_spec(bundle)
    cfg = container_config(opts, spec, cid, layout.qemu_machines(rt.runtime_root))
    sdir = bundle_mod.state_dir(opts.root, cid)
    if os.path.exists(sdir):
        if rt.runc("state", cid, capture=True, quiet=True)[0] == 0:
            raise RunqError(f"container with id exists: {cid}")
        shutil.rmtree(sdir, ignore_errors=True)  # leftover of a crashed create
    os.makedirs(os.path.join(sdir, "run"), mode=0o700)
    try:
        log_fd = -1
        if opts.debug and opts.log:
            fd = os.open(opts.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            log_fd = 3 + preserve
            if fd != log_fd:
                os.dup2(fd, log_fd, inheritable=True)
                os.close(fd)
            else:
                os.set_inheritable(fd, True)
            preserve += 1
        new_spec, payload = bundle_mod.rewrite(spec, cfg, bundle, rt.runtime_root, sdir, log_fd)
        _write(os.path.join(sdir, "config.json"), json.dumps(new_spec))
        _write(os.path.join(sdir, "run", "proxy.json"), payload.to_json())
        _write(os.path.join(sdir, "meta.json"), json.dumps({"bundle": bundle, "id": cid}))
        rt.debug(f"create {cid}: accel={cfg.vm.accel} ({cfg.vm.accel_reason}), cpus={cfg.vm.cpus}, mem={cfg.vm.mem}")
    except BaseException:
        shutil.rmtree(sdir, ignore_errors=True)
        raise
    return sdir, preserve


def run(rt: Runtime, opts: RuntimeOptions, args: list[str], verb: str = "create") -> int:
    flags, pos = cmdflags.parse(args, VALUE, BOOL, ALIASES)
    if len(pos) != 1:
        raise RunqError(f'"{verb}" requires exactly 1 argument(s)')
    cid = pos[0]
    bundle = os.path.abspath(str(flags.get("bundle") or os.getcwd()))
    preserve = int(str(flags.get("preserve-fds", "0")) or 0)
    sdir, preserve = prepare(rt, opts, cid, bundle, preserve)

    argv = [verb, "--bundle", sdir]
    for name in ("pid-file", "console-socket", "pidfd-socket"):
        if name in flags:
            value = str(flags[name])
            argv += [f"--{name}", os.path.abspath(value) if name == "pid-file" else value]
    for name in sorted(BOOL & flags.keys()):
        if flags[name]:
            argv.append(f"--{name}")
    if preserve:
        argv += ["--preserve-fds", str(preserve)]
    argv.append(cid)
    rc, _ = rt.runc(*argv, pass_fds=tuple(range(3, 3 + preserve)))
    if rc != 0 or (verb == "run" and not flags.get("detach")):
        if rc != 0 and verb == "create":
            rt.runc("delete", "--force", cid, capture=True, quiet=True)
        shutil.rmtree(sdir, ignore_errors=True)
    return rc

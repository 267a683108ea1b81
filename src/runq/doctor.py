"""`runq doctor`: which accelerator runq will use and why, and what is missing on this host."""

from __future__ import annotations

import os
import shutil

from . import accel, layout
from .config import RuntimeOptions
from .runtime import Runtime


def run(rt: Runtime, opts: RuntimeOptions) -> int:
    root = rt.runtime_root
    problems = 0
    chosen, why = accel.resolve(opts.accel)
    print(f"accelerator: {chosen} ({why})")
    if chosen == "tcg":
        khz = accel.tsc_khz()
        print(f"host TSC: {khz} kHz" if khz else "host TSC: unknown (microvm guests may hang; use --machine q35)")
    print(f"runtime root: {root}")
    for rel in (layout.PY_BIN, layout.QEMU_BIN, layout.KERNEL, layout.INITRD, layout.PROXY_LAUNCHER,
                layout.MODULES):
        path = os.path.join(root, rel)
        ok = os.path.exists(path)
        problems += not ok
        print(f"  {'ok     ' if ok else 'MISSING'} {path}")
    try:
        print(f"runc: {rt.runc_path()}")
    except Exception as e:  # noqa: BLE001 - report, do not crash
        problems += 1
        print(f"runc: MISSING ({e})")
    docker = shutil.which("docker")
    print(f"docker client: {docker or 'not found'}")
    if problems:
        print(f"{problems} problem(s): run `python3 -m runq.build --root {root} all` or ./install.sh")
    return 1 if problems else 0

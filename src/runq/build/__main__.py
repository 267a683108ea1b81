"""python3 -m runq.build [--root DIR] STEP...: assemble the runq runtime root from Debian packages.

Steps: python, qemu, kernel, lib, initrd (= `all`, in that order), and busybox-image (a local test image).
Every step writes next to its target and renames into place, and skips work whose inputs did not change.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from runq import layout
from runq.build import images, initrd, kernel, lib, pybundle, qemu
from runq.build.common import BuildError, Context

STEPS: dict[str, Callable[[Context], str]] = {
    "python": pybundle.build,
    "qemu": qemu.build,
    "kernel": kernel.build,
    "lib": lib.build,
    "initrd": initrd.build,
    "busybox-image": images.build,
}
ALL = ["python", "qemu", "kernel", "lib", "initrd"]
DEFAULT_CACHE = "/var/cache/runq-build"


def default_src() -> Path:
    """The directory holding the runq package this module was imported from (e.g. <repo>/src)."""
    return Path(__file__).resolve().parents[2]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m runq.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("steps", nargs="+", metavar="STEP", choices=["all", *STEPS], help="all | " + " | ".join(STEPS))
    p.add_argument("--root", default=os.environ.get("RUNQ_ROOT") or layout.DEFAULT_ROOT,
                   help="runtime root to assemble (default: $RUNQ_ROOT or %(default)s)")
    p.add_argument("--src", default=None, help=f"directory holding the runq package (default: {default_src()})")
    p.add_argument("--guest-src", default=os.environ.get("RUNQ_GUEST_SRC"),
                   help="directory holding the runq package used for the initrd's guest side "
                        "(default: $RUNQ_GUEST_SRC or --src)")
    p.add_argument("--cache", default=DEFAULT_CACHE, help="download cache (default: %(default)s)")
    p.add_argument("--tag", default="busybox:latest", help="busybox-image: image tag (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date / the image exists")
    return p.parse_args(list(argv))


def expand(steps: Sequence[str]) -> list[str]:
    out: list[str] = []
    for s in steps:
        for x in ALL if s == "all" else [s]:
            if x not in out:
                out.append(x)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.umask(0o022)
    src = Path(args.src).resolve() if args.src else default_src()
    ctx = Context(root=Path(args.root).resolve(), src=src,
                  guest_src=Path(args.guest_src).resolve() if args.guest_src else src,
                  cache=Path(args.cache), force=args.force, tag=args.tag)
    ctx.root.mkdir(parents=True, exist_ok=True)
    total = time.monotonic()
    for step in expand(args.steps):
        t0 = time.monotonic()
        try:
            result = STEPS[step](ctx)
        except BuildError as e:
            print(f"{step:14s} FAILED after {time.monotonic() - t0:.1f}s: {e}", file=sys.stderr)
            return 1
        print(f"{step:14s} {time.monotonic() - t0:6.1f}s  {result}", flush=True)
    print(f"{'total':14s} {time.monotonic() - total:6.1f}s  root {ctx.root}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

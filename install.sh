#!/usr/bin/env bash
# Install runq on a Debian 12 host (as root) and prove it works.
#   ./install.sh          install, register with Docker, run `docker run --runtime runq --rm busybox uname -a`
#   ./install.sh --test   the same, then run the whole test suite
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=${RUNQ_ROOT:-/var/lib/runq}
VENV=${RUNQ_VENV:-$PWD/.venv}
step() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

step "Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq docker.io >/dev/null   # with its recommends, as Debian ships it
apt-get install -y -qq --no-install-recommends \
    runc containerd podman qemu-system-x86 qemu-system-data python3.11 python3-venv busybox-static \
    kmod cpio lz4 iproute2 iptables procps ca-certificates >/dev/null

step "Python package and test tools ($VENV)"
PY=$(command -v python3)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e '.[test]'

step "Runtime root $ROOT (QEMU, guest kernel, initrd, Python bundle)"
"$VENV/bin/python" -m runq.build --root "$ROOT" all

step "Docker registration"
"$VENV/bin/python" -m runq.register --root "$ROOT"
"$VENV/bin/python" -m runq.build busybox-image

step "A container in a VM"
"$ROOT/runq" doctor || true
docker run --runtime runq --rm busybox uname -a

if [ "${1:-}" = "--test" ]; then
    step "Lint"
    "$VENV/bin/python" -m ruff check src tests bench
    step "Test suite"
    set +e
    "$VENV/bin/python" -m pytest -ra tests
    rc=$?
    set -e
    [ $rc = 5 ] && { echo "no tests ran" >&2; exit 1; }
    exit $rc
fi

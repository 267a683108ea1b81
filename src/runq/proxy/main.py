"""The proxy: the container's PID 1 on the host. It runs QEMU and relays stdio, signals and the exit status.

    runq-proxy --name ID /.runq/run/proxy.json

Steps: read the payload, pivot into the runtime root (the container rootfs lands at /rootfs), start QEMU with the
channel and console on socketpairs, send the GuestConfig, then relay until the guest reports the workload's exit.
The proxy exits with that status, so the engine (shim) sees the workload's exit code.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import tty

from .. import channel as ch
from .. import layout, linux
from ..bundle import ProxyPayload
from .dns import Forwarder
from .qemu import qemu_argv

NOT_FORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGWINCH, signal.SIGPIPE,
                 signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP}
FORWARDED = [s for s in range(1, signal.SIGRTMAX + 1)
             if s not in NOT_FORWARDED and s not in (32, 33)]  # 32/33: glibc-internal RT signals
EXIT_GRACE = 5.0


class ProxyError(Exception):
    pass


def _min(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


class Log:
    """JSON lines into the runtime log (only when the runtime was started with --debug and --log)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, level: str, msg: str) -> None:
        if self.fd < 0:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        try:
            os.write(self.fd, (json.dumps({"level": level, "msg": f"proxy: {msg}", "time": now}) + "\n").encode())
        except OSError:
            pass


def pivot_into_runtime_root() -> None:
    """Make the runtime root (bind-mounted at /.runq) the root; the container rootfs moves to /rootfs."""
    r = layout.CONTAINER_MOUNT
    for d in ("dev", "proc", "sys"):
        linux.mount("/" + d, f"{r}/{d}", None, linux.MS_MOVE)
    try:
        linux.pivot_root(r, f"{r}/rootfs")
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE)
        linux.pivot_root(r, f"{r}/rootfs")
    os.chdir("/")


def prepare_network(payload: ProxyPayload, log: Log) -> tuple[ProxyPayload, list[tuple[int, str]]]:
    """Before pivot_root: runq's resolv.conf, then the container's links as guest NICs.

    Returns the payload whose GuestConfig lists the NICs, and (fd, mac) per NIC for QEMU.
    """
    from . import dns

    if not payload.network:
        if dns.write_resolv_conf(payload.dns, []):
            log("debug", "wrote runq's resolv.conf")
        return payload, []
    from . import network

    def before(records: list[dict]) -> None:
        if dns.write_resolv_conf(payload.dns, records):
            log("debug", "wrote runq's resolv.conf")

    records, fds = network.setup(mode=payload.net_mode, before=before)
    for r in records:
        log("debug", f"guest NIC {r['name']} {r['mac']} mtu {r['mtu']} addrs {r['addrs']} routes {r['routes']}")
    guest = payload.guest.replace(networks=records)
    return dataclasses.replace(payload, guest=guest), [(fd, r["mac"]) for fd, r in zip(fds, records)]


def _recv(sock: socket.socket, size: int) -> bytes:
    """recv, with QEMU's end going away (reset) read as end of file: its exit is handled by the main loop."""
    try:
        return sock.recv(size)
    except ConnectionResetError:
        return b""


class Proxy:
    def __init__(self, payload: ProxyPayload, log: Log, nics: list[tuple[int, str]] | None = None) -> None:
        self.p = payload
        self.log = log
        self.nics = list(nics or [])
        self.dns = Forwarder(self.send)
        self.decoder = ch.Decoder()
        self.exit_code: int | None = None
        self.started = False
        self.console_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.stdin_open = True
        self.qemu: subprocess.Popen[bytes] | None = None
        self.qemu_status: int | None = None

    # -- setup ---------------------------------------------------------------------------------------------
    def start_qemu(self) -> None:
        self.chan, chan_q = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.con, con_q = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        qfds = (chan_q.fileno(), con_q.fileno()) + tuple(fd for fd, _ in self.nics)
        argv = qemu_argv(self.p.vm, root="/", readonly_root=self.p.guest.readonly_root,
                         channel_fd=qfds[0], console_fd=qfds[1], nics=self.nics)
        self.log("debug", "qemu: " + " ".join(argv))
        r, w = os.pipe()
        self.qemu_err = r
        self.qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w, stderr=w, cwd="/",
                                     pass_fds=qfds, close_fds=True)
        os.close(w)
        chan_q.close()
        con_q.close()
        for fd, _ in self.nics:
            os.close(fd)
        self.send(ch.Config(self.p.guest))

    def send(self, msg: ch.Msg) -> None:
        try:
            self.chan.sendall(msg.encode())
        except OSError as e:
            self.log("warning", f"channel send failed: {e}")

    # -- main loop -------------------------------------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for s in FORWARDED + [signal.SIGCHLD, signal.SIGWINCH]:
            try:
                signal.signal(s, lambda *_: None)
            except (OSError, ValueError):
                pass
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        terminal = self.p.guest.terminal and os.isatty(0)
        if terminal:
            try:
                tty.setraw(0)
            except termios.error:
                pass
        self.start_qemu()
        if terminal:
            self.send_winsize()
        deadline = time.monotonic() + self.p.vm.boot_timeout
        exit_deadline: float | None = None
        assert self.qemu is not None
        while True:
            rlist = [self.chan, self.con, self.qemu_err, wake_r] + self.dns.fds()
            if self.stdin_open:
                rlist.append(0)
            timeout = self.dns.timeout()
            now = time.monotonic()
            if not self.started:
                timeout = _min(timeout, max(0.0, deadline - now))
            if exit_deadline is not None:
                timeout = _min(timeout, max(0.0, exit_deadline - now))
            try:
                ready, _, _ = select.select(rlist, [], [], timeout)
            except InterruptedError:
                continue
            self.dns.expire()
            dns_ready = [fd for fd in ready if isinstance(fd, int) and fd in self.dns.socks]
            for fd in dns_ready:
                self.dns.ready(fd)
            ready = [fd for fd in ready if fd not in dns_ready]
            now = time.monotonic()
            if not ready and ((exit_deadline is not None and now < exit_deadline)
                              or (exit_deadline is None and (self.started or now < deadline))):
                continue  # a DNS relay wake-up, not a deadline
            if not ready:
                if exit_deadline is not None:
                    self.log("warning", "guest did not power off after the workload ended; killing QEMU")
                else:
                    self.fail_line(f"runq: the VM did not start within {self.p.vm.boot_timeout} s")
                self.qemu.kill()
                self.qemu_status = self.qemu.wait()
                break
            for fd in ready:
                if fd == wake_r:
                    self.handle_signals(os.read(wake_r, 512))
                elif fd is self.chan:
                    self.read_channel()
                elif fd is self.con:
                    self.read_console()
                elif fd == self.qemu_err:
                    self.read_qemu_err()
                elif fd == 0:
                    self.read_stdin(terminal)
            if self.exit_code is not None and exit_deadline is None:
                # The guest synced before reporting; nothing is left to lose.
                self.qemu.kill()
                exit_deadline = time.monotonic() + EXIT_GRACE
            if self.qemu_status is None:
                st = self.qemu.poll()
                if st is not None:
                    self.qemu_status = st
            if self.qemu_status is not None:
                self.drain()
                break
        if self.exit_code is None:
            why = f"QEMU exited with status {self.qemu_status}" if self.qemu_status is not None else "timeout"
            self.fail_line(f"runq: the VM ended without reporting the workload's exit status ({why})")
            for line in self.console_tail:
                self.fail_line("runq: guest console: " + line)
            return 1
        return self.exit_code

    def fail_line(self, text: str) -> None:
        self.log("error", text)
        try:
            os.write(2, (text + "\n").encode(errors="replace"))
        except OSError:
            pass

    def drain(self) -> None:
        """QEMU is gone: take what is left in the sockets."""
        for sock, fn in ((self.chan, self.read_channel), (self.con, self.read_console)):
            sock.setblocking(False)
            for _ in range(10000):
                try:
                    if not fn():
                        break
                except (BlockingIOError, OSError):
                    break

    # -- handlers --------------------------------------------------------------------------------------------
    def read_channel(self) -> bool:
        data = _recv(self.chan, 256 * 1024)
        if not data:
            return False
        for msg in self.decoder.feed(data):
            if isinstance(msg, ch.Stdout):
                self.write_out(1, msg.data)
            elif isinstance(msg, ch.Stderr):
                self.write_out(2, msg.data)
            elif isinstance(msg, ch.Started):
                self.started = True
                self.log("debug", f"workload started (guest pid {msg.pid})")
            elif isinstance(msg, ch.Exit):
                self.exit_code = msg.code
                self.log("debug", f"workload exited with {msg.code}")
            elif isinstance(msg, ch.DnsQuery):
                self.dns.query(msg)
            elif isinstance(msg, ch.Log):
                self.log(msg.level, "guest: " + msg.text)
                if msg.level == "error":
                    self.fail_line("runq: " + msg.text)
        return True

    def write_out(self, fd: int, data: bytes) -> None:
        try:
            ch.write_all(fd, data)
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.EBADF):
                raise

    def read_console(self) -> bool:
        data = _recv(self.con, 65536)
        if not data:
            return False
        for line in data.decode(errors="replace").splitlines():
            if line.strip():
                self.console_tail.append(line)
                self.log("debug", "console: " + line)
        return True

    def read_qemu_err(self) -> None:
        data = os.read(self.qemu_err, 65536)
        for line in data.decode(errors="replace").splitlines():
            if line.strip():
                self.console_tail.append("qemu: " + line)
                self.log("warning", "qemu: " + line)

    def read_stdin(self, terminal: bool) -> None:
        try:
            data = os.read(0, ch.CHUNK)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if data:
            self.send(ch.Stdin(data))
            return
        self.stdin_open = False
        if not terminal:
            self.send(ch.StdinEof())

    def handle_signals(self, raw: bytes) -> None:
        for s in raw:
            if s == signal.SIGCHLD:
                assert self.qemu is not None
                st = self.qemu.poll()
                if st is not None:
                    self.qemu_status = st
            elif s == signal.SIGWINCH:
                self.send_winsize()
            else:
                self.log("debug", f"forwarding signal {s}")
                self.send(ch.Signal(s))

    def send_winsize(self) -> None:
        try:
            rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            return
        if rows and cols:
            self.send(ch.WinSize(rows, cols))


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--name")]
    if argv[:1] == ["--name"]:
        args = argv[2:]
    if len(args) != 1:
        print("usage: runq-proxy --name ID PAYLOAD", file=sys.stderr)
        return 2
    with open(args[0]) as f:
        payload = ProxyPayload.from_json(f.read())
    log = Log(payload.log_fd)
    try:
        payload, nics = prepare_network(payload, log)
        pivot_into_runtime_root()
        sys.path.insert(0, "/" + layout.LIB_DIR)
        return Proxy(payload, log, nics).run()
    except Exception as e:  # noqa: BLE001 - the one place that turns any failure into the container's exit
        msg = f"runq: proxy failed: {e}"
        log("error", msg)
        print(msg, file=sys.stderr)
        return 1

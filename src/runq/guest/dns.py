"""Docker's embedded DNS server (127.0.0.11) inside the guest (standard library only, fast imports).

On user-defined networks Docker writes ``nameserver 127.0.0.11`` into resolv.conf; that server answers only in the
container's network namespace on the host. The guest runs a stub on 127.0.0.11:53 (UDP and TCP, on lo), relays each
query to the proxy over the channel (DnsQuery), and the proxy asks the real server in the container's namespace and
sends the answer back (DnsAnswer). Driven from init's relay loop: no threads.
"""

from __future__ import annotations

import _socket
import struct
import time

EMBEDDED = "127.0.0.11"
PORT = 53
MAX_INFLIGHT = 256
TIMEOUT = 10.0  # seconds a query may wait for its answer (resolvers retry after 5 s by default)
MAX_TCP_BUFFER = 128 * 1024


def uses_embedded_dns(resolv_conf: str) -> bool:
    """True when resolv.conf names Docker's embedded server."""
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and words[1] == EMBEDDED:
            return True
    return False


def split_frames(buf: bytes) -> tuple[list[bytes], bytes]:
    """DNS over TCP: 2-byte big-endian length, then the message. Returns (complete messages, the rest)."""
    out = []
    while len(buf) >= 2:
        n = struct.unpack_from(">H", buf)[0]
        if len(buf) < 2 + n:
            break
        out.append(buf[2:2 + n])
        buf = buf[2 + n:]
    return out, buf


def frame(msg: bytes) -> bytes:
    return struct.pack(">H", len(msg)) + msg


class Stub:
    """The stub server. `send(proto, qid, data)` hands a query to the host."""

    def __init__(self, send: object, addr: str = EMBEDDED, port: int = PORT) -> None:
        self.send = send
        self.udp = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        self.udp.bind((addr, port))
        self.udp.setblocking(False)
        self.tcp = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        self.tcp.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        self.tcp.bind((addr, port))
        self.tcp.listen(64)
        self.tcp.setblocking(False)
        self.conns: dict[int, list] = {}   # fd -> [socket, buffer, last activity, client done sending]
        self.pending: dict[int, tuple] = {}  # query id -> (deadline, "udp", client address) | (deadline, "tcp", fd)
        self.next_id = 1

    def fds(self) -> list[int]:
        return [self.udp.fileno(), self.tcp.fileno()] + [fd for fd, e in self.conns.items() if not e[3]]

    def busy(self) -> bool:
        return bool(self.pending or self.conns)

    def _query(self, proto: str, data: bytes, where: object) -> None:
        if len(self.pending) >= MAX_INFLIGHT:
            return  # the client retries; the expiry below makes room
        qid = self.next_id
        self.next_id = (self.next_id % 0xFFFFFFFF) + 1
        self.pending[qid] = (time.monotonic() + TIMEOUT, proto, where)
        self.send(proto, qid, data)

    def ready(self, fd: int) -> None:
        if fd == self.udp.fileno():
            for _ in range(64):
                try:
                    data, addr = self.udp.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                self._query("udp", data, addr)
        elif fd == self.tcp.fileno():
            try:
                cfd, _ = self.tcp._accept()
            except OSError:
                return
            conn = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, cfd)
            conn.setblocking(False)
            self.conns[cfd] = [conn, b"", time.monotonic(), False]
        elif fd in self.conns:
            entry = self.conns[fd]
            try:
                data = entry[0].recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the client may half-close after its query: answer first
                entry[3] = True
                self._close_if_done(fd)
                return
            if len(entry[1]) + len(data) > MAX_TCP_BUFFER:
                self._close(fd)
                return
            msgs, entry[1] = split_frames(entry[1] + data)
            entry[2] = time.monotonic()
            for m in msgs:
                self._query("tcp", m, fd)

    def answer(self, qid: int, data: bytes) -> None:
        item = self.pending.pop(qid, None)
        if item is None:
            return
        _, proto, where = item
        try:
            if proto == "udp":
                self.udp.sendto(data, where)
            elif where in self.conns:
                conn = self.conns[where][0]
                conn.setblocking(True)
                conn.settimeout(2.0)
                conn.sendall(frame(data))
                conn.setblocking(False)
                self._close_if_done(where)
        except OSError:
            if proto == "tcp":
                self._close(where)

    def _close_if_done(self, fd: int) -> None:
        entry = self.conns.get(fd)
        if entry is not None and entry[3] and not any(i[1] == "tcp" and i[2] == fd for i in self.pending.values()):
            self._close(fd)

    def _close(self, fd: int) -> None:
        entry = self.conns.pop(fd, None)
        if entry is not None:
            entry[0].close()
        for qid in [q for q, item in self.pending.items() if item[1] == "tcp" and item[2] == fd]:
            del self.pending[qid]

    def expire(self) -> None:
        now = time.monotonic()
        for qid in [q for q, item in self.pending.items() if item[0] < now]:
            del self.pending[qid]
        waiting = {item[2] for item in self.pending.values() if item[1] == "tcp"}
        for fd in [fd for fd, e in self.conns.items() if fd not in waiting and e[2] + TIMEOUT < now]:
            self._close(fd)

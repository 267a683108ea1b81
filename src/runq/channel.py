"""The host<->guest channel: typed messages over one virtio-serial port.

Used by both sides (the proxy on the host, init in the guest), so standard library only, and only modules that
import fast under TCG: no json, dataclasses or typing (each costs tens to hundreds of ms in the guest).
Structured payloads use marshal: both ends run the same bundled interpreter.

Wire format of every message: ``[u32 big-endian payload length][u8 type][payload]``.
One port carries everything (control, stdio, exit status); stdout and stderr stay separate streams.
"""

from __future__ import annotations

import marshal
import os
import struct

if False:  # typing only; importing typing costs real time in the guest
    from typing import Iterator

HEADER = struct.Struct(">IB")
MAX_PAYLOAD = 16 * 1024 * 1024
CHUNK = 64 * 1024  # largest stdio payload we send in one message
PORT_NAME = "runq.0"


class ChannelError(Exception):
    """Malformed traffic on the channel."""


class Record:
    """A small value class: FIELDS lists (name, default); equality and repr by value."""

    FIELDS: tuple[tuple[str, object], ...] = ()
    __slots__ = ()

    def __init__(self, *args: object, **kw: object) -> None:
        names = [n for n, _ in self.FIELDS]
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments")
        values = dict(zip(names, args))
        for k, v in kw.items():
            if k not in names or k in values:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated argument {k!r}")
            values[k] = v
        for name, default in self.FIELDS:
            if name in values:
                v = values[name]
            elif default is _REQUIRED:
                raise TypeError(f"{type(self).__name__}: missing argument {name!r}")
            else:
                v = default.copy() if isinstance(default, (list, dict)) else default
            object.__setattr__(self, name, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def as_dict(self) -> dict[str, object]:
        return {n: getattr(self, n) for n, _ in self.FIELDS}

    def replace(self, **changes: object) -> "Record":
        """A copy with some fields changed (records are immutable)."""
        values = self.as_dict()
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.as_dict() == other.as_dict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"


_REQUIRED = object()


class GuestConfig(Record):
    """Everything init needs to start the workload; sent once, host -> guest, right after boot."""

    FIELDS = (
        ("args", _REQUIRED), ("env", _REQUIRED), ("cwd", "/"), ("uid", 0), ("gid", 0), ("additional_gids", []),
        ("umask", None), ("terminal", False), ("hostname", ""),
        ("rlimits", []),          # [(RLIMIT_NAME, soft, hard)]
        ("capabilities", {}),     # OCI sets: bounding, effective, permitted, inheritable, ambient
        ("no_new_privileges", False), ("sysctl", {}),
        ("tmpfs", []),            # [(destination, comma options)]
        ("cache9p", "mmap"), ("readonly_root", False), ("masked_paths", []), ("readonly_paths", []),
        ("shm_size", 64 * 1024 * 1024), ("runqenv", False), ("systemd", False), ("debug", False),
        ("seccomp_bpf", ""),      # the OCI seccomp profile compiled to BPF on the host (hex); "" = none
        # One record per guest NIC, filled in by the proxy from the container's links (runq.proxy.network):
        # {"name", "mac", "mtu", "ipv6": bool, "addrs": [(family, address, prefixlen)],
        #  "routes": [(family, dst, dst_len, gateway, scope, metric)]}  (dst/gateway "" when absent)
        ("networks", []),
    )
    __slots__ = tuple(n for n, _ in FIELDS)

    def encode(self) -> bytes:
        return marshal.dumps(self.as_dict())

    @classmethod
    def from_dict(cls, raw: dict) -> "GuestConfig":
        raw = dict(raw)
        raw["rlimits"] = [tuple(r) for r in raw.get("rlimits", [])]
        raw["tmpfs"] = [tuple(t) for t in raw.get("tmpfs", [])]
        return cls(**raw)

    @classmethod
    def decode(cls, data: bytes) -> "GuestConfig":
        return cls.from_dict(marshal.loads(data))


class Msg(Record):
    """Base of all message types. Subclasses set TYPE and implement payload()/parse()."""

    TYPE = 0
    registry: dict[int, type["Msg"]] = {}
    __slots__ = ()

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "TYPE" not in cls.__dict__:
            return  # abstract helper base
        if cls.TYPE in Msg.registry:
            raise TypeError(f"duplicate message type {cls.TYPE}")
        Msg.registry[cls.TYPE] = cls

    def payload(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, payload: bytes) -> "Msg":
        return cls()

    def encode(self) -> bytes:
        data = self.payload()
        return HEADER.pack(len(data), self.TYPE) + data


class Config(Msg):
    """host -> guest: the GuestConfig."""

    TYPE = 1
    FIELDS = (("config", _REQUIRED),)
    __slots__ = ("config",)

    def payload(self) -> bytes:
        return self.config.encode()

    @classmethod
    def parse(cls, payload: bytes) -> "Config":
        return cls(GuestConfig.decode(payload))


class _Bytes(Msg):
    FIELDS = (("data", _REQUIRED),)
    __slots__ = ("data",)

    def payload(self) -> bytes:
        return self.data

    @classmethod
    def parse(cls, payload: bytes) -> "Msg":
        return cls(payload)


class Stdin(_Bytes):
    """host -> guest: bytes for the workload's stdin (or its terminal)."""

    TYPE = 2
    __slots__ = ()


class StdinEof(Msg):
    """host -> guest: the workload's stdin reached end of file."""

    TYPE = 3
    __slots__ = ()


class Stdout(_Bytes):
    """guest -> host: workload output on stdout (and the terminal, with a tty)."""

    TYPE = 4
    __slots__ = ()


class Stderr(_Bytes):
    """guest -> host: workload output on stderr."""

    TYPE = 5
    __slots__ = ()


class Signal(Msg):
    """host -> guest: deliver this signal to the workload."""

    TYPE = 6
    FIELDS = (("signum", _REQUIRED),)
    __slots__ = ("signum",)

    def payload(self) -> bytes:
        return bytes([self.signum])

    @classmethod
    def parse(cls, payload: bytes) -> "Signal":
        if len(payload) != 1:
            raise ChannelError("signal message needs 1 byte")
        return cls(payload[0])


class WinSize(Msg):
    """host -> guest: the terminal size changed."""

    TYPE = 7
    FIELDS = (("rows", _REQUIRED), ("cols", _REQUIRED))
    __slots__ = ("rows", "cols")

    def payload(self) -> bytes:
        return struct.pack(">HH", self.rows, self.cols)

    @classmethod
    def parse(cls, payload: bytes) -> "WinSize":
        rows, cols = struct.unpack(">HH", payload)
        return cls(rows, cols)


class Started(Msg):
    """guest -> host: the workload process exists (pid inside the guest)."""

    TYPE = 8
    FIELDS = (("pid", _REQUIRED),)
    __slots__ = ("pid",)

    def payload(self) -> bytes:
        return struct.pack(">I", self.pid)

    @classmethod
    def parse(cls, payload: bytes) -> "Started":
        return cls(struct.unpack(">I", payload)[0])


class Exit(Msg):
    """guest -> host: the workload ended with this container exit code (0..255, 128+n for signal n)."""

    TYPE = 9
    FIELDS = (("code", _REQUIRED),)
    __slots__ = ("code",)

    def payload(self) -> bytes:
        return bytes([self.code & 0xFF])

    @classmethod
    def parse(cls, payload: bytes) -> "Exit":
        if len(payload) != 1:
            raise ChannelError("exit message needs 1 byte")
        return cls(payload[0])


class Log(Msg):
    """guest -> host: a diagnostic line from init (goes to the runtime log, never to the workload's stdio)."""

    TYPE = 10
    FIELDS = (("level", _REQUIRED), ("text", _REQUIRED))
    __slots__ = ("level", "text")

    def payload(self) -> bytes:
        return marshal.dumps((self.level, self.text))

    @classmethod
    def parse(cls, payload: bytes) -> "Log":
        level, text = marshal.loads(payload)
        return cls(level, text)


class DnsQuery(Msg):
    """guest -> host: a DNS query the guest's stub (127.0.0.11:53) received; proto is "udp" or "tcp"."""

    TYPE = 11
    FIELDS = (("id", _REQUIRED), ("proto", _REQUIRED), ("data", _REQUIRED))
    __slots__ = ("id", "proto", "data")

    def payload(self) -> bytes:
        return struct.pack(">IB", self.id, 1 if self.proto == "tcp" else 0) + self.data

    @classmethod
    def parse(cls, payload: bytes) -> "DnsQuery":
        if len(payload) < 5:
            raise ChannelError("dns query message needs at least 5 bytes")
        qid, tcp = struct.unpack_from(">IB", payload)
        return cls(qid, "tcp" if tcp else "udp", payload[5:])


class DnsAnswer(Msg):
    """host -> guest: the answer of Docker's embedded DNS server to the query with this id."""

    TYPE = 12
    FIELDS = (("id", _REQUIRED), ("data", _REQUIRED))
    __slots__ = ("id", "data")

    def payload(self) -> bytes:
        return struct.pack(">I", self.id) + self.data

    @classmethod
    def parse(cls, payload: bytes) -> "DnsAnswer":
        if len(payload) < 4:
            raise ChannelError("dns answer message needs at least 4 bytes")
        return cls(struct.unpack_from(">I", payload)[0], payload[4:])


class Decoder:
    """Incremental decoder: feed() raw bytes, iterate complete messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Msg]:
        self._buf += data
        while len(self._buf) >= HEADER.size:
            length, mtype = HEADER.unpack_from(self._buf)
            if length > MAX_PAYLOAD:
                raise ChannelError(f"message of {length} bytes exceeds the limit")
            end = HEADER.size + length
            if len(self._buf) < end:
                return
            payload = bytes(self._buf[HEADER.size:end])
            del self._buf[:end]
            cls = Msg.registry.get(mtype)
            if cls is None:
                raise ChannelError(f"unknown message type {mtype}")
            yield cls.parse(payload)


def chunks(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def write_all(fd: int, data: bytes) -> None:
    """Write everything to a (possibly non-blocking) fd, waiting for room when needed."""
    import select

    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except InterruptedError:
            continue
        view = view[n:]

"""The host<->guest channel: typed messages over one virtio-serial port.

Used by both sides (the proxy on the host, init in the guest), so standard library only.

Wire format of every message: ``[u32 big-endian payload length][u8 type][payload]``.
One port carries everything (control, stdio, exit status); stdout and stderr stay separate streams.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import asdict, dataclass, field
from typing import ClassVar, Iterator

HEADER = struct.Struct(">IB")
MAX_PAYLOAD = 16 * 1024 * 1024
CHUNK = 64 * 1024  # largest stdio payload we send in one message
PORT_NAME = "runq.0"


class ChannelError(Exception):
    """Malformed traffic on the channel."""


@dataclass(frozen=True)
class GuestConfig:
    """Everything init needs to start the workload; sent once, host -> guest, right after boot."""

    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    umask: int | None = None
    terminal: bool = False
    hostname: str = ""
    rlimits: list[tuple[str, int, int]] = field(default_factory=list)
    capabilities: dict[str, list[str]] = field(default_factory=dict)
    no_new_privileges: bool = False
    sysctl: dict[str, str] = field(default_factory=dict)
    tmpfs: list[tuple[str, str]] = field(default_factory=list)  # (destination, comma options)
    cache9p: str = "mmap"
    readonly_root: bool = False
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    shm_size: int = 64 * 1024 * 1024
    runqenv: bool = False
    systemd: bool = False
    debug: bool = False

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "GuestConfig":
        raw = json.loads(data)
        raw["rlimits"] = [tuple(r) for r in raw.get("rlimits", [])]
        raw["tmpfs"] = [tuple(t) for t in raw.get("tmpfs", [])]
        return cls(**raw)


class Msg:
    """Base of all message types. Subclasses set TYPE and implement payload()/parse()."""

    TYPE: ClassVar[int] = 0
    registry: ClassVar[dict[int, type["Msg"]]] = {}

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


@dataclass(frozen=True)
class Config(Msg):
    """host -> guest: the GuestConfig."""

    TYPE: ClassVar[int] = 1
    config: GuestConfig

    def payload(self) -> bytes:
        return self.config.to_json()

    @classmethod
    def parse(cls, payload: bytes) -> "Config":
        return cls(GuestConfig.from_json(payload))


@dataclass(frozen=True)
class _Bytes(Msg):
    data: bytes

    def payload(self) -> bytes:
        return self.data

    @classmethod
    def parse(cls, payload: bytes) -> "Msg":
        return cls(payload)


@dataclass(frozen=True)
class Stdin(_Bytes):
    """host -> guest: bytes for the workload's stdin (or its terminal)."""

    TYPE: ClassVar[int] = 2


@dataclass(frozen=True)
class StdinEof(Msg):
    """host -> guest: the workload's stdin reached end of file."""

    TYPE: ClassVar[int] = 3


@dataclass(frozen=True)
class Stdout(_Bytes):
    """guest -> host: workload output on stdout (and the terminal, with a tty)."""

    TYPE: ClassVar[int] = 4


@dataclass(frozen=True)
class Stderr(_Bytes):
    """guest -> host: workload output on stderr."""

    TYPE: ClassVar[int] = 5


@dataclass(frozen=True)
class Signal(Msg):
    """host -> guest: deliver this signal to the workload."""

    TYPE: ClassVar[int] = 6
    signum: int

    def payload(self) -> bytes:
        return bytes([self.signum])

    @classmethod
    def parse(cls, payload: bytes) -> "Signal":
        if len(payload) != 1:
            raise ChannelError("signal message needs 1 byte")
        return cls(payload[0])


@dataclass(frozen=True)
class WinSize(Msg):
    """host -> guest: the terminal size changed."""

    TYPE: ClassVar[int] = 7
    rows: int
    cols: int

    def payload(self) -> bytes:
        return struct.pack(">HH", self.rows, self.cols)

    @classmethod
    def parse(cls, payload: bytes) -> "WinSize":
        rows, cols = struct.unpack(">HH", payload)
        return cls(rows, cols)


@dataclass(frozen=True)
class Started(Msg):
    """guest -> host: the workload process exists (pid inside the guest)."""

    TYPE: ClassVar[int] = 8
    pid: int

    def payload(self) -> bytes:
        return struct.pack(">I", self.pid)

    @classmethod
    def parse(cls, payload: bytes) -> "Started":
        return cls(struct.unpack(">I", payload)[0])


@dataclass(frozen=True)
class Exit(Msg):
    """guest -> host: the workload ended with this container exit code (0..255, 128+n for signal n)."""

    TYPE: ClassVar[int] = 9
    code: int

    def payload(self) -> bytes:
        return bytes([self.code & 0xFF])

    @classmethod
    def parse(cls, payload: bytes) -> "Exit":
        if len(payload) != 1:
            raise ChannelError("exit message needs 1 byte")
        return cls(payload[0])


@dataclass(frozen=True)
class Log(Msg):
    """guest -> host: a diagnostic line from init (goes to the runtime log, never to the workload's stdio)."""

    TYPE: ClassVar[int] = 10
    level: str
    text: str

    def payload(self) -> bytes:
        return json.dumps([self.level, self.text]).encode()

    @classmethod
    def parse(cls, payload: bytes) -> "Log":
        level, text = json.loads(payload)
        return cls(level, text)


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

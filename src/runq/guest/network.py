"""Guest NICs from the proxy's records, over rtnetlink (standard library only, fast imports: no socket/ipaddress).

Each record (runq.channel.GuestConfig.networks) names a NIC by MAC: the virtio-net interface with that MAC is
renamed to the record's name (eth0, eth1, ... as with runc), gets the MTU, addresses and routes, and comes up.
Message builders are pure functions (tests/unit/test_guest_network.py).
"""

from __future__ import annotations

import _socket
import os
import struct
import time

AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 10
NETLINK_ROUTE = 0

NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFA_F_NODAD = 0x02
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTN_UNICAST = 1
IFF_UP = 0x1
ARPHRD_ETHER = 1
EEXIST = 17

NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")
RTATTR = struct.Struct("=HH")


class NetworkError(Exception):
    """Configuring a guest NIC failed (one line naming the interface and what)."""


# ---------------------------------------------------------------------------------------------------------------
# Pure message builders and parsers


def _align(n: int) -> int:
    return (n + 3) & ~3


def rtattr(kind: int, data: bytes) -> bytes:
    length = RTATTR.size + len(data)
    return RTATTR.pack(length, kind) + data + b"\0" * (_align(length) - length)


def nlmsg(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def ip_bytes(family: int, address: str) -> bytes:
    return _socket.inet_pton(family, address)


def broadcast(address: str, prefixlen: int) -> str:
    """The IPv4 broadcast address of address/prefixlen (what `ip addr add ... brd +` would set)."""
    n = struct.unpack(">I", ip_bytes(AF_INET, address))[0]
    host = (1 << (32 - prefixlen)) - 1
    return _socket.inet_ntop(AF_INET, struct.pack(">I", n | host))


def link_msg(seq: int, index: int, name: str | None = None, mtu: int | None = None, up: bool | None = None) -> bytes:
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    body = IFINFOMSG.pack(AF_UNSPEC, 0, index, flags, change)
    if name is not None:
        body += rtattr(IFLA_IFNAME, name.encode() + b"\0")
    if mtu is not None:
        body += rtattr(IFLA_MTU, struct.pack("=I", mtu))
    return nlmsg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def getlink_msg(seq: int) -> bytes:
    return nlmsg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0))


def addr_msg(seq: int, index: int, family: int, address: str, prefixlen: int) -> bytes:
    raw = ip_bytes(family, address)
    flags = IFA_F_NODAD if family == AF_INET6 else 0  # usable at once: Docker made the address unique
    body = IFADDRMSG.pack(family, prefixlen, flags, 0, index)
    body += rtattr(IFA_LOCAL, raw) + rtattr(IFA_ADDRESS, raw) if family == AF_INET else rtattr(IFA_ADDRESS, raw)
    if family == AF_INET and prefixlen < 31:
        body += rtattr(IFA_BROADCAST, ip_bytes(AF_INET, broadcast(address, prefixlen)))
    return nlmsg(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def route_msg(seq: int, index: int, route: tuple) -> bytes:
    family, dst, dst_len, gateway, scope, metric = route
    body = RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0)
    if dst:
        body += rtattr(RTA_DST, ip_bytes(family, dst))
    if gateway:
        body += rtattr(RTA_GATEWAY, ip_bytes(family, gateway))
    body += rtattr(RTA_OIF, struct.pack("=i", index))
    if metric:
        body += rtattr(RTA_PRIORITY, struct.pack("=I", metric))
    return nlmsg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def parse_messages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, seq, body) of each netlink message in one datagram."""
    out = []
    off = 0
    while off + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _ = NLMSGHDR.unpack_from(data, off)
        if length < NLMSGHDR.size:
            break
        out.append((kind, flags, seq, data[off + NLMSGHDR.size:off + length]))
        off += _align(length)
    return out


def parse_attrs(data: bytes) -> dict[int, bytes]:
    attrs = {}
    off = 0
    while off + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, off)
        if length < RTATTR.size:
            break
        attrs[kind & 0x3FFF] = data[off + RTATTR.size:off + length]
        off += _align(length)
    return attrs


def parse_link(body: bytes) -> tuple[int, int, str, str]:
    """(index, type, name, mac) of an RTM_NEWLINK message body."""
    _, kind, index, _, _ = IFINFOMSG.unpack_from(body)
    attrs = parse_attrs(body[IFINFOMSG.size:])
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0")[0].decode()
    return index, kind, name, mac_text(attrs.get(IFLA_ADDRESS, b""))


def route_order(records: list[dict]) -> list[tuple[str, tuple]]:
    """(nic name, route) for all NICs: direct routes first, then routes through gateways, default routes last."""
    out = [(r["name"], tuple(rt)) for r in records for rt in r["routes"]]
    out.sort(key=lambda item: (item[1][2] == 0, item[1][3] != ""))
    return out


# ---------------------------------------------------------------------------------------------------------------
# The kernel side


class Netlink:
    def __init__(self) -> None:
        self.sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def call(self, msg: bytes, what: str, ok: tuple[int, ...] = ()) -> None:
        """Send one request and wait for its acknowledgement; errors (other than `ok`) raise NetworkError."""
        seq = NLMSGHDR.unpack_from(msg)[3]
        self.sock.send(msg)
        while True:
            for kind, _, mseq, body in parse_messages(self.sock.recv(65536)):
                if mseq != seq or kind != NLMSG_ERROR:
                    continue
                err = -struct.unpack_from("=i", body)[0]
                if err and err not in ok:
                    raise NetworkError(f"{what}: {os.strerror(err)}")
                return

    def links(self) -> list[tuple[int, int, str, str]]:
        seq = self.next_seq()
        self.sock.send(getlink_msg(seq))
        out = []
        while True:
            for kind, _, mseq, body in parse_messages(self.sock.recv(65536)):
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == RTM_NEWLINK:
                    out.append(parse_link(body))


def wait_nics(nl: Netlink, macs: list[str], timeout: float) -> dict[str, int]:
    """mac -> ifindex once every MAC has an interface."""
    end = time.monotonic() + timeout
    while True:
        found = {mac: index for index, kind, _, mac in nl.links() if kind == ARPHRD_ETHER}
        missing = [m for m in macs if m not in found]
        if not missing:
            return {m: found[m] for m in macs}
        if time.monotonic() > end:
            raise NetworkError(f"guest NIC with MAC {missing[0]} did not appear within {timeout:.0f} s")
        time.sleep(0.01)


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass


def configure(records: list[dict], timeout: float = 20.0) -> None:
    """Rename, address, route and bring up the guest NICs described by `records`."""
    if not records:
        return
    nl = Netlink()
    try:
        index = wait_nics(nl, [r["mac"].lower() for r in records], timeout)
        by_name = {}
        for r in records:  # temporary names first: virtio probe order need not follow the records' order
            i = index[r["mac"].lower()]
            nl.call(link_msg(nl.next_seq(), i, name=f"rqtmp{i}"), f"{r['name']}: rename")
            by_name[r["name"]] = i
        for r in records:
            name, i = r["name"], by_name[r["name"]]
            nl.call(link_msg(nl.next_seq(), i, name=name, mtu=r["mtu"]), f"{name}: rename/mtu {r['mtu']}")
            if os.path.isdir("/proc/sys/net/ipv6/conf/" + name):
                _sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "0" if r.get("ipv6") else "1")
            nl.call(link_msg(nl.next_seq(), i, up=True), f"{name}: up")
            for family, address, prefixlen in r["addrs"]:
                nl.call(addr_msg(nl.next_seq(), i, family, address, prefixlen),
                        f"{name}: address {address}/{prefixlen}")
        for name, route in route_order(records):
            family, dst, dst_len, gateway, _, _ = route
            what = f"{name}: route {dst or 'default'}{'/' + str(dst_len) if dst else ''}" + \
                (f" via {gateway}" if gateway else "")
            nl.call(route_msg(nl.next_seq(), by_name[name], route), what, ok=(EEXIST,))
    finally:
        nl.close()


# TCP states that still have data or a FIN to deliver: FIN_WAIT1, CLOSING, LAST_ACK.
_DRAINING = ("04", "0B", "09")


def unsent_tcp(tables: list[str]) -> int:
    """How many TCP sockets in /proc/net/tcp{,6} text still have data or a FIN to get out."""
    n = 0
    for text in tables:
        for line in text.splitlines()[1:]:
            f = line.split()
            if len(f) > 4 and (f[3] in _DRAINING or int(f[4].split(":")[0], 16) > 0):
                n += 1
    return n


def drain_tcp(timeout: float = 3.0) -> None:
    """Before power-off: let the guest kernel deliver what the workload wrote and closed (runc containers keep
    their sockets alive after the process exits; a VM that powers off at once would drop the data)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tables = []
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(path) as f:
                    tables.append(f.read())
            except OSError:
                pass
        if not unsent_tcp(tables):
            return
        time.sleep(0.02)

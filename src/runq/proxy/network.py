"""The container's network, handed to the VM (host side; runs in the proxy before pivot_root).

For every veth or macvlan link in the container's network namespace the proxy records name, MAC, MTU, addresses
and routes (the guest NIC gets them all), removes the addresses from the link, and attaches the link to a QEMU
virtio-net NIC:

* macvtap in passthru mode on the link (the macvtap, and so the guest NIC, keeps Docker's MAC); bridge mode if
  passthru is refused (the link then gets a new random MAC so the macvtap can take Docker's);
* where macvtap is unavailable, a tap device joined to the link with tc ingress + u32 + mirred both ways.

The macvtap's char device is opened through a private node on the container's /dev (``/dev/tapN`` is named after
the per-namespace ifindex, so host names collide), which is unlinked at once. Everything created here lives in the
container's network namespace and goes away with it.

pyroute2 is imported only when the container has links to take over (the import costs ~0.3 s).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable

AF_INET = 2
AF_INET6 = 10
RT_TABLE_MAIN = 254
RTPROT_KERNEL = 2
RTN_UNICAST = 1
RT_SCOPE_LINK = 253
KINDS = ("veth", "macvlan")
TAP_PREFIX = "runqtap"
NODE_DIR = "/dev"  # the container's /dev (a tmpfs of its own), before pivot_root

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
ETH_P_ALL = 0x0003
TC_INGRESS = 0xFFFF0000


class NetworkError(Exception):
    """Setting up the container's network for the VM failed (one line naming the link)."""


# ---------------------------------------------------------------------------------------------------------------
# Pure translation of netlink messages into the guest's records (unit-tested with stand-in messages)


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


def addr_records(msgs: Iterable[Any]) -> list[tuple[int, str, int]]:
    """(family, address, prefixlen) of each address; IPv6 link-local ones are left out (the guest derives the
    same one from the same MAC)."""
    out = []
    for m in msgs:
        family = m["family"]
        if family not in (AF_INET, AF_INET6):
            continue
        if family == AF_INET6 and m["scope"] == RT_SCOPE_LINK:
            continue
        addr = _attr(m, "IFA_LOCAL") or _attr(m, "IFA_ADDRESS")
        if addr:
            out.append((family, addr, int(m["prefixlen"])))
    return out


def route_records(msgs: Iterable[Any], oif: int) -> list[tuple[int, str, int, str, int, int]]:
    """(family, dst, dst_len, gateway, scope, metric) of each main-table unicast route through link `oif`.

    Routes the kernel makes from addresses (proto kernel) are left out: the guest kernel makes its own. The order is
    the order in which the guest can add them: direct routes first, routes through a gateway next, defaults last.
    """
    out = []
    for m in msgs:
        if m["family"] not in (AF_INET, AF_INET6) or _attr(m, "RTA_OIF") != oif:
            continue
        table = _attr(m, "RTA_TABLE") or m["table"]
        if table != RT_TABLE_MAIN or m["type"] != RTN_UNICAST or m["proto"] == RTPROT_KERNEL:
            continue
        out.append((m["family"], _attr(m, "RTA_DST") or "", int(m["dst_len"]), _attr(m, "RTA_GATEWAY") or "",
                    int(m["scope"]), int(_attr(m, "RTA_PRIORITY") or 0)))
    out.sort(key=lambda r: (r[2] == 0, r[3] != ""))
    return out


def link_kind(link: Any) -> str:
    info = _attr(link, "IFLA_LINKINFO")
    return (info.get_attr("IFLA_INFO_KIND") or "") if info is not None else ""


def random_mac() -> str:
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{x:02x}" for x in b)


# ---------------------------------------------------------------------------------------------------------------
# The netns side


class Link:
    """A link to take over: its index and the guest's record for it."""

    def __init__(self, index: int, record: dict) -> None:
        self.index = index
        self.record = record


def inspect(ipr: Any) -> list[Link]:
    """Record every veth/macvlan link of the current network namespace (nothing is changed yet)."""
    routes = list(ipr.get_routes(family=0))
    links = []
    for link in ipr.get_links():
        if link_kind(link) not in KINDS:
            continue
        index, name = link["index"], _attr(link, "IFLA_IFNAME")
        addrs = addr_records(ipr.get_addr(index=index))
        record = {
            "name": name, "mac": _attr(link, "IFLA_ADDRESS"), "mtu": int(_attr(link, "IFLA_MTU") or 1500),
            "ipv6": ipv6_enabled(name), "addrs": addrs, "routes": route_records(routes, index),
        }
        links.append(Link(index, record))
    links.sort(key=lambda lk: (len(lk.record["name"]), lk.record["name"]))
    return links


def ipv6_enabled(name: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6") as f:
            return f.read().strip() == "0"
    except OSError:
        return False


def take_over(ipr: Any, links: list[Link], mode: str = "auto") -> list[int]:
    """Move the links' addresses out of the namespace and attach each link to an open device fd for QEMU."""
    fds: list[int] = []
    try:
        for n, link in enumerate(links):
            name = link.record["name"]
            try:
                ipr.flush_addr(index=link.index)
                fds.append(attach(ipr, link, TAP_PREFIX + str(n), mode))
            except NetworkError:
                raise
            except Exception as e:  # noqa: BLE001 - pyroute2 raises NetlinkError, OSError, ...
                raise NetworkError(f"network link {name}: {describe(e)}") from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def describe(e: BaseException) -> str:
    code = getattr(e, "code", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def attach(ipr: Any, link: Link, tapname: str, mode: str) -> int:
    if mode in ("auto", "macvtap"):
        try:
            return attach_macvtap(ipr, link, tapname)
        except Exception as e:  # noqa: BLE001
            if mode == "macvtap" or getattr(e, "code", None) not in (errno.EOPNOTSUPP, errno.ENODEV, errno.EINVAL,
                                                                     errno.ENOENT):
                raise
            _delete(ipr, tapname)
    return attach_tap(ipr, link, tapname)


def _delete(ipr: Any, name: str) -> None:
    for idx in ipr.link_lookup(ifname=name):
        try:
            ipr.link("del", index=idx)
        except Exception:  # noqa: BLE001
            pass


def attach_macvtap(ipr: Any, link: Link, tapname: str) -> int:
    mac = link.record["mac"]
    try:
        ipr.link("add", ifname=tapname, kind="macvtap", link=link.index, macvtap_mode="passthru")
    except Exception as e:  # noqa: BLE001
        if getattr(e, "code", None) not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EBUSY):
            raise
        # Bridge mode: the macvtap takes Docker's MAC, so the link must give it up.
        ipr.link("set", index=link.index, address=random_mac())
        ipr.link("add", ifname=tapname, kind="macvtap", link=link.index, macvtap_mode="bridge", address=mac)
    tap = ipr.link_lookup(ifname=tapname)[0]
    ipr.link("set", index=tap, state="up")
    ipr.link("set", index=link.index, state="up")
    with open(f"/sys/class/net/{tapname}/tap{tap}/dev") as f:
        major, minor = (int(x) for x in f.read().strip().split(":"))
    return open_private_node(tapname, major, minor)


def open_private_node(name: str, major: int, minor: int) -> int:
    """Open a char device through a node only we know (made, opened, unlinked)."""
    node = os.path.join(NODE_DIR, f".runq-{name}-{os.getpid()}")
    try:
        os.unlink(node)
    except FileNotFoundError:
        pass
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(major, minor))
    try:
        return os.open(node, os.O_RDWR | os.O_CLOEXEC)
    finally:
        os.unlink(node)


def attach_tap(ipr: Any, link: Link, tapname: str) -> int:
    fd = open_private_node("tun", 10, 200)
    try:
        ifr = struct.pack("16sH22x", tapname.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
        tap = ipr.link_lookup(ifname=tapname)[0]
        ipr.link("set", index=tap, state="up", mtu=link.record["mtu"])
        for src, dst in ((link.index, tap), (tap, link.index)):
            try:
                ipr.tc("add", "ingress", index=src)
            except Exception as e:  # noqa: BLE001
                if getattr(e, "code", None) != errno.EEXIST:
                    raise
            ipr.tc("add-filter", "u32", index=src, parent=TC_INGRESS, protocol=ETH_P_ALL, target=0x10000,
                   keys=["0x0/0x0+0"],
                   action={"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": dst})
        ipr.link("set", index=link.index, state="up")
    except BaseException:
        os.close(fd)
        raise
    return fd


def iproute_class() -> Any:
    """pyroute2's IPRoute without running the package's __init__, which imports NDB, the CLI, IPDB and ~40 netlink
    families (~0.2 s on every container start). Its submodules import each other by absolute name, so a bare
    package object with the right __path__ serves them; a pyroute2 already imported is used as is."""
    import sys

    if "pyroute2" not in sys.modules:
        import importlib.util
        import types

        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.submodule_search_locations:
            pkg = types.ModuleType("pyroute2")
            pkg.__path__ = list(spec.submodule_search_locations)
            sys.modules["pyroute2"] = pkg
    from pyroute2.iproute.linux import IPRoute

    return IPRoute


def load_macvtap() -> None:
    """Make the kernel register macvtap (autoloads the module): a throwaway macvtap on a throwaway dummy link."""
    IPRoute = iproute_class()

    name = f"runqprobe{os.getpid() % 100000}"
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="dummy")
        try:
            parent = ipr.link_lookup(ifname=name)[0]
            ipr.link("add", ifname=name + "t", kind="macvtap", link=parent)
        finally:
            _delete(ipr, name + "t")
            _delete(ipr, name)


def setup(mode: str = "auto", before: Any = None) -> tuple[list[dict], list[int]]:
    """Take over the current namespace's links: (guest NIC records, device fds for QEMU), in the same order.

    `before(records)` runs after the links are recorded and before they lose their addresses (resolv.conf).
    """
    IPRoute = iproute_class()

    with IPRoute() as ipr:
        links = inspect(ipr)
        if before is not None:
            before([lk.record for lk in links])
        if not links:
            return [], []
        fds = take_over(ipr, links, mode)
    return [lk.record for lk in links], fds

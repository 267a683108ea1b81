"""Networking logic without a kernel: netlink records, rtnetlink messages, resolv.conf, DNS framing, QEMU NICs."""

from __future__ import annotations

import struct

import pytest

from runq import bundle
from runq import channel as ch
from runq.config import DNSConfig
from runq.guest import dns as gdns
from runq.guest import network as gnet
from runq.proxy import dns as pdns
from runq.proxy import network as pnet
from runq.proxy.network import NetworkError
from runq.proxy.qemu import qemu_argv

from .test_qemu_argv import vm as make_vm


class Msg(dict):
    """Stand-in for a pyroute2 message: dict fields plus get_attr()."""

    def __init__(self, attrs=None, **fields):
        super().__init__(fields)
        self.attrs = attrs or {}

    def get_attr(self, name):
        return self.attrs.get(name)


def route(family=2, dst=None, dst_len=0, gw=None, oif=7, table=254, proto=3, rtype=1, scope=0, metric=None):
    return Msg({"RTA_DST": dst, "RTA_GATEWAY": gw, "RTA_OIF": oif, "RTA_TABLE": table, "RTA_PRIORITY": metric},
               family=family, dst_len=dst_len, table=table, proto=proto, type=rtype, scope=scope)


def test_addresses_keep_ipv4_and_global_ipv6_but_not_link_local():
    msgs = [Msg({"IFA_ADDRESS": "172.18.0.2", "IFA_LOCAL": "172.18.0.2"}, family=2, prefixlen=16, scope=0),
            Msg({"IFA_ADDRESS": "fd00::2"}, family=10, prefixlen=64, scope=0),
            Msg({"IFA_ADDRESS": "fe80::42:acff:fe12:2"}, family=10, prefixlen=64, scope=253)]
    assert pnet.addr_records(msgs) == [(2, "172.18.0.2", 16), (10, "fd00::2", 64)]


def test_routes_all_of_the_links_main_table_without_kernel_routes_default_last():
    msgs = [route(dst=None, gw="172.18.0.1"),                        # default
            route(dst="172.18.0.0", dst_len=16, proto=2, scope=253),  # kernel: from the address
            route(dst="10.1.0.0", dst_len=16, gw="172.18.0.5", metric=100),
            route(dst="192.168.5.0", dst_len=24, scope=253),
            route(dst="10.9.0.0", dst_len=16, gw="172.18.0.9", oif=8),  # another link
            route(dst="172.18.0.2", dst_len=32, table=255, rtype=2),  # local table
            route(family=10, dst=None, gw="fd00::1", metric=1024)]
    assert pnet.route_records(msgs, 7) == [
        (2, "192.168.5.0", 24, "", 253, 0),
        (2, "10.1.0.0", 16, "172.18.0.5", 0, 100),
        (2, "", 0, "172.18.0.1", 0, 0),
        (10, "", 0, "fd00::1", 0, 1024),
    ]


def test_random_mac_is_unicast_and_locally_administered():
    b = int(pnet.random_mac().split(":")[0], 16)
    assert b & 1 == 0 and b & 2 == 2


def test_qemu_gets_one_virtio_net_per_nic_with_dockers_mac():
    vm = make_vm()
    argv = " ".join(qemu_argv(vm, nics=[(5, "02:42:ac:11:00:02"), (6, "02:42:ac:12:00:03")]))
    assert "-netdev tap,id=net0,fd=5 -device virtio-net-device,netdev=net0,mac=02:42:ac:11:00:02" in argv
    assert "-netdev tap,id=net1,fd=6 -device virtio-net-device,netdev=net1,mac=02:42:ac:12:00:03" in argv
    assert "-netdev" not in " ".join(qemu_argv(vm))


def test_own_netns_only_for_a_namespace_without_path():
    assert bundle.own_netns({"namespaces": [{"type": "pid"}, {"type": "network"}]})
    assert not bundle.own_netns({"namespaces": [{"type": "pid"}]})  # --network host
    assert not bundle.own_netns({"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}]})


def test_macvtap_major_read_from_proc_devices(tmp_path):
    p = tmp_path / "devices"
    p.write_text("Character devices:\n  1 mem\n246 macvtap\n\nBlock devices:\n  7 loop\n")
    assert bundle._char_major(str(p), "macvtap") == 246
    assert bundle._char_major(str(p), "loop") == 0


def test_guest_config_carries_networks_through_the_channel():
    nic = {"name": "eth0", "mac": "02:42:ac:11:00:02", "mtu": 1500, "ipv6": False,
           "addrs": [(2, "172.17.0.2", 16)], "routes": [(2, "", 0, "172.17.0.1", 0, 0)]}
    cfg = ch.GuestConfig(args=["true"], env=[])
    cfg2 = cfg.replace(networks=[nic])
    assert cfg.networks == [] and cfg2.networks == [nic] and cfg2.args == ["true"]
    assert ch.Config.parse(ch.Config(cfg2).payload()).config.networks == [nic]


@pytest.mark.parametrize("msg", [ch.DnsQuery(7, "udp", b"\x12\x34q"), ch.DnsQuery(2**32 - 1, "tcp", b""),
                                 ch.DnsAnswer(9, b"answer")])
def test_dns_messages_round_trip(msg):
    assert list(ch.Decoder().feed(msg.encode())) == [msg]


# --- guest rtnetlink builders ---------------------------------------------------------------------------------

def _parse_one(raw):
    [(kind, flags, seq, body)] = gnet.parse_messages(raw)
    return kind, flags, seq, body


def test_link_message_renames_sets_mtu_and_up():
    kind, flags, seq, body = _parse_one(gnet.link_msg(3, 5, name="eth0", mtu=1450, up=True))
    assert (kind, seq) == (gnet.RTM_NEWLINK, 3) and flags & gnet.NLM_F_ACK
    _, _, index, ifflags, change = gnet.IFINFOMSG.unpack_from(body)
    assert (index, ifflags, change) == (5, gnet.IFF_UP, gnet.IFF_UP)
    attrs = gnet.parse_attrs(body[gnet.IFINFOMSG.size:])
    assert attrs[gnet.IFLA_IFNAME] == b"eth0\0" and struct.unpack("=I", attrs[gnet.IFLA_MTU]) == (1450,)


def test_ipv4_address_message_has_local_and_broadcast():
    _, _, _, body = _parse_one(gnet.addr_msg(1, 4, 2, "172.18.0.2", 16))
    family, prefixlen, flags, _, index = gnet.IFADDRMSG.unpack_from(body)
    assert (family, prefixlen, index) == (2, 16, 4)
    attrs = gnet.parse_attrs(body[gnet.IFADDRMSG.size:])
    assert attrs[gnet.IFA_LOCAL] == bytes([172, 18, 0, 2]) == attrs[gnet.IFA_ADDRESS]
    assert attrs[gnet.IFA_BROADCAST] == bytes([172, 18, 255, 255])
    assert gnet.broadcast("10.0.0.9", 24) == "10.0.0.255"


def test_ipv6_address_message_skips_duplicate_address_detection():
    _, _, _, body = _parse_one(gnet.addr_msg(1, 4, 10, "fd00::2", 64))
    family, prefixlen, flags, _, _ = gnet.IFADDRMSG.unpack_from(body)
    assert (family, prefixlen, flags & gnet.IFA_F_NODAD) == (10, 64, gnet.IFA_F_NODAD)


def test_route_message_default_via_gateway_and_metric():
    _, _, _, body = _parse_one(gnet.route_msg(2, 4, (2, "", 0, "172.18.0.1", 0, 100)))
    family, dst_len, _, _, table, proto, scope, rtype, _ = gnet.RTMSG.unpack_from(body)
    assert (family, dst_len, table, scope, rtype) == (2, 0, 254, 0, 1)
    attrs = gnet.parse_attrs(body[gnet.RTMSG.size:])
    assert gnet.RTA_DST not in attrs and attrs[gnet.RTA_GATEWAY] == bytes([172, 18, 0, 1])
    assert struct.unpack("=i", attrs[gnet.RTA_OIF]) == (4,) and struct.unpack("=I", attrs[gnet.RTA_PRIORITY]) == (100,)


def test_routes_of_all_nics_defaults_last():
    recs = [{"name": "eth0", "routes": [(2, "", 0, "172.17.0.1", 0, 0)]},
            {"name": "eth1", "routes": [(2, "10.5.0.0", 16, "172.18.0.7", 0, 0), (2, "192.168.0.0", 24, "", 253, 0)]}]
    assert [(n, r[1]) for n, r in gnet.route_order(recs)] == [("eth1", "192.168.0.0"), ("eth1", "10.5.0.0"),
                                                              ("eth0", "")]


def test_parse_link_reads_name_and_mac():
    body = gnet.IFINFOMSG.pack(0, 1, 3, 0, 0) + gnet.rtattr(gnet.IFLA_IFNAME, b"eth0\0") + \
        gnet.rtattr(gnet.IFLA_ADDRESS, bytes.fromhex("0242ac110002"))
    assert gnet.parse_link(body) == (3, 1, "eth0", "02:42:ac:11:00:02")


# --- DNS ------------------------------------------------------------------------------------------------------

def test_resolv_conf_generated_from_runq_settings():
    assert pdns.resolv_conf(["1.1.1.1", "fd00::53"], ["ndots:2", "timeout:1"], ["a.example", "b.example"]) == (
        "# Generated by runq\nnameserver 1.1.1.1\nnameserver fd00::53\nsearch a.example b.example\n"
        "options ndots:2 timeout:1\n")
    assert pdns.resolv_conf([], [], []) == "# Generated by runq\n"


def test_dns_server_names_must_resolve_into_the_containers_networks():
    recs = [{"addrs": [(2, "172.18.0.2", 16)]}]
    assert pdns.resolve_servers(["9.9.9.9", "dnsproxy"], recs, lambda n: ["10.0.0.1", "172.18.0.5"]) == \
        ["9.9.9.9", "172.18.0.5"]
    with pytest.raises(NetworkError, match="dns server 'elsewhere': resolves to 10.0.0.1, not an address"):
        pdns.resolve_servers(["elsewhere"], recs, lambda n: ["10.0.0.1"])


def test_preserve_keeps_dockers_resolv_conf(tmp_path):
    f = tmp_path / "resolv.conf"
    f.write_text("nameserver 127.0.0.11\n")
    assert not pdns.write_resolv_conf(DNSConfig(("1.1.1.1",), (), (), True), [], str(f))
    assert pdns.write_resolv_conf(DNSConfig(("1.1.1.1",), (), ("x",), False), [], str(f))
    assert f.read_text() == "# Generated by runq\nnameserver 1.1.1.1\nsearch x\n"


def test_embedded_dns_detected_only_as_a_nameserver_line():
    assert gdns.uses_embedded_dns("search x\nnameserver 127.0.0.11\noptions ndots:0\n")
    assert not gdns.uses_embedded_dns("# nameserver 127.0.0.11\nnameserver 127.0.0.1\n")


def test_tcp_dns_framing_splits_complete_messages_and_keeps_the_rest():
    data = gdns.frame(b"one") + gdns.frame(b"") + gdns.frame(b"three")[:4]
    assert gdns.split_frames(data) == ([b"one", b""], b"\x00\x05th")
    assert gdns.split_frames(b"\x00") == ([], b"\x00")


def test_unsent_tcp_counts_queued_data_and_closing_sockets():
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    idle = "   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"
    queued = "   1: 0200000A:1389 0300000A:C350 01 0001F000:00000000 01:00000014 00000000     0        0 2\n"
    fin = "   2: 0200000A:1389 0300000A:C351 04 00000000:00000000 01:00000014 00000000     0        0 3\n"
    assert gnet.unsent_tcp([head + idle]) == 0
    assert gnet.unsent_tcp([head + idle + queued, head + fin]) == 2

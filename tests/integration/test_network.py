"""Networking in the VM: Docker's networks, ports, links, DNS (embedded server included), macvlan, no leaks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid

import pytest

from .conftest import IMAGE, RUNTIME


def sh(*argv: str, timeout: int = 180, check: bool = False) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {p.returncode}: {p.stderr.strip()}")
    return p


class Net:
    """Containers (runq-net-*), networks and host links made by one test; all removed afterwards."""

    def __init__(self) -> None:
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.links: list[str] = []

    def name(self, prefix: str = "runq-net-") -> str:
        n = prefix + uuid.uuid4().hex[:8]
        self.containers.append(n)
        return n

    def network(self, *opts: str) -> str:
        n = "runq-net-" + uuid.uuid4().hex[:8]
        sh("docker", "network", "create", *opts, n, check=True)
        self.networks.append(n)
        return n

    def run(self, *args: str, opts: tuple[str, ...] = (), name: str | None = None, runtime: str = RUNTIME,
            timeout: int = 180) -> subprocess.CompletedProcess:
        name = name or self.name()
        return sh("docker", "run", "--rm", "--runtime", runtime, "--name", name, *opts, IMAGE, *args,
                  timeout=timeout)

    def detached(self, *args: str, opts: tuple[str, ...] = (), name: str | None = None,
                 runtime: str = RUNTIME) -> str:
        name = name or self.name()
        sh("docker", "run", "-d", "--runtime", runtime, "--name", name, *opts, IMAGE, *args, check=True)
        return name

    def wait_exec_ready(self, name: str, timeout: float = 120) -> None:
        """A detached container is ready when its workload wrote /tmp/ready... not visible from here: poll logs."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if "ready" in sh("docker", "logs", name).stdout:
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} did not get ready: {sh('docker', 'logs', name).stderr}")

    def cleanup(self) -> None:
        if self.containers:
            sh("docker", "rm", "-f", *self.containers)
        for n in self.networks:
            sh("docker", "network", "rm", n)
        for link in self.links:
            sh("ip", "link", "del", link)


@pytest.fixture
def net():
    n = Net()
    yield n
    n.cleanup()


def inspect(name: str) -> dict:
    return json.loads(sh("docker", "inspect", name, check=True).stdout)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_links() -> list[str]:
    return sorted(line.split(":")[1].strip().split("@")[0] for line in sh("ip", "-o", "link").stdout.splitlines())


# busybox wget in the test image crashes (with runc too); nc speaks HTTP/1.0 well enough.
FETCH = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 10 {host} 80"
SERVE = "mkdir -p /www && echo hello-from-the-vm > /www/index.html && httpd -p 80 -h /www && echo ready && sleep 600"


# ---------------------------------------------------------------------------------------------------------------


def fetch_from_host(port: int) -> bytes:
    """GET /index.html from 127.0.0.1:port, retrying while the guest's server comes up."""
    body = b""
    for _ in range(30):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                while chunk := s.recv(4096):
                    body += chunk
            if b"hello-from-the-vm" in body:
                break
        except OSError:
            pass
        time.sleep(1)
    return body


@pytest.mark.parametrize("mode", ["auto", "tap"])  # tap: the tap + tc mirred path used where macvtap is missing
def test_published_port_is_answered_by_a_server_in_the_guest(net, mode):
    port = free_port()
    name = net.detached("sh", "-c", SERVE, opts=("-p", f"127.0.0.1:{port}:80", "-e", f"RUNQ_NET_MODE={mode}"))
    net.wait_exec_ready(name)
    assert b"hello-from-the-vm" in fetch_from_host(port)


def test_publish_all_exposed_ports(net):
    name = net.detached("sh", "-c", SERVE, opts=("-P", "--expose", "80"))
    net.wait_exec_ready(name)
    mapping = sh("docker", "port", name, "80/tcp", check=True).stdout.split()[0]  # e.g. 0.0.0.0:49153
    assert b"hello-from-the-vm" in fetch_from_host(int(mapping.rsplit(":", 1)[1]))


def test_guest_nic_has_dockers_name_mac_address_mtu_and_routes(net):
    nw = net.network("--subnet", "10.251.0.0/24", "--gateway", "10.251.0.1", "-o",
                     "com.docker.network.driver.mtu=1400")
    name = net.detached("sh", "-c", "cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu; "
                        "ip -4 -o addr show eth0; ip route; echo links $(ls /sys/class/net); echo ready; sleep 600",
                        opts=("--network", nw, "--ip", "10.251.0.77"))
    net.wait_exec_ready(name)
    out = sh("docker", "logs", name).stdout
    lines = out.splitlines()
    assert lines[0] == inspect(name)["NetworkSettings"]["Networks"][nw]["MacAddress"] and lines[1] == "1400"
    assert "inet 10.251.0.77/24" in lines[2]
    assert "default via 10.251.0.1 dev eth0" in out
    assert "links eth0 lo" in out


def test_network_none_gives_only_lo(net):
    p = net.run("ls", "/sys/class/net", opts=("--network", "none"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["lo"]


def test_two_networks_connected_before_start_become_eth0_and_eth1_matched_by_mac(net):
    a = net.network("--subnet", "10.252.1.0/24")
    b = net.network("--subnet", "10.252.2.0/24")
    name = net.name()
    sh("docker", "create", "--runtime", RUNTIME, "--name", name, "--network", a, IMAGE, "sh", "-c",
       "for i in eth0 eth1; do echo $i $(cat /sys/class/net/$i/address) $(ip -4 -o addr show $i | "
       "awk '{print $4}'); done; echo ready; sleep 600", check=True)
    sh("docker", "network", "connect", b, name, check=True)
    sh("docker", "start", name, check=True)
    net.wait_exec_ready(name)
    nets = inspect(name)["NetworkSettings"]["Networks"]
    out = sh("docker", "logs", name).stdout
    got = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("eth")}
    # The names runc would use are the veth names Docker gave in the container's namespace (they stay there).
    pid = str(inspect(name)["State"]["Pid"])
    names = {}
    for line in sh("nsenter", "-t", pid, "-n", "ip", "-o", "link", check=True).stdout.splitlines():
        words = line.split()
        if words[1].startswith("eth"):
            names[words[1].split("@")[0].rstrip(":")] = words[words.index("link/ether") + 1]
    by_mac = {n["MacAddress"]: f"{n['IPAddress']}/24" for n in (nets[a], nets[b])}
    assert sorted(names) == ["eth0", "eth1"]
    assert got == {ifname: [mac, by_mac[mac]] for ifname, mac in names.items()}


def test_runq_containers_on_a_user_network_reach_each_other_by_name(net):
    nw = net.network()
    server = net.detached("sh", "-c", SERVE, opts=("--network", nw, "--network-alias", "web"))
    net.wait_exec_ready(server)
    p = net.run("sh", "-c", f"cat /etc/resolv.conf; nslookup {server}; ping -c1 -W5 {server} && "
                + FETCH.format(host="web"), opts=("--network", nw))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "nameserver 127.0.0.11" in p.stdout
    ip = inspect(server)["NetworkSettings"]["Networks"][nw]["IPAddress"]
    assert ip in p.stdout and "hello-from-the-vm" in p.stdout


def _dns_query(name: str, qid: int = 0x1234) -> bytes:
    q = struct_pack_header(qid) + b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0\0\1\0\1"
    return q


def struct_pack_header(qid: int) -> bytes:
    import struct
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)


def test_embedded_dns_answers_over_tcp_in_the_guest(net):
    nw = net.network()
    other = net.detached("sh", "-c", "echo ready; sleep 600", opts=("--network", nw))
    net.wait_exec_ready(other)
    q = _dns_query(other)
    framed = len(q).to_bytes(2, "big") + q
    octal = "".join(f"\\{b:03o}" for b in framed)
    p = net.run("sh", "-c", f"printf '{octal}' | nc -w 5 127.0.0.11 53 | od -An -tx1", opts=("--network", nw))
    assert p.returncode == 0, p.stderr
    ip = inspect(other)["NetworkSettings"]["Networks"][nw]["IPAddress"]
    answer = bytes.fromhex("".join(p.stdout.split()))
    assert answer[2:4] == b"\x12\x34" and bytes(int(x) for x in ip.split(".")) in answer


def test_data_the_workload_sent_before_exiting_reaches_the_peer(net):
    nw = net.network()
    server = net.detached("nc", "-l", "-p", "5001", "-e", "dd", "if=/dev/zero", "bs=65536", "count=80",
                          opts=("--network", nw))
    p = net.run("sh", "-c", f"for i in $(seq 100); do nc {server} 5001 -e sh -c 'wc -c > /tmp/n'; "
                "[ -s /tmp/n ] && [ $(cat /tmp/n) != 0 ] && break; sleep 0.2; done; cat /tmp/n",
                opts=("--network", nw), timeout=120)
    assert p.stdout.strip() == str(80 * 65536), p.stderr


def test_link_makes_the_other_container_reachable_by_alias(net):
    server = net.detached("sh", "-c", SERVE)
    net.wait_exec_ready(server)
    p = net.run("sh", "-c", f"grep -w srv /etc/hosts; {FETCH.format(host='srv')}",
                opts=("--link", f"{server}:srv"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "hello-from-the-vm" in p.stdout


def test_macvlan_pair_reach_each_other(net):
    parent = "runqnetmv" + uuid.uuid4().hex[:4]  # a veth pair (this host's kernel has no dummy links)
    sh("ip", "link", "add", parent, "type", "veth", "peer", "name", parent + "p", check=True)
    net.links.append(parent)
    sh("ip", "link", "set", parent, "up", check=True)
    sh("ip", "link", "set", parent + "p", "up", check=True)
    nw = net.network("-d", "macvlan", "-o", f"parent={parent}", "--subnet", "10.253.7.0/24")
    a = net.detached("sh", "-c", SERVE, opts=("--network", nw, "--ip", "10.253.7.10"))
    net.wait_exec_ready(a)
    p = net.run("sh", "-c", "ping -c1 -W5 10.253.7.10 && " + FETCH.format(host="10.253.7.10"),
                opts=("--network", nw, "--ip", "10.253.7.11"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "hello-from-the-vm" in p.stdout


@pytest.mark.parametrize("env,want", [
    (["RUNQ_DNS=192.0.2.53,192.0.2.54", "RUNQ_DNS_SEARCH=a.example b.example", "RUNQ_DNS_OPTS=ndots:2,timeout:1"],
     "# Generated by runq\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch a.example b.example\n"
     "options ndots:2 timeout:1\n"),
    (["RUNQ_DNS="], "# Generated by runq\n"),
    (["RUNQ_DNS=192.0.2.53", "RUNQ_DNS_PRESERVE=1"], None),
    ([], None),
])
def test_dns_env_variants_produce_the_expected_resolv_conf(net, env, want):
    nw = net.network()
    opts: list[str] = ["--network", nw]
    for e in env:
        opts += ["-e", e]
    p = net.run("cat", "/etc/resolv.conf", opts=tuple(opts))
    assert p.returncode == 0, p.stderr
    if want is None:  # Docker's file
        assert "nameserver 127.0.0.11" in p.stdout and "runq" not in p.stdout
    else:
        assert p.stdout == want


def test_bad_dns_values_fail_at_create_naming_the_field(net):
    p = net.run("true", opts=("-e", "RUNQ_DNS=not valid!"))
    assert p.returncode != 0 and "RUNQ_DNS" in p.stderr and "not valid!" in p.stderr


def test_dns_server_by_name_must_be_on_the_containers_network(net):
    nw = net.network("--subnet", "10.254.3.0/24")
    server = net.detached("sh", "-c", "echo ready; sleep 600", opts=("--network", nw, "--ip", "10.254.3.53"))
    net.wait_exec_ready(server)
    p = net.run("cat", "/etc/resolv.conf", opts=("--network", nw, "-e", f"RUNQ_DNS={server}"))
    assert p.returncode == 0, p.stderr
    assert "nameserver 10.254.3.53" in p.stdout
    p = net.run("true", opts=("--network", nw, "-e", "RUNQ_DNS=no-such-host-here"))
    assert p.returncode != 0 and "no-such-host-here" in p.stderr


def test_no_links_or_device_nodes_leak_after_20_start_stop_cycles(net):
    nw = net.network()
    bridge = "br-" + json.loads(sh("docker", "network", "inspect", nw, check=True).stdout)[0]["Id"][:12]
    before = host_links()
    taps = {f for f in os.listdir("/dev") if f.startswith("tap")}  # the kernel's nodes for macvtaps
    name = net.name()
    sh("docker", "create", "--runtime", RUNTIME, "--name", name, "--network", nw, IMAGE, "sh", "-c",
       "echo ready; exec sleep 600", check=True)
    for _ in range(20):
        sh("docker", "start", name, check=True)
        sh("docker", "stop", "-t", "1", name, check=True, timeout=120)
    # Other containers may come and go meanwhile (their veths): ours are the links on our network's bridge.
    assert sh("ip", "-o", "link", "show", "master", bridge).stdout.strip() == ""
    assert not [n for n in host_links() if n not in before and not n.startswith("veth")]
    assert not [n for n in host_links() if n.startswith("runqtap")]
    assert {f for f in os.listdir("/dev") if f.startswith("tap")} <= taps

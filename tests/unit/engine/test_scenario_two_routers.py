"""Two routers, three hosts, in-memory Ethernet: pings, ARP, TTL expiry, prefix hand-over.

    H1 .10 ─A─ .1 R1 10.255.0.1 ─T─ 10.255.0.2 R2 ─┬ eth1 10.3.0.1 ─C─ H2 10.3.0.20
    (10.0.0.0/24)                                   └ eth2 10.3.0.2 ─C─ H3 10.3.0.30

Segment C is one hub: R2 has two interfaces on the same prefix, and eth1's
address (added first) owns the prefix route. The hosts use 10.3.0.2 as
their gateway, so the return path does not depend on eth1.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from router import Engine, EngineConfig
from router.ipv4.input import Ipv4Config
from tests.netsim import Net

HOST = EngineConfig(ipv4=Ipv4Config(forwarding=False))


def build() -> Net:
    net = Net()
    r1 = net.add("r1", Engine())
    r2 = net.add("r2", Engine())
    hosts = {name: net.add(name, Engine(HOST)) for name in ("h1", "h2", "h3")}
    r1.add_ethernet("eth0", "02:00:00:00:01:00")
    r1.add_ethernet("eth1", "02:00:00:00:01:01")
    r2.add_ethernet("eth0", "02:00:00:00:02:00")
    r2.add_ethernet("eth1", "02:00:00:00:02:01")
    r2.add_ethernet("eth2", "02:00:00:00:02:02")
    for index, host in enumerate(hosts.values(), start=1):
        host.add_ethernet("eth0", f"02:00:00:00:0a:{index:02x}")
    net.segment("A", ("h1", "eth0"), ("r1", "eth0"))
    net.segment("T", ("r1", "eth1"), ("r2", "eth0"))
    net.segment("C", ("r2", "eth1"), ("r2", "eth2"), ("h2", "eth0"), ("h3", "eth0"))
    r1.add_alias("eth0", "10.0.0.1/24")
    r1.add_alias("eth1", "10.255.0.1/30")
    r2.add_alias("eth0", "10.255.0.2/30")
    r2.add_alias("eth1", "10.3.0.1/24")
    r2.add_alias("eth2", "10.3.0.2/24")
    r1.add_route("10.3.0.0/24", gateway="10.255.0.2")
    r2.add_route("10.0.0.0/24", gateway="10.255.0.1")
    hosts["h1"].add_alias("eth0", "10.0.0.10/24")
    hosts["h2"].add_alias("eth0", "10.3.0.20/24")
    hosts["h3"].add_alias("eth0", "10.3.0.30/24")
    hosts["h1"].add_route("0.0.0.0/0", gateway="10.0.0.1")
    hosts["h2"].add_route("0.0.0.0/0", gateway="10.3.0.2")
    hosts["h3"].add_route("0.0.0.0/0", gateway="10.3.0.2")
    net.advance(15.0)  # address conflict detection (RFC 5227) finishes everywhere
    return net


ADDRESS = {"h1": "10.0.0.10", "h2": "10.3.0.20", "h3": "10.3.0.30"}


def ping(net: Net, src: str, dst: str, *, ttl: int = 64, seq: int = 1) -> None:
    datagram = bytes(IP(src=ADDRESS[src], dst=ADDRESS.get(dst, dst), ttl=ttl)
                     / ICMP(id=0x4242, seq=seq) / b"scenario")
    assert net.nodes[src].send_datagram(datagram) == 0
    net.run()


def echo_replies(net: Net, host: str) -> int:
    return net.nodes[host].stats()["icmp"].get("in_type_0", 0)


@pytest.mark.parametrize(("src", "dst"), [("h1", "h2"), ("h1", "h3"), ("h2", "h1"),
                                          ("h3", "h1"), ("h2", "h3")])
def test_hosts_ping_each_other_across_both_routers(src: str, dst: str) -> None:
    net = build()
    ping(net, src, dst)
    assert echo_replies(net, src) == 1
    assert net.nodes[dst].stats()["icmp"]["out_type_0"] == 1


def test_arp_resolves_every_hop_once() -> None:
    net = build()
    ping(net, "h1", "h2")
    ping(net, "h1", "h2", seq=2)
    assert echo_replies(net, "h1") == 2
    requests = [Ether(f) for f in net.segments["T"].frames_from("r1")
                if ARP in Ether(f) and Ether(f)[ARP].op == 1
                and Ether(f)[ARP].psrc != Ether(f)[ARP].pdst and Ether(f)[ARP].psrc != "0.0.0.0"]
    assert [r[ARP].pdst for r in requests] == ["10.255.0.2"]
    r1_arp = {(e.ifname, e.addr) for e in net.nodes["r1"].arp_entries() if e.lladdr}
    assert ("eth1", 0x0AFF0002) in r1_arp and ("eth0", 0x0A00000A) in r1_arp


def test_ttl_expiry_gives_time_exceeded_from_the_right_router() -> None:
    net = build()
    ping(net, "h1", "h2")  # resolve ARP first
    sources = []
    for ttl in (1, 2):
        ping(net, "h1", "h2", ttl=ttl, seq=10 + ttl)
        frames = [Ether(f) for f in net.segments["A"].frames_from("r1")]
        exceeded = [f for f in frames if ICMP in f and f[ICMP].type == 11]
        sources.append(exceeded[-1][IP].src)
    assert sources == ["10.0.0.1", "10.255.0.2"]  # R1's and R2's ingress addresses
    assert net.nodes["h1"].stats()["icmp"]["in_type_11"] == 2


def test_route_through_the_fast_path_after_the_first_packet() -> None:
    net = build()
    for seq in range(5):
        ping(net, "h1", "h3", seq=seq)
    assert echo_replies(net, "h1") == 5
    r1 = net.nodes["r1"]
    assert r1.fastpath is not None and r1.fastpath.hits >= 4


@pytest.mark.parametrize("how", ["delete_alias", "remove_interface"])
def test_removing_the_prefix_owner_hands_the_route_over(how: str) -> None:
    net = build()
    r2 = net.nodes["r2"]
    ping(net, "h1", "h2")
    (before,) = [r for r in r2.routes() if (r.prefix, r.plen) == (0x0A030000, 24)]
    assert before.ifname == "eth1"
    if how == "delete_alias":
        r2.delete_alias("eth1", "10.3.0.1")
    else:
        r2.remove_interface("eth1")
    (after,) = [r for r in r2.routes() if (r.prefix, r.plen) == (0x0A030000, 24)]
    assert after.ifname == "eth2"
    ping(net, "h1", "h2", seq=2)
    ping(net, "h1", "h3", seq=3)
    assert echo_replies(net, "h1") == 3
    last_request = [Ether(f) for f in net.segments["C"].frames_from("r2")
                    if ICMP in Ether(f) and Ether(f)[ICMP].type == 8][-1]
    assert last_request.src == "02:00:00:00:02:02"  # out of eth2 now


def test_removing_the_last_address_of_a_prefix_takes_its_route_and_arp() -> None:
    net = build()
    r2 = net.nodes["r2"]
    ping(net, "h1", "h2")
    r2.delete_alias("eth1", "10.3.0.1")
    r2.delete_alias("eth2", "10.3.0.2")
    assert not [r for r in r2.routes() if (r.prefix, r.plen) == (0x0A030000, 24)]
    assert not [e for e in r2.arp_entries() if e.addr >> 8 == 0x0A0300]
    ping(net, "h1", "h2", seq=2)
    unreachable = [Ether(f) for f in net.segments["T"].frames_from("r2")
                   if ICMP in Ether(f) and Ether(f)[ICMP].type == 3]
    assert unreachable and unreachable[-1][ICMP].code == 0

"""The engine resolves through the data link layer (dlil.c ``dlil_send_arp``,
``dlil_resolve_multi``; issue 11 item 13).

A request for a link-local target (169.254/16) that is not an announcement
goes out on every ARPLL interface with an IPv4 address, each with its own
link address and first IPv4 address as the sender; any other request goes
out on the interface the route names. Multicast next hops are mapped by the
IPv4 attachment's ``resolve_multi`` (224/4 to 01:00:5e) and checked by the
Ethernet family module.
"""

from __future__ import annotations

import ipaddress

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from router import Engine, EngineConfig
from router.arp.config import ArpConfig
from router.contracts import ProtoAttachment
from router.errors import EADDRNOTAVAIL
from router.link.ifnet import AF_INET, IfExtFlags

QUICK = EngineConfig(arp=ArpConfig(probe_num=0, announce_num=0))
MACS = {"eth0": "02:00:00:00:00:10", "eth1": "02:00:00:00:00:11", "eth2": "02:00:00:00:00:12",
        "eth3": "02:00:00:00:00:13"}


def router() -> Engine:
    e = Engine(QUICK)
    for name, mac in MACS.items():
        e.add_ethernet(name, mac)
    e.add_alias("eth0", "169.254.1.1/16")
    e.add_alias("eth1", "10.1.0.1/24")
    e.add_alias("eth1", "10.1.5.1/24")  # not the first: never the fan-out's source
    e.add_alias("eth3", "10.3.0.1/24")
    eth3 = e.interface("eth3")
    assert eth3 is not None
    eth3.eflags &= ~IfExtFlags.ARPLL  # not marked for IPv4LL ARP
    e.tick(1.0)
    e.transmit()
    return e


def arp_requests(e: Engine) -> list[tuple[str, str, str, str, str]]:
    names = {ifp.index: ifp.name for ifp in e.interfaces()}
    out = []
    for ifindex, frame in e.transmit():
        pkt = Ether(frame)
        if ARP in pkt and pkt[ARP].op == 1:
            out.append((names[ifindex], pkt.dst, pkt[ARP].hwsrc, pkt[ARP].psrc, pkt[ARP].pdst))
    return sorted(out)


def ping(src: str, dst: str) -> bytes:
    return bytes(IP(src=src, dst=dst) / ICMP(id=1, seq=1))


def test_resolving_a_link_local_target_asks_on_every_arpll_interface_with_ipv4() -> None:
    e = router()
    e.send_datagram(ping("169.254.1.1", "169.254.10.11"))
    assert arp_requests(e) == [
        ("eth0", "ff:ff:ff:ff:ff:ff", MACS["eth0"], "169.254.1.1", "169.254.10.11"),
        ("eth1", "ff:ff:ff:ff:ff:ff", MACS["eth1"], "10.1.0.1", "169.254.10.11"),
    ]  # eth2 has no IPv4 address, eth3 is not ARPLL


def test_each_retransmission_fans_out_again() -> None:
    e = router()
    e.send_datagram(ping("169.254.1.1", "169.254.10.11"))
    arp_requests(e)
    e.tick(2.5)  # the first retransmission (1 s) is due
    assert [r[0] for r in arp_requests(e)] == ["eth0", "eth1"]


def test_resolving_any_other_target_asks_on_the_route_interface_only() -> None:
    e = router()
    e.send_datagram(ping("10.1.0.1", "10.1.0.9"))
    assert arp_requests(e) == [
        ("eth1", "ff:ff:ff:ff:ff:ff", MACS["eth1"], "10.1.0.1", "10.1.0.9")]


def test_a_link_local_announcement_stays_on_its_interface() -> None:
    e = Engine(EngineConfig(arp=ArpConfig(probe_num=0, announce_num=1)))
    for name, mac in MACS.items():
        e.add_ethernet(name, mac)
    e.add_alias("eth1", "10.1.0.1/24")
    e.tick(1.0)
    e.transmit()
    e.add_alias("eth0", "169.254.1.1/16")
    e.tick(2.0)
    assert arp_requests(e) == [
        ("eth0", "ff:ff:ff:ff:ff:ff", MACS["eth0"], "169.254.1.1", "169.254.1.1")]


def test_the_ipv4_attachment_sends_arp_and_resolves_groups() -> None:
    e = router()
    eth1 = e.interface("eth1")
    assert eth1 is not None
    proto = eth1.protocols[AF_INET]
    assert isinstance(proto, ProtoAttachment)
    assert proto.send_arp is not None and proto.resolve_multi is not None
    group = int(ipaddress.IPv4Address("239.1.2.3"))
    assert e.dl.resolve_multi(eth1, AF_INET, group) == (0, bytes.fromhex("01005e010203"))
    assert e.dl.resolve_multi(eth1, AF_INET, int(ipaddress.IPv4Address("10.1.0.9")))[0] == (
        EADDRNOTAVAIL)


def test_a_datagram_to_a_group_goes_to_its_mapped_mac_through_resolve_multi() -> None:
    e = router()
    e.add_route("239.0.0.0/8", ifname="eth1")
    calls: list[int] = []
    eth1 = e.interface("eth1")
    assert eth1 is not None
    proto = eth1.protocols[AF_INET]
    inner = proto.resolve_multi
    assert inner is not None

    def counting(ifp: object, addr: int) -> tuple[int, bytes]:
        calls.append(addr)
        return inner(ifp, addr)  # type: ignore[arg-type]

    proto.resolve_multi = counting
    e.send_datagram(bytes(IP(src="10.1.0.1", dst="239.1.2.3", ttl=1) / ICMP()))
    frames = [Ether(f) for _, f in e.transmit()]
    assert [(f.dst, f[IP].dst) for f in frames] == [("01:00:5e:01:02:03", "239.1.2.3")]
    assert calls == [int(ipaddress.IPv4Address("239.1.2.3"))]

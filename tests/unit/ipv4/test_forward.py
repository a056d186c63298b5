"""IPv4 forwarding: TTL and checksum, next hops, ICMP errors, MTU, pre-output."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.inet import defragment as scapy_defragment

from router.contracts import Packet, PacketFlags
from router.errors import EHOSTUNREACH, EJUSTRETURN, ENOBUFS
from router.inet.route import RouteFlags
from router.ipv4.fragment import copied_options, fragment
from router.ipv4.input import DropReason, Ipv4, Ipv4Config
from router.link.ifnet import AF_INET, IfFamily, IfFlags
from router.wire import ipv4 as wire_ip
from tests.unit.ipv4.support import Rig, ip, make_if, no_rate_limit


def test_forward_decrements_ttl_and_updates_checksum_like_a_recomputation() -> None:
    rig = Rig()
    original = IP(src="10.0.0.7", dst="10.1.0.9", ttl=17, id=99) / UDP(dport=53) / b"q"
    rig.receive(original)
    (out,) = rig.take()
    expected = original.copy()
    expected.ttl = 16
    del expected.chksum
    assert out.datagram == bytes(expected)
    assert (out.ifname, out.next_hop) == ("eth1", ip("10.1.0.9"))
    assert rig.ipv4.stats.forwarded == 1


def test_next_hop_is_the_gateway_of_a_gateway_route() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="192.168.3.4") / ICMP())
    (out,) = rig.take()
    assert (out.ifname, out.next_hop) == ("eth1", ip("10.1.0.254"))


def test_link_padding_is_not_forwarded() -> None:
    rig = Rig()
    datagram = bytes(IP(src="10.0.0.7", dst="10.1.0.9") / UDP())
    rig.receive_raw(datagram + bytes(18))
    (out,) = rig.take()
    assert len(out.datagram) == len(datagram)


def test_ttl_one_gives_time_exceeded_from_the_ingress_address() -> None:
    rig = Rig()
    probe = IP(src="10.0.0.7", dst="192.168.3.4", ttl=1) / UDP(dport=33434)
    rig.receive(probe)
    (msg,) = rig.take()
    pkt = msg.ip
    assert (pkt.src, pkt.dst) == ("10.0.0.1", "10.0.0.7")
    assert (pkt[ICMP].type, pkt[ICMP].code) == (11, 0)
    assert bytes(pkt[ICMP].payload) == bytes(probe)  # quoted before the decrement
    assert rig.drops() == {"ttl_exceeded": 1}


def test_ttl_zero_also_gives_time_exceeded() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9", ttl=0) / UDP())
    (msg,) = rig.take()
    assert msg.ip[ICMP].type == 11


def test_no_route_gives_net_unreachable() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="172.16.1.1") / UDP())
    (msg,) = rig.take()
    assert (msg.ip[ICMP].type, msg.ip[ICMP].code) == (3, 0)
    assert rig.drops() == {"no_route": 1}


def test_output_host_unreachable_gives_icmp_host_unreachable() -> None:
    rig = Rig(fail={"eth1": EHOSTUNREACH})
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9") / UDP())
    (msg,) = rig.take()
    assert (msg.ifname, msg.ip[ICMP].type, msg.ip[ICMP].code) == ("eth0", 3, 1)
    assert rig.drops() == {"host_unreachable": 1}


def test_arp_give_up_on_held_datagrams_tells_their_sources() -> None:
    rig = Rig()
    held = bytes(IP(src="10.0.0.7", dst="10.1.0.9", ttl=63) / UDP())
    ours = bytes(IP(src="10.1.0.1", dst="10.1.0.9") / ICMP(type=0))
    rig.ipv4.host_unreachable(rig.eth1, [held, ours], 5.0)
    (msg,) = rig.take()
    assert (msg.ip.dst, msg.ip[ICMP].type, msg.ip[ICMP].code) == ("10.0.0.7", 3, 1)
    assert msg.ip.src == "10.0.0.1"  # our address toward the source
    assert rig.drops() == {"host_unreachable": 2}


def test_other_output_errors_are_counted_without_icmp() -> None:
    rig = Rig(output_error=ENOBUFS)
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9") / UDP())
    assert rig.drops()["output_error"] == 1
    assert rig.ipv4.stats.forwarded == 0


@pytest.mark.parametrize("dst", ["127.0.0.1", "169.254.1.1", "0.1.2.3", "240.0.0.1"])
def test_unforwardable_destinations_are_dropped_silently(dst: str) -> None:
    rig = Rig()
    rig.routes.add(0, 0, ifindex=2, gateway=ip("10.1.0.254"), flags=RouteFlags.GATEWAY)
    rig.receive(IP(src="10.0.0.7", dst=dst) / UDP())
    assert rig.take() == []
    assert rig.drops() == {"cannot_forward": 1}


def test_multicast_is_never_forwarded() -> None:
    rig = Rig()
    rig.routes.add(ip("224.0.0.0"), 4, ifindex=2)
    rig.receive(IP(src="10.0.0.7", dst="239.1.1.1") / UDP(), dst_mac="01:00:5e:01:01:01",
                flags=PacketFlags.MCAST)
    assert rig.take() == []
    assert rig.ipv4.stats.forwarded == 0


def test_unicast_in_a_link_broadcast_frame_is_not_forwarded() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9") / UDP(), dst_mac="ff:ff:ff:ff:ff:ff",
                flags=PacketFlags.BCAST)
    assert rig.take() == []
    assert rig.drops() == {"link_broadcast": 1}


def test_directed_broadcast_of_another_link_is_not_forwarded() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.255") / UDP())
    assert rig.take() == []
    assert rig.drops() == {"directed_broadcast": 1}


def test_broadcast_of_the_receiving_link_is_delivered_not_forwarded() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.255") / UDP())
    assert rig.ipv4.stats.delivered == 1
    assert rig.ipv4.stats.forwarded == 0


def test_source_zero_is_not_forwarded() -> None:
    rig = Rig()
    rig.receive(IP(src="0.0.0.0", dst="10.1.0.9") / UDP())
    assert rig.take() == []
    assert rig.drops() == {"bad_source": 1}


def test_forwarding_off_drops() -> None:
    rig = Rig(config=Ipv4Config(forwarding=False))
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9") / UDP())
    assert rig.take() == []
    assert rig.drops() == {"forwarding_off": 1}


def test_reject_route_gives_host_unreachable_and_blackhole_is_silent() -> None:
    rig = Rig()
    rig.routes.add(ip("172.16.0.0"), 16, ifindex=2, flags=RouteFlags.REJECT)
    rig.routes.add(ip("172.17.0.0"), 16, ifindex=2, flags=RouteFlags.BLACKHOLE)
    rig.receive(IP(src="10.0.0.7", dst="172.16.0.1") / UDP())
    (msg,) = rig.take()
    assert (msg.ip[ICMP].type, msg.ip[ICMP].code) == (3, 1)
    rig.receive(IP(src="10.0.0.7", dst="172.17.0.1") / UDP())
    assert rig.take() == []
    assert rig.drops() == {"reject_route": 1, "blackhole_route": 1}


def test_route_over_a_down_interface_gives_host_unreachable() -> None:
    rig = Rig()
    rig.eth1.flags &= ~IfFlags.UP
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9") / UDP())
    (msg,) = rig.take()
    assert (msg.ip[ICMP].type, msg.ip[ICMP].code) == (3, 1)
    assert rig.drops() == {"interface_down": 1}


def test_too_big_with_df_gets_frag_needed_with_the_mtu() -> None:
    rig = Rig()
    rig.eth1.mtu = 576
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9", flags="DF") / UDP() / (b"x" * 1000))
    (msg,) = rig.take()
    icmp = msg.ip[ICMP]
    assert (icmp.type, icmp.code, icmp.nexthopmtu) == (3, 4, 576)
    assert rig.drops() == {"too_big": 1}


def test_too_big_without_df_is_fragmented_and_reassembles() -> None:
    rig = Rig()
    rig.eth1.mtu = 576
    original = IP(src="10.0.0.7", dst="10.1.0.9", id=4242, ttl=9) / UDP() / (bytes(range(256)) * 5)
    rig.receive(original)
    sent = rig.take()
    assert len(sent) == 3
    assert all(len(s.datagram) <= 576 for s in sent)
    whole = scapy_defragment([IP(s.datagram) for s in sent])
    assert len(whole) == 1
    expected = original.copy()
    expected.ttl = 8
    del expected.chksum
    assert bytes(whole[0][UDP]) == bytes(expected[UDP])
    assert rig.ipv4.stats.fragments_out == 3


def test_mtu_too_small_for_eight_bytes_cannot_fragment() -> None:
    rig = Rig()
    rig.eth1.mtu = 24
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9") / UDP() / (b"x" * 40))
    assert rig.take() == []
    assert rig.drops() == {"cannot_fragment": 1}


def test_fragment_of_a_fragment_keeps_offset_and_more_fragments() -> None:
    datagram = bytes(IP(src="1.1.1.1", dst="2.2.2.2", flags="MF", frag=10) / (b"y" * 64))
    hdr = wire_ip.parse(datagram)
    pieces = [IP(p) for p in fragment(datagram, hdr, 20 + 32)]
    assert [p.frag for p in pieces] == [10, 14]
    assert all(p.flags.MF for p in pieces)


def test_later_fragments_carry_only_copied_options() -> None:
    options = bytes(IP(options=[IPOption_RR(), IPOption_NOP(),
                                IPOption_NOP(), IPOption_NOP()]))[20:]
    assert copied_options(options) == b""
    security = b"\x82\x0b" + bytes(9) + b"\x01"  # copied flag set, then a NOP
    assert copied_options(security) == b"\x82\x0b" + bytes(9) + b"\x00"


def test_pre_output_broadcast_multicast_arp_and_point_to_point() -> None:
    rig = Rig()
    calls: list[tuple[str, int, float]] = []

    def resolve(ifp: object, hop: int, datagram: bytes, now: float) -> tuple[int, bytes]:
        calls.append((getattr(ifp, "name", ""), hop, now))
        return (0, b"\x02" * 6) if hop == ip("10.1.0.9") else (EJUSTRETURN, b"")

    rig.ipv4.resolve = resolve
    rig.ipv4.now = 3.5
    pkt = Packet(bytes(IP(dst="10.1.0.9")))
    eth1 = rig.eth1
    assert rig.ipv4.pre_output(eth1, AF_INET, pkt, ip("10.1.0.255")) == (0, b"\xff" * 6, 0x800)
    assert rig.ipv4.pre_output(eth1, AF_INET, pkt, ip("224.0.0.251"))[1] == bytes.fromhex(
        "01005e0000fb")
    assert rig.ipv4.pre_output(eth1, AF_INET, pkt, ip("10.1.0.9")) == (0, b"\x02" * 6, 0x800)
    assert rig.ipv4.pre_output(eth1, AF_INET, pkt, ip("10.1.0.8"))[0] == EJUSTRETURN
    assert rig.ipv4.pre_output(eth1, AF_INET, pkt, b"\x04" * 6) == (0, b"\x04" * 6, 0x800)
    assert calls == [("eth1", ip("10.1.0.9"), 3.5), ("eth1", ip("10.1.0.8"), 3.5)]
    ng = make_if("ng0", 3, "00:00:00:00:00:00", flags=IfFlags.UP | IfFlags.POINTOPOINT)
    ng.family = IfFamily.NETGRAPH
    assert rig.ipv4.pre_output(ng, AF_INET, pkt, ip("10.9.9.9")) == (0, b"", AF_INET)


def test_default_resolve_without_arp_is_host_unreachable() -> None:
    rig = Rig()
    ipv4 = Ipv4(routes=rig.routes, inet=rig.inet, interface_of=rig.ifs.get, output=rig._output)
    pkt = Packet(bytes(IP(dst="10.1.0.9")))
    assert ipv4.pre_output(rig.eth1, AF_INET, pkt, ip("10.1.0.9"))[0] == EHOSTUNREACH


def test_proto_input_feeds_each_packet_with_the_batch_time() -> None:
    rig = Rig(config=no_rate_limit())
    frames = [b"\x00" * 14 + bytes(IP(src="10.0.0.7", dst="10.1.0.9", ttl=1) / UDP())] * 3
    rig.ipv4.now = 1.0
    rig.ipv4.proto_input(rig.eth0, AF_INET, [Packet(f, 14) for f in frames])
    assert len(rig.take()) == 3
    assert rig.ipv4.stats.drops[DropReason.TTL_EXCEEDED] == 3

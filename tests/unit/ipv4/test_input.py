"""IPv4 input: header checks as counted drops, padding, martians, local delivery."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP

from router.contracts import PacketFlags
from router.ipv4.icmp import IcmpConfig
from router.ipv4.input import DropReason, Ipv4Config
from tests.unit.ipv4.support import Rig, ip


def good() -> bytes:
    return bytes(IP(src="10.0.0.7", dst="10.0.0.1") / ICMP(id=1, seq=1) / b"abcdefgh")


def corrupt(offset: int, value: int, data: bytes | None = None) -> bytes:
    raw = bytearray(data or good())
    raw[offset] = value
    return bytes(raw)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (good()[:19], DropReason.SHORT),
        (corrupt(0, 0x65), DropReason.BAD_VERSION),
        (corrupt(0, 0x44), DropReason.BAD_IHL),
        (bytes(IP(src="10.0.0.7", dst="10.0.0.1", len=12)), DropReason.LENGTH_BELOW_HEADER),
        (good()[:-1], DropReason.LENGTH_BEYOND_BUFFER),
        (corrupt(10, 0), DropReason.BAD_CHECKSUM),
    ],
)
def test_header_failures_are_counted_by_reason_never_raised(
    datagram: bytes, reason: DropReason
) -> None:
    rig = Rig()
    rig.receive_raw(datagram)
    assert rig.ipv4.stats.drops[reason] == 1
    assert rig.ipv4.stats.received == 1
    assert rig.ipv4.stats.delivered == 0
    assert rig.take() == []


def test_link_padding_is_trimmed_before_delivery() -> None:
    rig = Rig()
    rig.receive_raw(good() + bytes(10))
    (reply,) = rig.take()
    assert len(reply.datagram) == len(good())
    assert reply.ip[ICMP].load == b"abcdefgh"


def test_echo_request_to_our_address_gets_echo_reply_from_that_address() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.1", tos=0x10) / ICMP(id=7, seq=3) / b"data")
    (reply,) = rig.take()
    pkt = reply.ip
    assert (pkt.src, pkt.dst, pkt.ttl, pkt.tos) == ("10.1.0.1", "10.0.0.7", 64, 0x10)
    assert (pkt[ICMP].type, pkt[ICMP].id, pkt[ICMP].seq, pkt[ICMP].load) == (0, 7, 3, b"data")
    assert reply.ifname == "eth0" and reply.next_hop == ip("10.0.0.7")
    assert rig.ipv4.stats.delivered == 1
    assert rig.ipv4.icmp.stats.in_by_type == {8: 1}
    assert rig.ipv4.icmp.stats.out_by_type == {0: 1}


def test_echo_to_broadcast_is_ignored_by_default() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.255") / ICMP(), dst_mac="ff:ff:ff:ff:ff:ff",
                flags=PacketFlags.BCAST)
    assert rig.take() == []
    assert rig.ipv4.icmp.stats.echo_ignored == 1


def test_echo_to_broadcast_is_answered_from_interface_address_when_enabled() -> None:
    rig = Rig(config=Ipv4Config(icmp=IcmpConfig(echo_ignore_broadcasts=False)))
    rig.receive(IP(src="10.0.0.7", dst="255.255.255.255") / ICMP(), flags=PacketFlags.BCAST)
    (reply,) = rig.take()
    assert reply.ip.src == "10.0.0.1"


def test_echo_ignore_all_answers_nothing() -> None:
    rig = Rig(config=Ipv4Config(icmp=IcmpConfig(echo_ignore_all=True)))
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.1") / ICMP())
    assert rig.take() == []


def test_udp_to_us_gets_port_unreachable_quoting_the_datagram() -> None:
    rig = Rig()
    probe = IP(src="10.0.0.7", dst="10.0.0.1") / UDP(sport=5000, dport=33434) / b"x"
    rig.receive(probe)
    (msg,) = rig.take()
    icmp = msg.ip[ICMP]
    assert (icmp.type, icmp.code) == (3, 3)
    assert bytes(icmp.payload) == bytes(probe)


def test_other_protocol_to_us_gets_protocol_unreachable() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.1", proto=47) / b"gre!")
    (msg,) = rig.take()
    assert (msg.ip[ICMP].type, msg.ip[ICMP].code) == (3, 2)


def test_udp_to_broadcast_gets_no_port_unreachable() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.255") / UDP(dport=9), flags=PacketFlags.BCAST)
    assert rig.take() == []
    assert rig.ipv4.stats.delivered == 1


def test_a_lone_fragment_to_us_waits_for_the_rest() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.1", flags="MF") / ICMP())
    assert rig.take() == [] and rig.drops() == {}
    assert rig.ipv4.stats.fragments_in == 1 and len(rig.ipv4.reassembly) == 1


@pytest.mark.parametrize("src", ["224.0.0.5", "255.255.255.255", "127.0.0.1"])
def test_martian_source_is_dropped(src: str) -> None:
    rig = Rig()
    rig.receive(IP(src=src, dst="10.0.0.1") / ICMP())
    assert rig.take() == []
    assert rig.drops() == {"bad_source": 1}


def test_malformed_icmp_for_us_is_counted_not_answered() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.1") / ICMP(chksum=0x1234))
    assert rig.take() == []
    assert rig.ipv4.icmp.stats.in_errors == 1


def test_echo_reply_to_us_is_counted_not_answered() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.1") / ICMP(type=0))
    assert rig.take() == []
    assert rig.ipv4.icmp.stats.in_by_type == {0: 1}


def test_reply_without_route_back_is_dropped_as_no_route() -> None:
    rig = Rig()
    rig.receive(IP(src="172.16.0.9", dst="10.0.0.1") / ICMP())
    assert rig.take() == []
    assert rig.drops() == {"no_route": 1}

"""The Ethernet family module: demux, framer, protocol registration, multicast."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import Dot1Q, Ether  # type: ignore[import-untyped]
from scapy.packet import Raw  # type: ignore[import-untyped]

from router.contracts import DemuxDesc, Packet, PacketFlags
from router.errors import (
    EADDRINUSE,
    EADDRNOTAVAIL,
    EAFNOSUPPORT,
    EINVAL,
    EMSGSIZE,
    ENOENT,
    RouterError,
)
from router.link.ether import (
    BROADCAST_MAC,
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    EthernetFamily,
    ipv4_multicast_mac,
    is_ipv4_multicast,
)
from router.link.ifnet import AF_INET, Interface

MAC = bytes.fromhex("020000000001")
PEER = bytes.fromhex("02000000ffee")
AF_OTHER = 99
ETHER = EthernetFamily()


def _ifp() -> Interface:
    ifp = Interface("eth0", addrlen=6)
    ifp.lladdr = MAC
    ETHER.add_proto(ifp, AF_INET, [DemuxDesc("ethertype", ETHERTYPE_IP),
                                   DemuxDesc("ethertype", ETHERTYPE_ARP)])
    return ifp


def _frame(dst: bytes, ethertype: int = ETHERTYPE_IP, payload: bytes = b"x" * 20) -> bytes:
    return dst + PEER + ethertype.to_bytes(2, "big") + payload


def test_demux_finds_the_family_by_ethertype() -> None:
    ifp = _ifp()
    pkt = Packet(_frame(MAC, ETHERTYPE_ARP))
    assert ETHER.demux(ifp, pkt) == (0, AF_INET)
    assert pkt.l2len == 14 and pkt.flags == PacketFlags.NONE


def test_demux_unknown_ethertype_is_enoent() -> None:
    assert ETHER.demux(_ifp(), Packet(_frame(MAC, 0x88CC))) == (ENOENT, 0)


@pytest.mark.parametrize("length", [0, 1, 13])
def test_demux_frame_shorter_than_a_header_is_emsgsize(length: int) -> None:
    assert ETHER.demux(_ifp(), Packet(_frame(MAC)[:length]))[0] == EMSGSIZE


def test_demux_truncated_vlan_header_is_emsgsize() -> None:
    frame = MAC + PEER + b"\x81\x00\x00\x07"
    assert ETHER.demux(_ifp(), Packet(frame))[0] == EMSGSIZE


def test_demux_vlan_frame_is_tagged_and_classified_by_inner_ethertype() -> None:
    tagged = Ether(dst=MAC, src=PEER) / Dot1Q(vlan=42, type=ETHERTYPE_IP)
    frame = bytes(tagged / Raw(b"\x45" + b"\0" * 19))
    assert frame[16:18] == b"\x08\x00"
    pkt = Packet(frame)
    assert ETHER.demux(_ifp(), pkt) == (0, AF_INET)
    assert pkt.flags & PacketFlags.VLAN_TAGGED
    assert (pkt.l2len, pkt.vlan) == (18, 42)


def test_demux_marks_broadcast() -> None:
    pkt = Packet(_frame(BROADCAST_MAC))
    ETHER.demux(_ifp(), pkt)
    assert pkt.flags == PacketFlags.BCAST


def test_demux_marks_multicast_by_the_group_bit() -> None:
    pkt = Packet(_frame(bytes.fromhex("01005e000001")))
    ETHER.demux(_ifp(), pkt)
    assert pkt.flags == PacketFlags.MCAST


def test_demux_marks_unicast_to_someone_else_promiscuous() -> None:
    pkt = Packet(_frame(PEER))
    assert ETHER.demux(_ifp(), pkt) == (0, AF_INET)
    assert pkt.flags == PacketFlags.PROMISC


def test_framer_prepends_destination_source_and_ethertype() -> None:
    ifp = _ifp()
    pkt = Packet(b"\x45" + b"\0" * 19)
    assert ETHER.framer(ifp, pkt, PEER, ETHERTYPE_IP) == 0
    expected = bytes(Ether(dst=PEER, src=MAC, type=ETHERTYPE_IP) / Raw(b"\x45" + b"\0" * 19))
    assert bytes(pkt.data) == expected
    assert pkt.l2len == 14 and pkt.flags == PacketFlags.NONE


def test_framer_marks_broadcast_and_multicast_destinations() -> None:
    ifp = _ifp()
    bcast, mcast = Packet(b"a"), Packet(b"b")
    ETHER.framer(ifp, bcast, BROADCAST_MAC, ETHERTYPE_ARP)
    ETHER.framer(ifp, mcast, ipv4_multicast_mac(0xE0000005), ETHERTYPE_IP)
    assert bcast.flags == PacketFlags.BCAST and mcast.flags == PacketFlags.MCAST


@pytest.mark.parametrize(("lldst", "frame_type"), [(b"\x01\x02", 0x800), (PEER, 0x10000),
                                                   (PEER, -1)])
def test_framer_refuses_a_bad_destination_or_type(lldst: bytes, frame_type: int) -> None:
    pkt = Packet(b"x")
    assert ETHER.framer(_ifp(), pkt, lldst, frame_type) == EINVAL
    assert pkt.data == b"x"


def test_add_proto_refuses_empty_or_non_ethertype_descriptors() -> None:
    ifp = Interface("eth0")
    assert ETHER.add_proto(ifp, AF_INET, []) == EINVAL
    assert ETHER.add_proto(ifp, AF_INET, [DemuxDesc("sap", 0xAA)]) == EINVAL
    assert ETHER.add_proto(ifp, AF_INET, [DemuxDesc("ethertype", 0x10000)]) == EINVAL
    assert ifp.demux_table == {}


def test_add_proto_ethertype_owned_by_another_family_is_eaddrinuse() -> None:
    ifp = _ifp()
    descs = [DemuxDesc("ethertype", 0x88B5), DemuxDesc("ethertype", ETHERTYPE_IP)]
    assert ETHER.add_proto(ifp, AF_OTHER, descs) == EADDRINUSE
    assert 0x88B5 not in ifp.demux_table


def test_del_proto_forgets_only_that_family() -> None:
    ifp = _ifp()
    ETHER.add_proto(ifp, AF_OTHER, [DemuxDesc("ethertype", 0x88B5)])
    assert ETHER.del_proto(ifp, AF_INET) == 0
    assert ifp.demux_table == {0x88B5: AF_OTHER}


def test_check_multi_accepts_only_group_link_addresses() -> None:
    ifp = _ifp()
    assert ETHER.check_multi(ifp, bytes.fromhex("01005e000001")) == 0
    assert ETHER.check_multi(ifp, BROADCAST_MAC) == 0
    assert ETHER.check_multi(ifp, MAC) == EADDRNOTAVAIL


def test_check_multi_accepts_ipv4_groups_and_refuses_other_addresses() -> None:
    ifp = _ifp()
    assert ETHER.check_multi(ifp, bytes([224, 0, 0, 251])) == 0
    assert ETHER.check_multi(ifp, bytes([10, 0, 0, 1])) == EADDRNOTAVAIL
    assert ETHER.check_multi(ifp, b"\xff\x02" + b"\0" * 14) == EAFNOSUPPORT


def test_ipv4_multicast_mac_keeps_the_low_23_bits() -> None:
    assert ipv4_multicast_mac(0xE0000001) == bytes.fromhex("01005e000001")
    assert ipv4_multicast_mac(0xEFFFFFFF) == bytes.fromhex("01005e7fffff")
    assert ipv4_multicast_mac(0xE0800001) == ipv4_multicast_mac(0xE0000001)


def test_ipv4_multicast_mac_of_a_unicast_address_is_eaddrnotavail() -> None:
    with pytest.raises(RouterError) as info:
        ipv4_multicast_mac(0x0A000001)
    assert info.value.errno == EADDRNOTAVAIL


@settings(max_examples=300, deadline=None)
@given(group=st.integers(min_value=0xE0000000, max_value=0xEFFFFFFF))
def test_every_ipv4_group_maps_to_a_checked_01005e_address(group: int) -> None:
    mac = ipv4_multicast_mac(group)
    assert mac[:3] == b"\x01\x00\x5e" and not mac[3] & 0x80
    assert int.from_bytes(mac[3:], "big") == group & 0x7FFFFF
    assert is_ipv4_multicast(group) and ETHER.check_multi(_ifp(), mac) == 0


@settings(max_examples=300, deadline=None)
@given(frame=st.binary(max_size=80))
def test_demux_of_any_bytes_returns_a_code_and_never_raises(frame: bytes) -> None:
    pkt = Packet(frame)
    error, family = ETHER.demux(_ifp(), pkt)
    assert error in (0, ENOENT, EMSGSIZE)
    assert family == (AF_INET if error == 0 else 0)
    if error != EMSGSIZE:
        assert pkt.l2len in (14, 18)

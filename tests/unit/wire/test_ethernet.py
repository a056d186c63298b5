"""Ethernet header view against scapy-built frames."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from router.wire import Malformed
from router.wire import ethernet as eth

A = "02:00:00:00:00:01"
B = "02:00:00:00:00:02"
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def test_parse_reads_addresses_type_and_payload_offset() -> None:
    frame = bytes(Ether(dst=B, src=A) / IP())
    hdr = eth.parse(frame)
    assert (hdr.dst, hdr.src, hdr.ethertype) == (MAC_B, MAC_A, eth.ETHERTYPE_IPV4)
    assert hdr.vlan is None
    assert hdr.payload_offset == eth.HEADER_LEN


def test_parse_looks_through_one_vlan_tag() -> None:
    frame = bytes(Ether(dst=B, src=A) / Dot1Q(vlan=42) / ARP())
    hdr = eth.parse(frame)
    assert (hdr.ethertype, hdr.vlan, hdr.payload_offset) == (eth.ETHERTYPE_ARP, 42, 18)


def test_runt_frame_is_malformed_short() -> None:
    with pytest.raises(Malformed) as info:
        eth.parse(b"\x00" * 13)
    assert info.value.reason == eth.SHORT


def test_truncated_vlan_tag_is_malformed_short() -> None:
    with pytest.raises(Malformed, match="short"):
        eth.parse(bytes(Ether(dst=B, src=A, type=eth.ETHERTYPE_VLAN)) + b"\x00\x2a")


def test_emit_equals_scapy_and_pads_to_minimum() -> None:
    payload = bytes(IP(src="10.0.0.1", dst="10.0.0.2"))
    frame = eth.emit(MAC_B, MAC_A, eth.ETHERTYPE_IPV4, payload)
    assert frame == bytes(Ether(dst=B, src=A) / IP(src="10.0.0.1", dst="10.0.0.2"))
    padded = eth.emit(MAC_B, MAC_A, eth.ETHERTYPE_IPV4, payload, pad=True)
    assert len(padded) == eth.MIN_FRAME_LEN
    assert padded[: len(frame)] == frame


def test_header_is_the_first_fourteen_bytes_of_a_frame() -> None:
    assert eth.header(MAC_B, MAC_A, eth.ETHERTYPE_ARP) == bytes(Ether(dst=B, src=A, type=0x806))


def test_group_bit_marks_broadcast_and_multicast() -> None:
    assert eth.is_group(eth.BROADCAST)
    assert eth.is_group(bytes.fromhex("01005e000001"))
    assert not eth.is_group(MAC_A)

"""The ARP header view: parse and emit agree with scapy; bad input is Malformed with a reason."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import ARP, Ether

from router.arp.config import ArpDrop
from router.wire import Malformed
from router.wire import arp as wire
from tests.unit.arp.support import MAC_A, MAC_US, ip, request, text


def test_parse_reads_a_scapy_request() -> None:
    header = wire.parse(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert header.op == wire.OP_REQUEST
    assert header.sha == MAC_A and header.spa == ip("10.0.0.2")
    assert header.tha == b"\x00" * 6 and header.tpa == ip("10.0.0.1")


def test_emit_is_byte_for_byte_what_scapy_builds() -> None:
    ours = wire.emit(wire.OP_REPLY, MAC_US, ip("10.0.0.1"), MAC_A, ip("10.0.0.2"))
    theirs = bytes(ARP(op=2, hwsrc=text(MAC_US), psrc="10.0.0.1", hwdst=text(MAC_A),
                       pdst="10.0.0.2"))
    assert ours == theirs


def test_emit_frame_is_an_ethernet_frame_of_type_arp() -> None:
    frame = Ether(wire.emit_frame(wire.ETHER_BROADCAST, MAC_US, wire.OP_REQUEST, MAC_US,
                                  ip("10.0.0.1"), wire.ZERO_MAC, ip("10.0.0.9")))
    assert frame.dst == "ff:ff:ff:ff:ff:ff" and frame.src == text(MAC_US)
    assert frame.type == 0x0806
    assert frame[ARP].pdst == "10.0.0.9" and frame[ARP].psrc == "10.0.0.1"


def test_ethernet_padding_after_the_header_is_ignored() -> None:
    padded = request(MAC_A, "10.0.0.2", "10.0.0.1") + b"\x00" * 18
    assert wire.parse(padded).spa == ip("10.0.0.2")


def _header(htype: int = 1, ptype: int = 0x0800, hlen: int = 6, plen: int = 4,
            op: int = 1) -> bytes:
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + b"\x02" * 20


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", wire.TRUNCATED),
        (_header()[:7], wire.TRUNCATED),
        (_header()[:27], wire.TRUNCATED),
        (_header(htype=6), wire.BAD_HTYPE),
        (_header(ptype=0x86DD), wire.BAD_PTYPE),
        (_header(hlen=8), wire.BAD_HLEN),
        (_header(plen=16), wire.BAD_PLEN),
        (_header(op=3), wire.BAD_OPCODE),
        (_header(op=0), wire.BAD_OPCODE),
    ],
    ids=["empty", "short-fixed", "short-addresses", "htype", "ptype", "hlen", "plen",
         "op3", "op0"],
)
def test_malformed_header_names_the_failed_check(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as caught:
        wire.parse(data)
    assert caught.value.reason == reason


def test_wrong_address_lengths_are_reported_before_truncation() -> None:
    short_ipv6_style = _header(hlen=6, plen=16)[:10]
    with pytest.raises(Malformed) as caught:
        wire.parse(short_ipv6_style)
    assert caught.value.reason == wire.BAD_PLEN


def test_every_malformed_reason_is_a_drop_reason() -> None:
    reasons = {wire.TRUNCATED, wire.BAD_HTYPE, wire.BAD_PTYPE, wire.BAD_HLEN, wire.BAD_PLEN,
               wire.BAD_OPCODE}
    assert reasons <= {drop.value for drop in ArpDrop}


def test_group_bit_marks_broadcast_and_multicast_macs() -> None:
    assert wire.is_multicast_mac(wire.ETHER_BROADCAST)
    assert wire.is_multicast_mac(bytes.fromhex("01005e000001"))
    assert not wire.is_multicast_mac(MAC_A)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_parse_of_random_bytes_returns_or_raises_malformed_only(data: bytes) -> None:
    try:
        header = wire.parse(data)
    except Malformed as exc:
        assert exc.reason in {d.value for d in ArpDrop}
    else:
        assert len(data) >= wire.HEADER_LEN and header.op in (1, 2)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([wire.OP_REQUEST, wire.OP_REPLY]),
    st.binary(min_size=6, max_size=6),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=6, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_emit_then_parse_round_trips(op: int, sha: bytes, spa: int, tha: bytes,
                                     tpa: int) -> None:
    assert wire.parse(wire.emit(op, sha, spa, tha, tpa)) == wire.ArpHeader(op, sha, spa, tha,
                                                                           tpa)

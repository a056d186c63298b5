"""router/offload.py: the virtio_net_hdr description and the work done in software.

Frames are built the way Linux hands them over with offloads on: the L4
checksum field holds the (uncomplemented, folded) pseudo-header sum, and a
super-frame's IPv4 header carries the whole super-frame's length. scapy, an
independent implementation, checks every segment's checksums.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from router.offload import (
    F_NEEDS_CSUM,
    GSO_NONE,
    GSO_TCPV4,
    GSO_UDP,
    GSO_UDP_L4,
    OffloadError,
    OffloadFrame,
    finish,
    segment_payload_limit,
)
from router.wire.checksum import ones_complement_sum

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _partial(packet: bytes, l4: int, protocol: int, field: int) -> bytes:
    """``packet`` with its L4 checksum replaced by the folded pseudo-header sum."""
    raw = bytearray(packet)
    l3 = 14
    length = len(raw) - l4
    pseudo = bytes(raw[l3 + 12 : l3 + 20]) + bytes((0, protocol)) + length.to_bytes(2, "big")
    raw[l4 + field : l4 + field + 2] = ones_complement_sum(pseudo).to_bytes(2, "big")
    return bytes(raw)


def _valid(frame: bytes) -> bool:
    """Do scapy's own checksums agree with the ones in ``frame``?"""
    packet = Ether(frame)
    rebuilt = packet.copy()
    del rebuilt[IP].chksum
    layer = TCP if TCP in rebuilt else UDP
    del rebuilt[layer].chksum
    return bytes(Ether(bytes(rebuilt))) == frame


def _tcp_super(payload: bytes, flags: str = "PA", seq: int = 1000, ident: int = 7) -> OffloadFrame:
    packet = bytes(ETH / IP(src="10.1.0.2", dst="10.2.0.2", id=ident, flags="DF", ttl=63)
                   / TCP(sport=40000, dport=5201, seq=seq, ack=5, flags=flags,
                         options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
                   / payload)  # a 32-byte TCP header, as Linux sends with timestamps
    partial = _partial(packet, 34, 6, 16)
    return OffloadFrame.make(partial, F_NEEDS_CSUM, GSO_TCPV4, 66, 1448, 34, 16)


def test_a_partial_udp_checksum_is_completed() -> None:
    packet = bytes(ETH / IP(src="10.1.0.2", dst="10.2.0.2") / UDP(sport=1, dport=2)
                   / (b"x" * 1000))
    frame = OffloadFrame.make(_partial(packet, 34, 17, 6), F_NEEDS_CSUM, GSO_NONE, 0, 0, 34, 6)
    (done,) = finish(frame, 14)
    assert type(done) is bytes
    assert done == packet  # scapy computed the same checksum
    assert _valid(done)


def test_a_tcp_super_frame_is_cut_into_mss_segments_with_their_own_headers() -> None:
    payload = bytes(range(256)) * 20  # 5120 bytes: 3 full segments of 1448 and one of 776
    segments = finish(_tcp_super(payload), 14)
    assert [len(s) - 66 for s in segments] == [1448, 1448, 1448, 776]
    parsed = [Ether(s) for s in segments]
    assert b"".join(bytes(p[TCP].payload) for p in parsed) == payload
    assert [p[TCP].seq for p in parsed] == [1000, 2448, 3896, 5344]
    assert [p[IP].id for p in parsed] == [7, 8, 9, 10]
    assert [p[IP].len for p in parsed] == [1500, 1500, 1500, 828]
    assert {p[IP].ttl for p in parsed} == {63}
    assert [str(p[TCP].flags) for p in parsed] == ["A", "A", "A", "PA"]  # PSH on the last only
    assert all(_valid(s) for s in segments)


def test_fin_goes_on_the_last_segment_and_cwr_on_the_first() -> None:
    segments = finish(_tcp_super(b"y" * 3000, flags="FAC"), 14)
    flags = [str(Ether(s)[TCP].flags) for s in segments]
    assert flags == ["AC", "A", "FA"]


def test_a_udp_gso_super_frame_becomes_datagrams_of_gso_size() -> None:
    payload = bytes(range(250)) * 10  # 2500 bytes in datagrams of 1000
    packet = bytes(ETH / IP(src="10.1.0.2", dst="10.2.0.2", id=100) / UDP(sport=9, dport=7)
                   / payload)
    frame = OffloadFrame.make(_partial(packet, 34, 17, 6), F_NEEDS_CSUM, GSO_UDP_L4, 42, 1000,
                              34, 6)
    segments = finish(frame, 14)
    parsed = [Ether(s) for s in segments]
    assert [bytes(p[UDP].payload) for p in parsed] == [payload[:1000], payload[1000:2000],
                                                       payload[2000:]]
    assert [p[UDP].len for p in parsed] == [1008, 1008, 508]
    assert [p[IP].id for p in parsed] == [100, 101, 102]
    assert all(_valid(s) for s in segments)


def test_a_datagram_without_its_link_header_is_cut_the_same_way() -> None:
    frame = _tcp_super(b"z" * 2000)
    datagram = frame.derive(frame[14:], -14)
    assert (datagram.csum_start, datagram.hdr_len) == (20, 52)
    assert [s for s in finish(datagram, 0)] == [s[14:] for s in finish(frame, 14)]


def test_segment_limit_is_the_largest_segments_ipv4_length() -> None:
    assert segment_payload_limit(_tcp_super(b"q" * 4000), 14) == 1500


def test_kinds_an_ipv4_router_cannot_cut_are_refused_not_forwarded() -> None:
    frame = _tcp_super(b"q" * 4000)
    ufo = frame.derive(frame)
    ufo.gso_type = GSO_UDP
    with pytest.raises(OffloadError):
        finish(ufo, 14)
    broken = OffloadFrame.make(b"\x00" * 40, F_NEEDS_CSUM, GSO_TCPV4, 66, 1448, 34, 16)
    with pytest.raises(OffloadError):
        finish(broken, 14)


def test_vnet_round_trip_keeps_every_field() -> None:
    frame = _tcp_super(b"r" * 3000)
    header = frame.vnet_header()
    again = OffloadFrame.from_vnet(bytes(frame), header)
    assert isinstance(again, OffloadFrame)
    assert again.vnet_header() == header
    assert OffloadFrame.from_vnet(b"plain", bytes(10)) == b"plain"
    assert type(OffloadFrame.from_vnet(b"plain", bytes(10))) is bytes

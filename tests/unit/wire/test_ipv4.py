"""IPv4 header view: parse, validation reasons and emit, against scapy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, IPOption_NOP

from router.wire import Malformed, ipv4
from router.wire.checksum import internet_checksum


def addr(text: str) -> int:
    return int.from_bytes(bytes(map(int, text.split("."))), "big")


def packet(**fields: object) -> bytes:
    return bytes(IP(src="10.0.0.1", dst="192.168.1.7", **fields) / UDP() / b"hello")


def reason(data: bytes) -> str:
    with pytest.raises(Malformed) as info:
        ipv4.parse(data)
    return info.value.reason


def test_parse_reads_every_field_as_scapy_wrote_it() -> None:
    data = packet(ttl=17, tos=0x10, id=0x1234, flags="DF")
    hdr = ipv4.parse(data)
    assert hdr.header_len == 20
    assert hdr.total_length == len(data)
    assert (hdr.ttl, hdr.tos, hdr.ident, hdr.protocol) == (17, 0x10, 0x1234, ipv4.PROTO_UDP)
    assert (hdr.src, hdr.dst) == (addr("10.0.0.1"), addr("192.168.1.7"))
    assert hdr.checksum == IP(data).chksum
    assert hdr.dont_fragment and not hdr.more_fragments and hdr.fragment_offset == 0


def test_parse_reads_fragment_fields() -> None:
    hdr = ipv4.parse(packet(flags="MF", frag=185))
    assert hdr.more_fragments
    assert hdr.fragment_offset == 185


def test_header_with_options_has_longer_header_len() -> None:
    data = bytes(IP(dst="1.2.3.4", options=[IPOption_NOP()] * 4) / b"x")
    assert ipv4.parse(data).header_len == 24


def test_shorter_than_twenty_bytes_is_short() -> None:
    assert reason(packet()[:19]) == ipv4.SHORT


def test_version_other_than_four_is_bad_version() -> None:
    data = bytearray(packet())
    data[0] = 0x65
    assert reason(bytes(data)) == ipv4.BAD_VERSION


@pytest.mark.parametrize("ihl", [0, 4])
def test_ihl_below_five_is_bad_ihl(ihl: int) -> None:
    data = bytearray(packet())
    data[0] = 0x40 | ihl
    assert reason(bytes(data)) == ipv4.BAD_IHL


def test_ihl_beyond_the_buffer_is_bad_ihl() -> None:
    data = bytearray(packet()[:22])
    data[0] = 0x46  # 24-byte header in a 22-byte buffer
    assert reason(bytes(data)) == ipv4.BAD_IHL


def test_total_length_below_header_is_length_below_header() -> None:
    assert reason(bytes(IP(dst="1.2.3.4", len=19))) == ipv4.LENGTH_BELOW_HEADER


def test_total_length_beyond_buffer_is_length_beyond_buffer() -> None:
    data = packet()
    assert reason(data[:-1]) == ipv4.LENGTH_BEYOND_BUFFER


def test_bad_checksum_is_bad_checksum_unless_not_verified() -> None:
    data = bytearray(packet())
    data[10:12] = b"\x12\x34"
    data = bytes(data)
    assert reason(data) == ipv4.BAD_CHECKSUM
    assert ipv4.parse(data, verify_checksum=False).checksum == 0x1234


def test_trailing_link_padding_is_accepted() -> None:
    data = packet() + bytes(6)
    assert ipv4.parse(data).total_length == len(data) - 6


def test_emit_equals_scapy() -> None:
    ours = ipv4.emit(src=addr("10.0.0.1"), dst=addr("10.0.0.2"), protocol=1, payload=b"abcd",
                     ttl=33, ident=7, frag=ipv4.FLAG_DF)
    theirs = bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=1, ttl=33, id=7, flags="DF")
                   / b"abcd")
    assert ours == theirs


def test_emit_with_options_sets_ihl_and_checksum() -> None:
    data = ipv4.emit(src=1, dst=2, protocol=17, options=b"\x01\x01\x01\x00")
    assert data[0] == 0x46
    assert internet_checksum(data[:24]) == 0


def test_emit_refuses_unaligned_options() -> None:
    with pytest.raises(ValueError):
        ipv4.emit(src=1, dst=2, protocol=17, options=b"\x01")


def test_read_src_and_dst() -> None:
    data = packet()
    assert ipv4.read_src(data) == addr("10.0.0.1")
    assert ipv4.read_dst(data) == addr("192.168.1.7")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_parse_of_random_bytes_returns_or_raises_malformed(data: bytes) -> None:
    try:
        hdr = ipv4.parse(data)
    except Malformed as exc:
        assert exc.reason in {ipv4.SHORT, ipv4.BAD_VERSION, ipv4.BAD_IHL,
                              ipv4.LENGTH_BELOW_HEADER, ipv4.LENGTH_BEYOND_BUFFER,
                              ipv4.BAD_CHECKSUM}
    else:
        assert 20 <= hdr.header_len <= hdr.total_length <= len(data)

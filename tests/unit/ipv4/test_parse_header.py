"""``router.ipv4.input.parse_header`` (the inlined common case) answers as ``ip.parse`` does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.ipv4.input import parse_header
from router.wire import Malformed
from router.wire import ipv4 as ip


def _outcome(parse: object, data: bytes) -> object:
    try:
        return parse(data)  # type: ignore[operator]
    except Malformed as exc:
        return ("malformed", exc.reason)


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    """Valid datagrams (with and without options), then damaged in one of several ways."""
    options = draw(st.sampled_from([b"", b"\x01\x01\x01\x00", bytes(8)]))
    packet = bytearray(ip.emit(
        src=draw(st.integers(0, 0xFFFFFFFF)), dst=draw(st.integers(0, 0xFFFFFFFF)),
        protocol=draw(st.integers(0, 255)), payload=draw(st.binary(max_size=40)),
        ttl=draw(st.integers(0, 255)), tos=draw(st.integers(0, 255)),
        ident=draw(st.integers(0, 0xFFFF)), frag=draw(st.integers(0, 0xFFFF)),
        options=options))
    damage = draw(st.sampled_from(["none", "byte", "truncate", "pad"]))
    if damage == "byte":
        position = draw(st.integers(0, len(packet) - 1))
        packet[position] = draw(st.integers(0, 255))
    elif damage == "truncate":
        del packet[draw(st.integers(0, len(packet))):]
    elif damage == "pad":
        packet += bytes(draw(st.integers(1, 20)))
    return bytes(packet)


@settings(max_examples=400, deadline=None)
@given(datagrams())
def test_parse_header_matches_the_wire_parse_on_any_datagram(data: bytes) -> None:
    assert _outcome(parse_header, data) == _outcome(ip.parse, data)
    assert _outcome(parse_header, memoryview(data)) == _outcome(ip.parse, data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_parse_header_matches_the_wire_parse_on_random_bytes(data: bytes) -> None:
    assert _outcome(parse_header, data) == _outcome(ip.parse, data)


def test_parse_header_rejects_a_bad_checksum_as_the_wire_parse_does() -> None:
    packet = bytearray(ip.emit(src=1, dst=2, protocol=17, payload=b"x" * 8))
    packet[ip.CHECKSUM_OFF] ^= 0xFF
    assert _outcome(parse_header, bytes(packet)) == ("malformed", ip.BAD_CHECKSUM)


def test_parse_header_reads_a_valid_header_field_for_field() -> None:
    packet = ip.emit(src=0x0A000002, dst=0x0A010003, protocol=17, payload=b"y" * 12,
                     ttl=9, tos=4, ident=77, frag=ip.FLAG_DF)
    hdr = parse_header(packet)
    assert (hdr.header_len, hdr.total_length, hdr.ttl, hdr.src, hdr.dst, hdr.frag) == (
        20, 32, 9, 0x0A000002, 0x0A010003, ip.FLAG_DF)

"""``router.ipv4.icmp.echo_reply_datagram`` builds what ``ip.emit`` of
``wire.reply_to_echo`` builds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.ipv4.icmp import echo_reply_datagram
from router.wire import icmp as wire
from router.wire import ipv4 as ip
from router.wire.checksum import internet_checksum

ADDRESSES = st.integers(0, 0xFFFFFFFF)


def _reference(request: bytes, src: int, dst: int, ttl: int, tos: int) -> bytes:
    return ip.emit(src=src, dst=dst, protocol=ip.PROTO_ICMP, ttl=ttl, tos=tos,
                   payload=wire.reply_to_echo(request))


@settings(max_examples=400, deadline=None)
@given(ident=st.integers(0, 0xFFFF), seq=st.integers(0, 0xFFFF),
       data=st.binary(max_size=64), src=ADDRESSES, dst=ADDRESSES,
       ttl=st.integers(0, 255), tos=st.integers(0, 255))
def test_echo_reply_datagram_matches_emit_of_reply_to_echo(
        ident: int, seq: int, data: bytes, src: int, dst: int, ttl: int, tos: int) -> None:
    request = wire.echo_request(ident, seq, data)
    built = echo_reply_datagram(memoryview(request), src, dst, ttl, tos)
    assert built == _reference(request, src, dst, ttl, tos)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(min_size=wire.HEADER_LEN, max_size=41), src=ADDRESSES, dst=ADDRESSES)
def test_echo_reply_datagram_matches_on_any_message_bytes(body: bytes, src: int,
                                                          dst: int) -> None:
    # odd lengths, any code, any stored checksum: the reply never depends on them
    assert echo_reply_datagram(body, src, dst, 64, 0) == _reference(body, src, dst, 64, 0)


def test_echo_reply_of_an_all_zero_rest_has_checksum_ffff() -> None:
    # the ones'-complement sum of an all-zero message is 0, so its checksum is 0xFFFF
    request = wire.echo_request(0, 0)
    built = echo_reply_datagram(request, 0x0A000001, 0x0A000002, 64, 0)
    assert built[ip.MIN_HEADER_LEN + 2 : ip.MIN_HEADER_LEN + 4] == b"\xff\xff"
    assert built == _reference(request, 0x0A000001, 0x0A000002, 64, 0)


def test_echo_reply_checksums_verify() -> None:
    built = echo_reply_datagram(wire.echo_request(7, 9, b"ping"), 0x0A000001, 0x0A000002, 64, 0)
    assert internet_checksum(built[: ip.MIN_HEADER_LEN]) == 0
    assert internet_checksum(built[ip.MIN_HEADER_LEN :]) == 0

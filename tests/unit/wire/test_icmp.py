"""ICMP messages (echo, time exceeded, unreachable) and UDP, against scapy."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror

from router.wire import Malformed, icmp, udp


def test_echo_request_equals_scapy() -> None:
    ours = icmp.echo_request(0x1234, 7, b"ping")
    assert ours == bytes(ICMP(type=8, id=0x1234, seq=7) / b"ping")


def test_parse_echo_reads_ident_seq_and_body() -> None:
    msg = icmp.parse(bytes(ICMP(type=0, id=9, seq=300) / b"data"))
    assert (msg.type, msg.code, msg.ident, msg.seq, msg.body) == (0, 0, 9, 300, b"data")
    assert not msg.is_error


def test_reply_to_echo_keeps_id_seq_data_and_fixes_checksum() -> None:
    request = bytes(ICMP(type=8, id=5, seq=6) / b"xyz")
    reply = icmp.reply_to_echo(request)
    assert reply == bytes(ICMP(type=0, id=5, seq=6) / b"xyz")
    assert icmp.echo_reply(5, 6, b"xyz") == reply


def test_short_message_is_malformed() -> None:
    with pytest.raises(Malformed, match=icmp.SHORT):
        icmp.parse(b"\x08\x00\x00")


def test_bad_checksum_is_malformed() -> None:
    data = bytes(ICMP(type=8, chksum=0xBEEF))
    with pytest.raises(Malformed, match=icmp.BAD_CHECKSUM):
        icmp.parse(data)
    assert icmp.parse(data, verify_checksum=False).checksum == 0xBEEF


def test_time_exceeded_quotes_the_datagram() -> None:
    original = bytes(IP(src="10.0.0.1", dst="10.9.9.9", ttl=1) / UDP(dport=33434) / (b"x" * 10))
    msg = icmp.time_exceeded(original)
    parsed = ICMP(msg)
    assert (parsed.type, parsed.code) == (11, 0)
    assert isinstance(parsed.payload, IPerror)
    assert bytes(parsed.payload) == original
    assert icmp.parse(msg).is_error


@pytest.mark.parametrize(
    "code", [icmp.UNREACH_NET, icmp.UNREACH_HOST, icmp.UNREACH_PORT, icmp.UNREACH_PROTOCOL]
)
def test_dest_unreachable_codes(code: int) -> None:
    original = bytes(IP(dst="10.9.9.9") / UDP())
    parsed = ICMP(icmp.dest_unreachable(original, code, mtu=1400))
    assert (parsed.type, parsed.code, parsed.nexthopmtu) == (3, code, 0)


def test_frag_needed_carries_the_next_hop_mtu() -> None:
    original = bytes(IP(dst="10.9.9.9", flags="DF") / UDP())
    msg = icmp.dest_unreachable(original, icmp.UNREACH_FRAG_NEEDED, mtu=1400)
    assert ICMP(msg).nexthopmtu == 1400
    assert icmp.parse(msg).next_hop_mtu == 1400


def test_error_quote_stops_at_576_byte_datagram() -> None:
    original = bytes(IP(dst="10.9.9.9") / UDP() / (b"z" * 1400))
    msg = icmp.time_exceeded(original)
    assert 20 + len(msg) == icmp.ERROR_DATAGRAM_MAX
    assert msg[8:] == original[: icmp.QUOTE_MAX]


def test_peek_type_needs_no_valid_message() -> None:
    assert icmp.peek_type(b"\x03") == 3
    assert icmp.peek_type(b"") is None


def test_udp_emit_equals_scapy_with_pseudo_header_checksum() -> None:
    src, dst = 0x0A000001, 0x0A000002
    ours = udp.emit(src=src, dst=dst, src_port=1234, dst_port=53, payload=b"query")
    packet = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=53) / b"query"
    theirs = bytes(packet)[20:]
    assert ours == theirs
    hdr = udp.parse(ours)
    assert (hdr.src_port, hdr.dst_port, hdr.length) == (1234, 53, 13)


def test_udp_short_and_bad_length_are_malformed() -> None:
    with pytest.raises(Malformed, match=udp.SHORT):
        udp.parse(b"\x00" * 7)
    with pytest.raises(Malformed, match=udp.BAD_LENGTH):
        udp.parse(bytes(UDP(len=40)))

"""Reassembly of datagrams addressed to the router (issue 11 item 10).

Fragments for one of our addresses are put back together (RFC 791, RFC 815)
with bounded memory (Linux ``ipfrag_high_thresh`` 4 MiB: the oldest
datagrams in progress give way) and time (``ipfrag_time`` 30 s, driven by
``tick(now)``: ICMP time exceeded "reassembly" when the first fragment had
come). Any overlap drops the whole datagram (RFC 5722's rule; an exact
duplicate is dropped alone, RFC 8200 4.5), so does a datagram of too many
fragments or past 65,535 bytes; every drop is counted. Forwarding never
reassembles.
"""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import ICMP, IP, UDP, fragment

from router.ipv4.input import DropReason, Ipv4Config
from router.ipv4.reassembly import ReassemblyConfig
from router.wire import ipv4 as ip_wire
from router.wire.checksum import internet_checksum
from router.wire.icmp import ECHO_REPLY, TIME_EXCEEDED, TIMX_REASSEMBLY
from tests.unit.ipv4.support import Rig, Sent, ip, no_rate_limit

PAYLOAD = bytes(random.Random(3).randrange(256) for _ in range(3000))


def big_ping(ident: int = 0x1234, payload: bytes = PAYLOAD, dst: str = "10.0.0.1") -> IP:
    return IP(src="10.0.0.7", dst=dst, id=ident) / ICMP(id=7, seq=1) / payload


def pieces(packet: IP, size: int = 1480) -> list[bytes]:
    return [bytes(p) for p in fragment(packet, fragsize=size)]


def reassemble_replies(sent: list[Sent]) -> IP:
    """Put the router's reply fragments back together (they share one non-zero id)."""
    frags = [s.ip for s in sent]
    assert len({f.id for f in frags}) == 1 and frags[0].id != 0
    frags.sort(key=lambda f: f.frag)
    data = b"".join(bytes(f.payload)[: f.len - f.ihl * 4] for f in frags)
    head = frags[0]
    return IP(bytes(IP(src=head.src, dst=head.dst, proto=head.proto, ttl=head.ttl) / data))


def rig() -> Rig:
    return Rig(no_rate_limit())


def test_a_ping_of_3000_bytes_is_reassembled_and_answered_in_fragments() -> None:
    r = rig()
    frags = pieces(big_ping())
    assert len(frags) == 3
    for frag in reversed(frags):  # any order
        r.receive_raw(frag)
    sent = r.take()
    assert len(sent) == 3 and all(len(s.datagram) <= 1500 for s in sent)
    reply = reassemble_replies(sent)
    assert reply[ICMP].type == ECHO_REPLY and bytes(reply[ICMP].payload) == PAYLOAD
    stats = r.ipv4.stats
    assert stats.reassembled == 1 and stats.delivered == 1 and stats.fragments_out == 3
    assert r.ipv4.reassembly.memory == 0 and len(r.ipv4.reassembly) == 0


def test_nothing_is_delivered_until_every_fragment_is_there() -> None:
    r = rig()
    frags = pieces(big_ping())
    r.receive_raw(frags[0])
    r.receive_raw(frags[2])
    assert r.take() == [] and r.ipv4.stats.delivered == 0
    assert len(r.ipv4.reassembly) == 1 and r.ipv4.reassembly.memory > 0
    r.receive_raw(frags[1])
    assert len(r.take()) == 3


def test_datagrams_of_different_ids_do_not_mix() -> None:
    r = rig()
    a, b = pieces(big_ping(1)), pieces(big_ping(2, payload=PAYLOAD[::-1]))
    for frag in (a[0], b[1], a[1], b[0], b[2], a[2]):
        r.receive_raw(frag)
    assert r.ipv4.stats.reassembled == 2 and len(r.take()) == 6


def test_an_unfinished_datagram_times_out_after_30_s_with_icmp_time_exceeded() -> None:
    r = rig()
    frags = pieces(big_ping())
    r.receive_raw(frags[0], now=100.0)
    r.receive_raw(frags[1], now=101.0)
    assert r.ipv4.next_deadline() == 130.0
    r.ipv4.tick(129.9)
    assert len(r.ipv4.reassembly) == 1 and r.take() == []
    r.ipv4.tick(130.0)
    (sent,) = r.take()
    icmp = sent.ip[ICMP]
    assert (icmp.type, icmp.code) == (TIME_EXCEEDED, TIMX_REASSEMBLY)
    assert bytes(icmp.payload)[:20] == frags[0][:20]  # quotes the first fragment
    assert r.drops() == {DropReason.REASSEMBLY_TIMEOUT.value: 1}
    assert r.ipv4.reassembly.memory == 0 and r.ipv4.next_deadline() is None


def test_a_timeout_without_the_first_fragment_sends_nothing() -> None:
    r = rig()
    r.receive_raw(pieces(big_ping())[1], now=5.0)
    r.ipv4.tick(35.0)
    assert r.take() == [] and r.drops() == {DropReason.REASSEMBLY_TIMEOUT.value: 1}


def test_any_overlap_drops_the_whole_datagram() -> None:
    r = rig()
    frags = pieces(big_ping())
    r.receive_raw(frags[0])
    # a fragment that starts inside the first one (offset 1472 bytes, not 1480)
    overlapping = IP(frags[1])
    overlapping.frag -= 1
    del overlapping.chksum
    r.receive_raw(bytes(overlapping))
    assert len(r.ipv4.reassembly) == 0 and r.ipv4.reassembly.memory == 0
    assert r.drops() == {DropReason.REASSEMBLY_OVERLAP.value: 1}
    r.receive_raw(frags[1])
    r.receive_raw(frags[2])
    assert r.take() == []  # the first fragment went with the datagram


def test_a_same_range_fragment_with_other_bytes_is_an_overlap() -> None:
    r = rig()
    frags = pieces(big_ping())
    r.receive_raw(frags[1])
    changed = bytearray(frags[1])
    changed[-1] ^= 0xFF
    r.receive_raw(bytes(changed))
    assert r.drops() == {DropReason.REASSEMBLY_OVERLAP.value: 1}


def test_an_exact_duplicate_is_dropped_alone() -> None:
    r = rig()
    frags = pieces(big_ping())
    for frag in (frags[0], frags[1], frags[1], frags[2]):
        r.receive_raw(frag)
    assert len(r.take()) == 3
    assert r.drops() == {DropReason.REASSEMBLY_DUPLICATE.value: 1}


def test_too_many_fragments_drop_the_datagram() -> None:
    r = rig()
    limit = r.ipv4.reassembly.config.max_fragments
    frags = pieces(big_ping(payload=bytes(8 * (limit + 4))), size=8)
    for frag in frags[: limit + 1]:
        r.receive_raw(frag)
    assert r.drops() == {DropReason.REASSEMBLY_TOO_MANY_FRAGMENTS.value: 1}
    assert len(r.ipv4.reassembly) == 0


def with_ident(frag: bytes, ident: int) -> bytes:
    raw = bytearray(frag)
    raw[4:6] = ident.to_bytes(2, "big")
    raw[10:12] = b"\x00\x00"
    ip_wire.set_checksum(raw, internet_checksum(raw[:20]))
    return bytes(raw)


def test_memory_is_bounded_and_the_oldest_datagrams_give_way() -> None:
    config = ReassemblyConfig()
    r = Rig(Ipv4Config(icmp=no_rate_limit().icmp, reassembly=config))
    template = pieces(big_ping())
    first_pieces = 0
    for ident in range(4000):  # first fragments only: 4000 * ~1.7 kB > 4 MiB
        r.receive_raw(with_ident(template[0], ident), now=ident * 0.001)
        assert r.ipv4.reassembly.memory <= config.high_thresh
        first_pieces += 1
    evicted = r.ipv4.stats.drops[DropReason.REASSEMBLY_MEMORY]
    assert evicted > 0 and len(r.ipv4.reassembly) + evicted == first_pieces
    # the survivors are the newest: the last datagram can still complete
    for frag in template[1:]:
        r.receive_raw(with_ident(frag, 3999), now=5.0)
    assert r.ipv4.stats.reassembled == 1


def test_a_datagram_past_65535_bytes_is_dropped() -> None:
    r = rig()
    head = IP(src="10.0.0.7", dst="10.0.0.1", id=9, flags="MF", frag=0) / ICMP() / bytes(1472)
    tail = IP(src="10.0.0.7", dst="10.0.0.1", id=9, frag=8189, proto=1) / bytes(100)
    r.receive_raw(bytes(head))
    r.receive_raw(bytes(tail))  # 8189 * 8 + 100 + 20 > 65535: the ping of death
    assert r.drops() == {DropReason.REASSEMBLY_TOO_BIG.value: 1}
    assert len(r.ipv4.reassembly) == 0


@pytest.mark.parametrize("case", ["odd_length", "empty"])
def test_a_bad_fragment_is_dropped_alone(case: str) -> None:
    r = rig()
    data = bytes(13) if case == "odd_length" else b""
    bad = IP(src="10.0.0.7", dst="10.0.0.1", id=9, flags="MF", frag=10, proto=1) / data
    r.receive_raw(bytes(bad))
    assert r.drops() == {DropReason.REASSEMBLY_BAD_FRAGMENT.value: 1}
    assert len(r.ipv4.reassembly) == 0


def test_two_different_last_fragments_drop_the_datagram() -> None:
    r = rig()
    frags = pieces(big_ping())
    r.receive_raw(frags[2])
    other_end = IP(frags[2])
    other_end.frag += 10
    del other_end.chksum
    r.receive_raw(bytes(other_end))
    assert r.drops() == {DropReason.REASSEMBLY_INCONSISTENT.value: 1}


def test_fragments_to_forward_are_forwarded_one_by_one() -> None:
    r = rig()
    frags = pieces(big_ping(dst="10.1.0.9"))
    for frag in frags:
        r.receive_raw(frag)
    sent = r.take()
    assert [s.ifname for s in sent] == ["eth1"] * 3
    assert [s.ip.frag for s in sent] == [IP(f).frag for f in frags]
    assert len(r.ipv4.reassembly) == 0 and r.ipv4.stats.reassembled == 0


def test_a_reassembled_udp_datagram_gets_port_unreachable() -> None:
    r = rig()
    packet = IP(src="10.0.0.7", dst="10.0.0.1", id=5) / UDP(sport=1, dport=9) / bytes(2000)
    for frag in pieces(packet):
        r.receive_raw(frag)
    (sent,) = r.take()
    assert sent.ip[ICMP].type == 3 and sent.ip[ICMP].code == 3


def test_the_reply_fragments_of_different_replies_get_different_ids() -> None:
    r = rig()
    for ident in (1, 2):
        for frag in pieces(big_ping(ident)):
            r.receive_raw(frag)
    ids = {s.ip.id for s in r.take()}
    assert len(ids) == 2 and 0 not in ids


def test_the_reassembled_header_is_the_first_fragments_with_a_new_length() -> None:
    r = rig()
    original = big_ping()
    results = []
    for frag in pieces(original):
        hdr = ip_wire.parse(frag)
        results.append(r.ipv4.reassembly.add(1, hdr, frag, False, 0.0))
    assert results[:2] == [None, None]
    whole = results[2]
    assert whole is not None and whole[20:] == bytes(original)[20:]
    hdr = ip_wire.parse(whole)  # a valid header: checksum verified
    assert hdr.total_length == len(bytes(original)) and hdr.frag == 0
    assert (hdr.src, hdr.dst, hdr.ident) == (ip("10.0.0.7"), ip("10.0.0.1"), 0x1234)

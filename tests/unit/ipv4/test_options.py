"""IP options checked as a router must (issue 11 item 9), as Linux's ``ip_options_compile``
and ``ip_rcv_options`` do, for datagrams to forward and to deliver alike:

* malformed options (a length below 2, an option running past the header, a
  pointer below its minimum, two source routes, ...) are dropped with ICMP
  parameter problem whose pointer names the bad octet;
* source-routed datagrams (LSRR, SSRR) are dropped silently: source routing
  is off (RFC 7126 section 4.3-4.4, Linux ``accept_source_route`` = 0);
* a datagram whose source is one of our own addresses is a martian;
* on the way through, record route and timestamp are filled in (RFC 791), the
  other options are forwarded unchanged.

Each is counted under its own ``DropReason``.
"""

from __future__ import annotations

import dataclasses

import pytest
from scapy.layers.inet import (
    ICMP,
    IP,
    UDP,
    IPOption_LSRR,
    IPOption_SSRR,
)

from router.ipv4.input import DropReason, Ipv4Config
from router.wire import ipv4 as ip_wire
from router.wire.icmp import PARAMETER_PROBLEM
from tests.unit.ipv4.support import Rig, ip, no_rate_limit

FORWARDED = ("10.0.0.7", "10.1.0.9")  # eth0's host to eth1's host
TO_US = ("10.0.0.7", "10.0.0.1")


def with_options(options: bytes, src: str = FORWARDED[0], dst: str = FORWARDED[1],
                 payload: bytes = b"\x00" * 8) -> bytes:
    """A UDP datagram with raw option bytes (padded to 4 with end-of-options)."""
    padded = options + bytes(-len(options) % 4)
    return ip_wire.emit(src=ip(src), dst=ip(dst), protocol=ip_wire.PROTO_UDP, ttl=64,
                        payload=payload, options=padded)


MALFORMED = [
    ("length 0", b"\x07\x00\x04\x00", 20),  # record route, length 0
    ("length 1", b"\x07\x01\x04\x00", 20),
    ("past the header", b"\x07\x0b\x04" + bytes(5), 20),  # says 11 bytes, 8 there
    ("single byte left", b"\x01\x01\x01\x07", 23),  # NOPs, then a kind with no length
    ("record route pointer below 4", b"\x07\x07\x03" + bytes(5), 22),
    ("record route slot past its end", b"\x07\x07\x05" + bytes(4), 22),  # 4 bytes at 5..8 of 7
    ("timestamp too short", b"\x44\x03\x05\x00", 21),
    ("timestamp pointer below 5", b"\x44\x08\x04\x00" + bytes(4), 22),
    ("timestamp overflow 15", b"\x44\x08\x09\xf0" + bytes(4), 23),
    ("two source routes", b"\x83\x07\x04" + bytes(4) + b"\x89\x07\x04" + bytes(4), 27),
    ("router alert too short", b"\x94\x02\x00\x00", 21),
    ("IHL 15 over garbage", b"\xff" * 40, 20),
]


@pytest.mark.parametrize(("options", "pointer"), [(o, p) for _, o, p in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
@pytest.mark.parametrize("addresses", [FORWARDED, TO_US], ids=["forwarded", "to-us"])
def test_malformed_options_are_a_parameter_problem_pointing_at_the_bad_octet(
        options: bytes, pointer: int, addresses: tuple[str, str]) -> None:
    rig = Rig(no_rate_limit())
    datagram = with_options(options, *addresses)
    rig.receive_raw(datagram)
    (sent,) = rig.take()
    reply = sent.ip
    assert (reply.dst, reply[ICMP].type, reply[ICMP].code) == ("10.0.0.7", PARAMETER_PROBLEM, 0)
    assert reply[ICMP].ptr == pointer
    assert bytes(reply[ICMP].payload)[:20] == datagram[:20]
    assert rig.drops() == {DropReason.BAD_OPTIONS.value: 1}
    assert rig.ipv4.stats.forwarded == 0 and rig.ipv4.stats.delivered == 0
    assert rig.eth0.counters.ierrors == 1  # a malformed header is an input error


@pytest.mark.parametrize("option", [IPOption_LSRR, IPOption_SSRR], ids=["lsrr", "ssrr"])
@pytest.mark.parametrize("addresses", [FORWARDED, TO_US], ids=["forwarded", "to-us"])
def test_source_routed_datagrams_are_dropped_silently(option: type,
                                                      addresses: tuple[str, str]) -> None:
    rig = Rig(no_rate_limit())
    packet = IP(src=addresses[0], dst=addresses[1],
                options=[option(routers=["10.1.0.9", "10.2.0.1"])]) / UDP() / b"x"
    rig.receive(packet)
    assert rig.take() == []  # no ICMP: Linux drops it quietly (accept_source_route 0)
    assert rig.drops() == {DropReason.SOURCE_ROUTE.value: 1}
    assert rig.eth0.counters.ierrors == 0  # well formed: a policy drop, not an input error


def _forward_with(options: bytes, config: Ipv4Config | None = None,
                  now: float = 0.0) -> tuple[bytes, bytes]:
    """(the options that came in, those that went out) for a UDP datagram carrying the
    raw ``options`` eth0 -> eth1; the rest of the datagram is checked unchanged."""
    rig = Rig(config or no_rate_limit())
    datagram = with_options(options)
    rig.receive_raw(datagram, now=now)
    (sent,) = rig.take()
    assert sent.ifname == "eth1" and rig.drops() == {}
    out = ip_wire.parse(sent.datagram, verify_checksum=True)  # the header checksum is right
    assert out.ttl == 63 and out.header_len == (datagram[0] & 0x0F) * 4
    assert sent.datagram[out.header_len :] == datagram[out.header_len :]
    return datagram[20 : out.header_len], sent.datagram[20 : out.header_len]


TIME_1S = (0x80000000 | 1000).to_bytes(4, "big")  # 1 s of the engine's clock, no UT known


def test_record_route_gets_the_address_the_datagram_leaves_from() -> None:
    _, out = _forward_with(b"\x01\x07\x0b\x04" + bytes(8))  # NOP, RR with two slots
    assert out == b"\x01\x07\x0b\x08" + bytes([10, 1, 0, 1]) + bytes(4)


def test_a_full_record_route_is_forwarded_as_it_came() -> None:
    sent, out = _forward_with(b"\x07\x07\x08\x0a\x09\x09\x09")
    assert out == sent


def test_a_timestamp_carries_milliseconds_since_midnight_ut_when_ut_is_known() -> None:
    config = dataclasses.replace(no_rate_limit(),
                                 utc_offset=86_400 * 20_000 + 3_600.0)  # clock 0 = 01:00 UT
    _, out = _forward_with(b"\x44\x0c\x05\x00" + bytes(8), config, now=2.5)
    assert out == b"\x44\x0c\x09\x00" + (3_602_500).to_bytes(4, "big") + bytes(4)


def test_without_ut_a_timestamp_is_flagged_non_standard() -> None:
    _, out = _forward_with(b"\x44\x08\x05\x00" + bytes(4), now=1.0)
    assert out == b"\x44\x08\x09\x00" + TIME_1S


def test_a_timestamp_with_addresses_records_ours_then_the_time() -> None:
    _, out = _forward_with(b"\x44\x14\x05\x01" + bytes(16), now=1.0)
    assert out == b"\x44\x14\x0d\x01" + bytes([10, 1, 0, 1]) + TIME_1S + bytes(8)


@pytest.mark.parametrize(("address", "stamped"), [("10.0.0.1", True), ("10.5.5.5", False)])
def test_a_prespecified_timestamp_is_filled_only_where_the_address_is_ours(
        address: str, stamped: bool) -> None:
    named = ip(address).to_bytes(4, "big")
    sent, out = _forward_with(b"\x44\x0c\x05\x03" + named + bytes(4), now=1.0)
    assert out == (b"\x44\x0c\x0d\x03" + named + TIME_1S if stamped else sent)


def test_a_full_timestamp_counts_one_more_overflow() -> None:
    _, out = _forward_with(b"\x44\x08\x09\x21" + bytes(4))  # full, overflow 2, flag 1
    assert out[:4] == b"\x44\x08\x09\x31"  # overflow 3, the flag kept


def test_other_options_are_forwarded_unchanged_but_for_the_ttl() -> None:
    sent, out = _forward_with(b"\x01\x01\x94\x04\x00\x00")  # NOPs, router alert
    assert out == sent


def test_unknown_options_and_end_of_options_padding_are_accepted() -> None:
    rig = Rig(no_rate_limit())
    rig.receive_raw(with_options(b"\x1e\x04\xab\xcd\x00\x99\x99\x99"))  # kind 30, then EOL
    assert len(rig.take()) == 1 and rig.drops() == {}


def test_options_are_checked_after_the_martian_source_checks() -> None:
    rig = Rig(no_rate_limit())
    rig.receive_raw(with_options(b"\x07\x00\x04\x00", src="127.0.0.1"))
    assert rig.take() == [] and rig.drops() == {DropReason.BAD_SOURCE.value: 1}


@pytest.mark.parametrize("our_address", ["10.0.0.1", "10.1.0.1"])
@pytest.mark.parametrize("dst", ["10.1.0.9", "10.0.0.1", "10.0.0.255"],
                         ids=["forwarded", "to-us", "broadcast"])
def test_a_datagram_from_one_of_our_own_addresses_is_a_martian(our_address: str,
                                                                dst: str) -> None:
    rig = Rig(no_rate_limit())
    rig.receive(IP(src=our_address, dst=dst) / ICMP(id=1, seq=1))
    assert rig.take() == []
    assert rig.drops() == {DropReason.OWN_SOURCE.value: 1}


def test_own_source_check_also_covers_datagrams_with_options() -> None:
    rig = Rig(no_rate_limit())
    rig.receive_raw(with_options(b"\x01\x01\x01\x01", src="10.1.0.1"))
    assert rig.take() == [] and rig.drops() == {DropReason.OWN_SOURCE.value: 1}

"""router.inet.multipath: the flow hash and the rendezvous choice of a leg."""

from __future__ import annotations

import collections

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP

from router.inet.multipath import NextHop, choose, flow_hash

LEGS = tuple(NextHop(0x0A000100 + i, 2 + i, f"eth{i + 1}") for i in range(4))


def always(hop: NextHop) -> bool:
    del hop
    return True


def datagram(sport: int = 1000, dport: int = 53, proto: str = "udp", **ip: object) -> bytes:
    l4 = {"udp": UDP(sport=sport, dport=dport), "tcp": TCP(sport=sport, dport=dport),
          "icmp": ICMP()}[proto]
    return bytes(IP(src="10.0.0.2", dst="10.9.0.1", **ip) / l4 / b"payload!")  # type: ignore[arg-type]


def test_ports_are_part_of_the_flow_for_udp_and_tcp() -> None:
    for proto in ("udp", "tcp"):
        one = flow_hash(datagram(1000, proto=proto), 0)
        assert one != flow_hash(datagram(1001, proto=proto), 0)
        assert one != flow_hash(datagram(1000, 54, proto=proto), 0)
        assert one == flow_hash(datagram(1000, proto=proto), 0)


def test_fragments_hash_without_ports_all_alike() -> None:
    first = datagram(1000, flags="MF")
    later = datagram(2000, frag=8)
    assert flow_hash(first, 0) == flow_hash(later, 0) == flow_hash(datagram(3000, flags="MF"), 0)
    assert flow_hash(first, 0) != flow_hash(datagram(1000), 0)


def test_other_protocols_hash_addresses_and_protocol_only() -> None:
    assert flow_hash(datagram(proto="icmp", id=1), 0) == flow_hash(datagram(proto="icmp", id=2), 0)
    assert flow_hash(datagram(proto="icmp"), 0) != flow_hash(
        bytes(IP(src="10.0.0.3", dst="10.9.0.1") / ICMP()), 0)


def test_the_hash_reads_the_header_where_it_starts() -> None:
    packet = datagram(1234)
    assert flow_hash(b"\x00" * 14 + packet, 14) == flow_hash(packet, 0)


@given(st.integers())
def test_a_flow_always_takes_the_same_leg(flow: int) -> None:
    assert len({choose(LEGS, flow, always) for _ in range(3)}) == 1


def test_every_leg_carries_a_fair_share_of_flows() -> None:
    counts = collections.Counter(choose(LEGS, flow_hash(datagram(sport), 0), always)
                                 for sport in range(1024, 1024 + 4000))
    assert set(counts) == set(LEGS)
    assert min(counts.values()) > 4000 / len(LEGS) * 0.8


def test_removing_a_leg_moves_only_its_flows() -> None:
    flows = [flow_hash(datagram(sport), 0) for sport in range(2000)]
    before = {f: choose(LEGS, f, always) for f in flows}
    after = {f: choose(LEGS[:2] + LEGS[3:], f, always) for f in flows}
    moved = {f for f in flows if before[f] != after[f]}
    assert moved == {f for f in flows if before[f] == LEGS[2]}


def test_adding_a_leg_moves_flows_only_onto_it() -> None:
    flows = [flow_hash(datagram(sport), 0) for sport in range(2000)]
    before = {f: choose(LEGS[:3], f, always) for f in flows}
    after = {f: choose(LEGS, f, always) for f in flows}
    moved = [f for f in flows if before[f] != after[f]]
    assert moved and all(after[f] == LEGS[3] for f in moved)
    assert len(moved) < len(flows) / 3


def test_an_unusable_leg_is_skipped_and_its_flows_come_back_with_it() -> None:
    flows = [flow_hash(datagram(sport), 0) for sport in range(500)]
    down = LEGS[1]
    skipping = {f: choose(LEGS, f, lambda hop: hop != down) for f in flows}
    assert down not in skipping.values()
    assert {f: choose(LEGS, f, always) for f in flows if skipping[f] != choose(LEGS, f, always)} \
        == {f: down for f in flows if choose(LEGS, f, always) == down}


def test_with_no_usable_leg_the_first_is_used() -> None:
    assert choose(LEGS, 12345, lambda hop: False) == LEGS[0]


def test_a_leg_is_known_by_its_gateway_and_interface_only() -> None:
    assert NextHop(1, 2, "eth1").key == NextHop(1, 2, "renamed").key
    assert NextHop(1, 2, "eth1").key != NextHop(1, 3, "eth1").key

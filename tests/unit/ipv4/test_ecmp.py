"""Multipath (ECMP) gateway routes in the engine: flows keep their leg on both
forwarding paths, every leg is used, down legs are skipped, replacement is atomic."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from router import Engine, EngineConfig, RouterError
from router.arp.config import ArpConfig
from router.errors import EEXIST, EINVAL, ENETUNREACH
from router.events import EventKind
from router.inet.route import RouteFlags

R0, R1, R2, R3 = (f"02:00:00:00:01:0{i}" for i in range(4))
H1 = "02:00:00:00:02:00"
GW1, GW2, GW3 = "02:00:00:00:03:01", "02:00:00:00:03:02", "02:00:00:00:03:03"
PREFIX = "10.9.0.0/16"
TWO_LEGS = [("10.1.0.254", "eth1"), ("10.2.0.254", "eth2")]


def router(fast: bool = True) -> Engine:
    engine = Engine(EngineConfig(fast_path=fast, arp=ArpConfig(seed=7)))
    for i, mac in enumerate((R0, R1, R2, R3)):
        engine.add_ethernet(f"eth{i}", mac)
        engine.add_alias(f"eth{i}", f"10.{i}.0.1/24")
    engine.set_arp("eth0", "10.0.0.2", H1)
    engine.set_arp("eth1", "10.1.0.254", GW1)
    engine.set_arp("eth2", "10.2.0.254", GW2)
    engine.set_arp("eth3", "10.3.0.254", GW3)
    engine.set_route(PREFIX, TWO_LEGS)
    engine.transmit()
    return engine


def flow_frame(sport: int, dport: int = 53, proto: str = "udp", dst: str = "10.9.1.1",
               **ip: Any) -> bytes:
    l4 = {"udp": UDP(sport=sport, dport=dport), "tcp": TCP(sport=sport, dport=dport),
          "icmp": ICMP(id=sport)}[proto]
    return bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst=dst, **ip) / l4 / b"data")  # type: ignore[arg-type]


def legs_taken(engine: Engine, frames: list[bytes]) -> list[int]:
    """The output ifindex of each forwarded frame, in order (one output per input)."""
    engine.receive_batch(engine.interface("eth0").index, frames, 1.0)
    out = [ifindex for ifindex, _ in engine.transmit()]
    assert len(out) == len(frames)
    return out


def names(engine: Engine, ifindexes: list[int]) -> list[str]:
    by_index = {ifp.index: ifp.name for ifp in engine.interfaces()}
    return [by_index[i] for i in ifindexes]


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(1, 65535), st.integers(1, 65535),
                          st.sampled_from(["udp", "tcp"])), min_size=1, max_size=30),
       st.integers(1, 4), st.booleans())
def test_a_flow_always_takes_the_same_leg(flows: list[tuple[int, int, str]], repeats: int,
                                          fast: bool) -> None:
    engine = router(fast)
    frames = [flow_frame(s, d, p) for s, d, p in flows] * repeats
    taken = legs_taken(engine, frames)
    leg_of: dict[bytes, int] = {}
    for frame, ifindex in zip(frames, taken, strict=True):
        assert leg_of.setdefault(frame, ifindex) == ifindex


def test_every_leg_carries_flows_and_no_other_interface_does() -> None:
    engine = router()
    taken = names(engine, legs_taken(engine, [flow_frame(sport) for sport in range(1000, 1400)]))
    counts = collections.Counter(taken)
    assert set(counts) == {"eth1", "eth2"}
    assert min(counts.values()) > 400 * 0.35


def test_frames_go_to_the_legs_gateway_mac() -> None:
    engine = router()
    engine.receive_batch(engine.interface("eth0").index,
                         [flow_frame(sport) for sport in range(1000, 1100)], 1.0)
    by_index = {ifp.index: ifp.name for ifp in engine.interfaces()}
    for ifindex, frame in engine.transmit():
        expected = {"eth1": GW1, "eth2": GW2}[by_index[ifindex]]
        assert Ether(frame).dst == expected
        assert Ether(frame)[IP].ttl == 63


@pytest.mark.parametrize("fast", [True, False])
def test_fragments_of_a_datagram_take_one_leg_whatever_their_ports(fast: bool) -> None:
    engine = router(fast)
    frames = ([flow_frame(sport, flags="MF", id=7) for sport in range(2000, 2100)]
              + [flow_frame(sport, frag=64, id=7) for sport in range(3000, 3100)])
    assert len(set(legs_taken(engine, frames))) == 1


def test_icmp_hashes_by_addresses() -> None:
    engine = router()
    assert len(set(legs_taken(engine, [flow_frame(i, proto="icmp") for i in range(50)]))) == 1


@given(st.lists(st.tuples(st.integers(1, 65535), st.integers(1, 65535),
                          st.sampled_from(["udp", "tcp", "icmp"]), st.booleans()),
                min_size=1, max_size=40))
@settings(max_examples=60)
def test_the_fast_path_and_the_generic_path_choose_the_same_leg(
        flows: list[tuple[int, int, str, bool]]) -> None:
    frames = [flow_frame(s, d, p, flags="MF" if f else 0) for s, d, p, f in flows]
    fast, generic = router(True), router(False)
    assert legs_taken(fast, frames) == legs_taken(generic, frames)
    assert fast.fastpath is not None and fast.fastpath.hits > 0


@pytest.mark.parametrize("fast", [True, False])
def test_a_down_leg_is_skipped_and_only_its_flows_move(fast: bool) -> None:
    engine = router(fast)
    engine.set_route(PREFIX, [*TWO_LEGS, ("10.3.0.254", "eth3")])
    frames = [flow_frame(sport) for sport in range(1000, 1300)]
    before = names(engine, legs_taken(engine, frames))
    assert set(before) == {"eth1", "eth2", "eth3"}
    engine.set_interface("eth2", up=False)
    after = names(engine, legs_taken(engine, frames))
    assert set(after) == {"eth1", "eth3"}
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert moved and all(a == "eth2" for a, _ in moved)  # only the down leg's flows move
    assert {b for _, b in moved} == {"eth1", "eth3"}  # spread over the others
    engine.set_interface("eth2", up=True)
    assert names(engine, legs_taken(engine, frames)) == before  # and they come back


def test_a_leg_whose_gateway_arp_failed_is_skipped() -> None:
    engine = Engine(EngineConfig(arp=ArpConfig(seed=7)))
    for i, mac in enumerate((R0, R1, R2)):
        engine.add_ethernet(f"eth{i}", mac)
        engine.add_alias(f"eth{i}", f"10.{i}.0.1/24")
    engine.set_arp("eth0", "10.0.0.2", H1)
    engine.set_arp("eth1", "10.1.0.254", GW1)
    engine.set_route(PREFIX, TWO_LEGS)  # 10.2.0.254 never answers ARP
    frames = [flow_frame(sport) for sport in range(1000, 1200)]
    eth0 = engine.interface("eth0").index
    for second in range(1, 12):  # ARP gives up on 10.2.0.254 within its retries
        engine.receive_batch(eth0, frames, float(second))
        engine.tick(float(second) + 0.5)
        engine.transmit()
    engine.receive_batch(eth0, frames, 12.0)
    out = [f for f in engine.transmit() if Ether(f[1]).type == 0x0800]
    assert {ifindex for ifindex, _ in out} == {engine.interface("eth1").index}
    assert len(out) == len(frames)


@pytest.mark.parametrize("fast", [True, False])
def test_replacing_the_legs_keeps_forwarding_every_frame(fast: bool) -> None:
    engine = router(fast)
    frames = [flow_frame(sport) for sport in range(1000, 1100)]
    legs_taken(engine, frames)
    engine.set_route(PREFIX, [("10.2.0.254", "eth2"), ("10.3.0.254", "eth3")])
    assert set(names(engine, legs_taken(engine, frames))) == {"eth2", "eth3"}
    engine.set_route(PREFIX, [("10.3.0.254", "eth3")])
    assert set(names(engine, legs_taken(engine, frames))) == {"eth3"}
    route = next(r for r in engine.routes() if r.plen == 16)
    assert not route.nexthops and not route.flags & RouteFlags.ECMP


def test_replacing_is_one_change_and_the_same_set_is_no_change() -> None:
    engine = router()
    engine.drain_events()
    generation = engine.route_table.generation
    engine.set_route(PREFIX, TWO_LEGS)
    assert engine.route_table.generation == generation
    assert not [e for e in engine.drain_events() if e.kind.name.startswith("RTM")]
    engine.set_route(PREFIX, [("10.1.0.254", "eth1"), ("10.3.0.254", "eth3")])
    kinds = [e.kind for e in engine.drain_events() if e.kind.name.startswith("RTM")]
    assert kinds == [EventKind.RTM_CHANGE]
    assert engine.route_table.generation == generation + 1


def test_a_multipath_route_lists_its_legs() -> None:
    route = next(r for r in router().routes() if r.plen == 16)
    assert [(h.gateway, h.ifname) for h in route.nexthops] == [(0x0A0100FE, "eth1"),
                                                               (0x0A0200FE, "eth2")]
    assert route.flags & RouteFlags.ECMP and route.flags & RouteFlags.GATEWAY
    assert (route.gateway, route.ifname) == (0x0A0100FE, "eth1")  # the first leg


def test_removing_an_interface_drops_its_leg_and_then_the_route() -> None:
    engine = router()
    engine.remove_interface("eth2")
    route = next(r for r in engine.routes() if r.plen == 16)
    assert not route.nexthops and route.ifname == "eth1"
    assert set(names(engine, legs_taken(engine, [flow_frame(s) for s in range(50)]))) == {"eth1"}
    engine.remove_interface("eth1")
    assert not [r for r in engine.routes() if r.plen == 16]


def test_add_route_with_gateways_refuses_a_routed_prefix() -> None:
    engine = router()
    with pytest.raises(RouterError) as caught:
        engine.add_route(PREFIX, gateways=TWO_LEGS)
    assert caught.value.errno == EEXIST
    engine.delete_route(PREFIX)
    route = engine.add_route(PREFIX, gateways=TWO_LEGS)
    assert len(route.nexthops) == 2


@pytest.mark.parametrize("legs, field", [
    ([("10.2.0.254", "eth1")], "gateways[0].gateway"),
    ([("10.1.0.254", "eth1"), ("10.1.0.9", "eth2")], "gateways[1].gateway"),
    ([("172.16.0.1", "eth1")], "gateways[0].gateway"),
])
def test_a_gateway_not_on_link_through_its_interface_is_refused(legs: list[tuple[str, str]],
                                                                 field: str) -> None:
    engine = router()
    before = [(r.prefix, r.plen, r.nexthops, r.gateway) for r in engine.routes()]
    with pytest.raises(RouterError) as caught:
        engine.set_route("10.8.0.0/16", legs)
    assert (caught.value.errno, caught.value.field) == (ENETUNREACH, field)
    assert "not on-link through" in str(caught.value)
    with pytest.raises(RouterError):
        engine.set_route(PREFIX, legs)  # nor is an existing route touched
    assert [(r.prefix, r.plen, r.nexthops, r.gateway) for r in engine.routes()] == before


def test_a_single_gateway_route_through_a_named_interface_must_be_on_link() -> None:
    engine = router()
    with pytest.raises(RouterError) as caught:
        engine.add_route("10.8.0.0/16", gateway="10.2.0.254", ifname="eth1")
    assert (caught.value.errno, caught.value.field) == (ENETUNREACH, "gateway")
    route = engine.add_route("10.8.0.0/16", gateway="10.2.0.254", ifname="eth2")
    assert route.ifname == "eth2"


def test_an_address_whose_prefix_route_another_interface_owns_is_still_on_link() -> None:
    engine = router()
    engine.add_alias("eth3", "10.1.0.7/24")  # same prefix as eth1 (policy allow): no route
    assert not [r for r in engine.routes() if r.ifname == "eth3" and r.prefix == 0x0A010000]
    route = engine.set_route("10.8.0.0/16", [("10.1.0.254", "eth1"), ("10.1.0.253", "eth3")])
    assert [h.ifname for h in route.nexthops] == ["eth1", "eth3"]


def test_an_interface_route_makes_its_prefix_on_link() -> None:
    engine = router()
    engine.add_route("10.60.0.0/16", ifname="eth3")
    assert engine.set_route("10.8.0.0/16", [("10.60.1.1", "eth3")]).gateway == 0x0A3C0101


def test_one_of_our_own_addresses_is_no_gateway() -> None:
    with pytest.raises(RouterError) as caught:
        router().set_route("10.8.0.0/16", [("10.1.0.1", "eth1")])
    assert caught.value.errno == ENETUNREACH


def test_a_point_to_point_peer_is_on_link() -> None:
    engine = router()
    ng = engine.create_ng()
    engine.add_alias(ng, "10.77.0.1/32", dest="10.77.0.2")
    route = engine.set_route("10.8.0.0/16", [("10.77.0.2", ng), ("10.1.0.254", "eth1")])
    assert len(route.nexthops) == 2


@pytest.mark.parametrize("legs, field", [
    ([], "gateways"),
    ([("10.1.0.254", "eth1"), ("10.1.0.254", "eth1")], "gateways[1]"),
    ([("not-an-ip", "eth1")], "gateways[0].gateway"),
])
def test_bad_next_hop_lists_name_the_field(legs: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(RouterError) as caught:
        router().set_route("10.8.0.0/16", legs)
    assert (caught.value.errno, caught.value.field) == (EINVAL, field)


def test_set_route_does_not_replace_a_connected_route() -> None:
    with pytest.raises(RouterError) as caught:
        router().set_route("10.1.0.0/24", [("10.2.0.254", "eth2")])
    assert caught.value.errno == EEXIST

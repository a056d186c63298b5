"""Resolution: held packets, retransmits with backoff, giving up, expiry, limits, generations."""

from __future__ import annotations

import random

import pytest
from scapy.layers.l2 import ARP

from router.arp.config import ArpConfig
from router.arp.protocol import Arp
from router.errors import EHOSTUNREACH, EINVAL, EJUSTRETURN, ENOBUFS, ENXIO, RouterError
from router.events import EventKind
from router.link.ifnet import IfFlags
from tests.unit.arp.support import (
    MAC_A,
    MAC_B,
    QUICK,
    IfAddr,
    Recorder,
    World,
    ip,
    ipv4,
    make_ifp,
    reply,
    request,
    text,
)

TARGET = ip("10.0.0.2")


def _config(**changes: object) -> ArpConfig:
    base = {"probe_num": 0, "announce_num": 0, "seed": 7}
    base.update(changes)
    return ArpConfig(**base)  # type: ignore[arg-type]


def _answer(world: World, mac: bytes = MAC_A, who: str = "10.0.0.2") -> None:
    world.receive(reply(mac, who, "10.0.0.1"))


@pytest.fixture
def world() -> World:
    return World()


# -- resolving and holding -----------------------------------------------------------


def test_unknown_neighbour_holds_the_packet_and_broadcasts_a_request(world: World) -> None:
    packet = ipv4("10.0.0.1", "10.0.0.2")
    assert world.resolve(TARGET, packet) == (EJUSTRETURN, b"")
    [frame] = world.sink.take_frames()
    assert frame.dst == "ff:ff:ff:ff:ff:ff" and frame[ARP].op == 1
    assert frame[ARP].pdst == "10.0.0.2" and frame[ARP].psrc == "10.0.0.1"
    assert frame[ARP].hwdst == "00:00:00:00:00:00"
    assert world.entry_state(TARGET) == "INCOMPLETE"
    assert world.arp.stats.requests_out == 1


def test_solicitation_uses_the_held_packets_source_when_it_is_ours(world: World) -> None:
    world.add_address(world.eth0, ip("10.0.0.200"))
    world.resolve(TARGET, ipv4("10.0.0.200", "8.8.8.8"))
    assert world.sink.take_frames()[0][ARP].psrc == "10.0.0.200"


def test_solicitation_falls_back_to_our_closest_address(world: World) -> None:
    world.add_address(world.eth0, ip("192.168.5.1"))
    world.resolve(TARGET, ipv4("172.16.0.1", "8.8.8.8"))  # forwarded: source not ours
    assert world.sink.take_frames()[0][ARP].psrc == "10.0.0.1"


def test_more_packets_while_incomplete_are_held_without_new_requests(world: World) -> None:
    for n in range(3):
        assert world.resolve(TARGET, ipv4("10.0.0.1", "10.0.0.2", bytes([n]))) == (
            EJUSTRETURN, b"")
    assert len(world.sink.take_frames()) == 1


def test_reply_releases_held_packets_in_order(world: World) -> None:
    packets = [ipv4("10.0.0.1", "10.0.0.2", bytes([n])) for n in range(3)]
    for packet in packets:
        world.resolve(TARGET, packet)
    _answer(world)
    assert [(mac, pkts) for _, mac, pkts in world.sink.released] == [(MAC_A, packets)]
    assert world.resolve(TARGET) == (0, MAC_A)


def test_hold_queue_drops_oldest_first() -> None:
    world = World(_config(hold_limit=2))
    packets = [ipv4("10.0.0.1", "10.0.0.2", bytes([n])) for n in range(5)]
    for packet in packets:
        world.resolve(TARGET, packet)
    assert world.arp.stats.hold_drops == 3
    _answer(world)
    assert world.sink.released[0][2] == packets[-2:]


def test_resolve_without_route_is_einval_and_creates_nothing(world: World) -> None:
    assert world.resolve(ip("192.168.1.1")) == (EINVAL, b"")
    assert world.entry_state(ip("192.168.1.1")) is None and world.sink.frames == []


@pytest.mark.parametrize("flag", [IfFlags.NOARP, IfFlags.STATICARP])
def test_interface_without_arp_resolves_only_static_entries(world: World,
                                                            flag: IfFlags) -> None:
    world.eth0.flags |= flag
    assert world.resolve(TARGET) == (EINVAL, b"")
    assert world.sink.frames == []
    world.arp.set_static(world.eth0, TARGET, MAC_B)
    assert world.resolve(TARGET) == (0, MAC_B)


def test_resolve_without_a_table_is_enxio(world: World) -> None:
    stranger = make_ifp("eth9", 9, bytes.fromhex("020000000009"))
    assert world.resolve(TARGET, ifp=stranger) == (ENXIO, b"")


def test_static_entry_over_an_incomplete_one_releases_its_packets(world: World) -> None:
    packet = ipv4("10.0.0.1", "10.0.0.2")
    world.resolve(TARGET, packet)
    world.arp.set_static(world.eth0, TARGET, MAC_B)
    assert world.sink.released == [(world.eth0, MAC_B, [packet])]
    world.advance(60)
    assert world.sink.unreachable_ == [] and world.resolve(TARGET) == (0, MAC_B)


# -- retransmits and giving up -------------------------------------------------------


def test_retransmits_back_off_exponentially_up_to_the_cap() -> None:
    world = World(_config(mcast_solicit=6, retrans_time=1.0, retrans_backoff=2.0,
                          retrans_max=3.0))
    world.resolve(TARGET)
    sent_at = [0.0]
    world.sink.take_frames()
    for _ in range(60):
        world.advance(0.25)
        if world.sink.take_frames():
            sent_at.append(world.now)
    assert sent_at == [0.0, 1.0, 3.0, 6.0, 9.0, 12.0]  # gaps 1, 2, 3 (cap), 3, 3


def test_default_retransmit_schedule_is_three_requests_then_give_up(world: World) -> None:
    world.resolve(TARGET)
    world.advance(6.9)
    assert len(world.sink.take_frames()) == 3  # at 0, 1 and 3 s
    assert world.entry_state(TARGET) == "INCOMPLETE"
    world.advance(0.2)  # 7 s: 1 + 2 + 4
    assert world.entry_state(TARGET) == "FAILED"


def test_give_up_hands_held_packets_to_unreachable(world: World) -> None:
    packets = [ipv4("10.0.0.1", "10.0.0.2", bytes([n])) for n in range(2)]
    for packet in packets:
        world.resolve(TARGET, packet)
    world.advance(10)
    assert world.sink.unreachable_ == [(world.eth0, packets)]
    assert world.arp.stats.unreachable == 2
    assert world.sink.released == []


def test_failed_neighbour_is_ehostunreach_until_the_hold_down_ends(world: World) -> None:
    world.resolve(TARGET)
    world.advance(7.5)
    assert world.resolve(TARGET) == (EHOSTUNREACH, b"")
    world.sink.take_frames()
    world.advance(world.arp.config.failed_hold_time)
    assert world.entry_state(TARGET) is None
    assert world.resolve(TARGET) == (EJUSTRETURN, b"")  # a fresh attempt
    assert len(world.sink.take_frames()) == 1


def test_failed_neighbour_that_speaks_up_is_usable_again(world: World) -> None:
    world.resolve(TARGET)
    world.advance(7.5)
    _answer(world)
    assert world.resolve(TARGET) == (0, MAC_A)


# -- reachability over time ----------------------------------------------------------


def _reachable(world: World) -> None:
    world.resolve(TARGET)
    _answer(world)
    world.sink.take_frames()


def test_reachable_expires_to_stale_within_the_randomised_reachable_time(world: World) -> None:
    _reachable(world)
    config = world.arp.config
    world.advance(config.base_reachable_time * config.reachable_jitter_min - 0.01)
    assert world.entry_state(TARGET) == "REACHABLE"
    world.advance(config.base_reachable_time * (config.reachable_jitter_max
                                                - config.reachable_jitter_min) + 0.02)
    assert world.entry_state(TARGET) == "STALE"


def test_reachable_time_is_the_same_for_the_same_seed() -> None:
    def expiry(seed: int) -> float:
        world = World(_config(seed=seed))
        _reachable(world)
        table = world.arp.table(world.eth0)
        assert table is not None
        entry = table.lookup(TARGET)
        assert entry is not None
        return entry.reachable_until

    assert expiry(3) == expiry(3)
    assert expiry(3) != expiry(4)


def test_an_injected_random_source_drives_the_timers() -> None:
    class Fixed(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    sink = Recorder()
    world = World()
    arp = Arp(sink, world.routes.lookup, QUICK, rng=Fixed())
    arp.attach_interface(world.eth0)
    arp.address_added(world.eth0, IfAddr(ip("10.0.0.1")))
    arp.tick(0.0)
    arp.resolve(world.eth0, TARGET, b"", 0.0)
    arp.input(world.eth0, reply(MAC_A, "10.0.0.2", "10.0.0.1"), 0.0)
    assert [i.expire for i in arp.entries() if i.addr == TARGET] == [45.0]


def test_stale_entry_moves_to_delay_on_use_then_probes_unicast(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    world.sink.take_frames()
    assert world.entry_state(TARGET) == "STALE"
    assert world.resolve(TARGET) == (0, MAC_A)
    assert world.entry_state(TARGET) == "DELAY"
    world.advance(world.arp.config.delay_first_probe_time)
    assert world.entry_state(TARGET) == "PROBE"
    [probe] = world.sink.take_frames()
    assert probe.dst == text(MAC_A) and probe[ARP].pdst == "10.0.0.2"
    assert world.resolve(TARGET) == (0, MAC_A)  # still usable while probing
    _answer(world)
    assert world.entry_state(TARGET) == "REACHABLE"


def test_unanswered_unicast_probes_fail_the_neighbour(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    world.resolve(TARGET)
    world.advance(world.arp.config.delay_first_probe_time + 10)
    assert world.entry_state(TARGET) == "FAILED"
    assert world.resolve(TARGET) == (EHOSTUNREACH, b"")
    assert world.arp.stats.requests_out == 3


def test_confirmations_do_not_pile_up_timers(world: World) -> None:
    _reachable(world)
    heap = world.arp.reachability.timers
    before = len(heap)
    for n in range(200):
        world.now = n * 0.01
        _answer(world)
    assert len(heap) == before
    assert world.entry_state(TARGET) == "REACHABLE"


def test_confirmation_keeps_the_entry_reachable_past_the_first_deadline(world: World) -> None:
    _reachable(world)
    for _ in range(6):
        world.advance(10)
        _answer(world)
    assert world.now == 60 and world.entry_state(TARGET) == "REACHABLE"


def test_stale_entry_is_collected_only_above_gc_thresh1() -> None:
    small = World(_config(gc_thresh1=5))
    small.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    small.advance(small.arp.config.stale_time * 3)
    assert small.entry_state(TARGET) == "STALE"

    busy = World(_config(gc_thresh1=1))
    for host in (2, 3):
        busy.receive(request(MAC_A, f"10.0.0.{host}", "10.0.0.1"))
    busy.advance(busy.arp.config.stale_time + 0.1)
    assert busy.entry_state(TARGET) is None
    assert EventKind.ARP_DELETED in busy.sink.kinds()


# -- limits ----------------------------------------------------------------------------


def test_table_limit_evicts_the_oldest_dynamic_entries() -> None:
    world = World(_config(gc_thresh1=1, gc_thresh2=3, gc_thresh3=4))
    for host in range(2, 6):
        world.now = float(host)
        world.receive(request(MAC_A, f"10.0.0.{host}", "10.0.0.1"))
    world.now = 10.0
    world.receive(request(MAC_A, "10.0.0.6", "10.0.0.1"))  # at the hard limit
    present = [h for h in range(2, 7) if world.entry_state(ip(f"10.0.0.{h}"))]
    assert present == [4, 5, 6]
    assert world.arp.stats.gc_evictions == 2


def test_garbage_collection_never_takes_static_or_interface_entries() -> None:
    world = World(_config(gc_thresh1=1, gc_thresh2=1, gc_thresh3=2))
    for host in range(10, 20):
        world.arp.set_static(world.eth0, ip(f"10.0.0.{host}"), MAC_B)
    for host in range(2, 6):
        world.now += 1
        world.resolve(ip(f"10.0.0.{host}"))
    table = world.arp.table(world.eth0)
    assert table is not None
    statics = [e for e in table.entries.values() if e.static]
    assert len(statics) == 11  # ten static entries and our own address
    assert table.dynamic <= 2


def test_soft_limit_collects_at_most_once_per_gc_interval() -> None:
    world = World(_config(gc_thresh1=1, gc_thresh2=2, gc_thresh3=10, gc_interval=5.0))
    for host in range(2, 8):
        world.receive(request(MAC_A, f"10.0.0.{host}", "10.0.0.1"))
    # The first collection ran when the soft limit was hit; the rest wait 5 s.
    assert world.arp.stats.gc_evictions == 1
    world.now += 5
    world.receive(request(MAC_A, "10.0.0.9", "10.0.0.1"))
    assert world.arp.stats.gc_evictions > 1


def test_collection_prefers_failed_entries(world: World) -> None:
    world = World(_config(gc_thresh1=1, gc_thresh2=2, gc_thresh3=3))
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    world.now = 1.0
    world.resolve(ip("10.0.0.3"))
    world.advance(7.5)  # 10.0.0.3 failed, and is the newer entry
    world.receive(request(MAC_A, "10.0.0.4", "10.0.0.1"))
    assert world.entry_state(ip("10.0.0.3")) is None
    assert world.entry_state(ip("10.0.0.2")) == "STALE"


def test_a_new_resolution_takes_the_place_of_the_oldest_unresolved_entry() -> None:
    world = World(_config(unresolved_limit=2))
    world.resolve(ip("10.0.0.2"), ipv4("10.0.0.1", "10.0.0.2"))
    world.now = 1.0
    world.resolve(ip("10.0.0.3"))
    world.now = 2.0
    assert world.resolve(ip("10.0.0.4"))[0] == EJUSTRETURN
    assert [world.entry_state(ip(f"10.0.0.{h}")) for h in (2, 3, 4)] == [
        None, "INCOMPLETE", "INCOMPLETE"]
    assert world.arp.stats.unresolved_evictions == 1
    assert world.arp.stats.held_dropped == 1  # the evicted entry's packet
    assert world.arp.stats.table_full == 0 and world.arp.stats.gc_evictions == 0


def test_failed_entries_count_as_unresolved_and_go_first() -> None:
    world = World(_config(unresolved_limit=2))
    world.resolve(ip("10.0.0.2"))
    world.advance(7.5)  # it failed; held down, still unresolved
    assert world.entry_state(ip("10.0.0.2")) == "FAILED"
    world.resolve(ip("10.0.0.3"))
    world.resolve(ip("10.0.0.4"))
    assert world.entry_state(ip("10.0.0.2")) is None
    assert world.entry_state(ip("10.0.0.3")) == world.entry_state(ip("10.0.0.4")) == "INCOMPLETE"


def test_unresolved_entries_never_push_out_a_resolved_neighbour() -> None:
    world = World(_config(unresolved_limit=3, gc_thresh1=0, gc_thresh2=2, gc_thresh3=4))
    _reachable(world)
    for host in range(3, 40):
        world.now += 0.1
        assert world.resolve(ip(f"10.0.0.{host}"))[0] == EJUSTRETURN
    assert world.entry_state(TARGET) == "REACHABLE"
    table = world.arp.table(world.eth0)
    assert table is not None and len(table.unresolved) == 3 and table.dynamic == 4
    assert world.arp.stats.table_full == 0


def test_collection_never_takes_a_neighbour_in_use() -> None:
    # REACHABLE, DELAY and PROBE are in use; only FAILED and STALE entries go.
    world = World(_config(gc_thresh1=0, gc_thresh2=1, gc_thresh3=2))
    _reachable(world)
    world.receive(request(MAC_B, "10.0.0.3", "10.0.0.1"))  # STALE: collectable
    world.now += 1
    world.receive(request(MAC_B, "10.0.0.4", "10.0.0.1"))
    assert world.entry_state(TARGET) == "REACHABLE"
    assert world.entry_state(ip("10.0.0.3")) is None
    assert world.entry_state(ip("10.0.0.4")) == "STALE"


def test_a_table_full_of_neighbours_in_use_refuses_newcomers_with_enobufs() -> None:
    world = World(_config(gc_thresh1=0, gc_thresh2=1, gc_thresh3=2))
    for host in (2, 3):
        world.resolve(ip(f"10.0.0.{host}"))
        _answer(world, who=f"10.0.0.{host}")
    assert world.resolve(ip("10.0.0.4")) == (ENOBUFS, b"")
    assert world.entry_state(ip("10.0.0.4")) is None
    assert world.arp.stats.table_full == 1 and world.arp.stats.gc_evictions == 0
    world.advance(world.arp.config.base_reachable_time * 2)  # unused: STALE, collectable
    assert world.resolve(ip("10.0.0.4"))[0] == EJUSTRETURN


def test_at_the_hard_limit_unresolved_entries_give_way_before_a_refusal() -> None:
    world = World(_config(gc_thresh1=0, gc_thresh2=1, gc_thresh3=2))
    _reachable(world)
    assert world.resolve(ip("10.0.0.3"))[0] == EJUSTRETURN
    assert world.resolve(ip("10.0.0.4"))[0] == EJUSTRETURN  # 10.0.0.3 gives way
    assert world.entry_state(ip("10.0.0.3")) is None
    assert world.entry_state(TARGET) == "REACHABLE"
    assert world.arp.stats.unresolved_evictions == 1


# -- generation, events, deadlines ---------------------------------------------------


def test_generation_changes_when_an_entry_changes_and_not_on_plain_use(world: World) -> None:
    g0 = world.arp.generation(world.eth0)
    world.resolve(TARGET)
    g1 = world.arp.generation(world.eth0)
    assert g1 > g0
    _answer(world)
    g2 = world.arp.generation(world.eth0)
    assert g2 > g1
    for _ in range(5):
        world.resolve(TARGET)
    _answer(world)  # same MAC, still REACHABLE: nothing a cache depends on changed
    assert world.arp.generation(world.eth0) == g2
    _answer(world, MAC_B)
    assert world.arp.generation(world.eth0) > g2


def test_generation_changes_when_reachable_turns_stale(world: World) -> None:
    _reachable(world)
    before = world.arp.generation(world.eth0)
    world.advance(60)
    assert world.entry_state(TARGET) == "STALE"
    assert world.arp.generation(world.eth0) > before


def test_generation_of_an_interface_without_table_is_minus_one(world: World) -> None:
    assert world.arp.generation(make_ifp("eth9", 9, MAC_B)) == -1


def test_entry_life_is_told_in_events(world: World) -> None:
    world.sink.events.clear()
    world.resolve(TARGET)
    _answer(world)
    world.arp.delete(world.eth0, TARGET)
    kinds = world.sink.kinds()
    assert kinds == [EventKind.ARP_ADDED, EventKind.ARP_CHANGED, EventKind.ARP_DELETED]
    added, changed, _ = world.sink.events
    assert added.data["state"] == "INCOMPLETE" and added.ifname == "eth0"
    assert changed.data == {"addr": "10.0.0.2", "lladdr": "02:00:00:00:00:0a",
                            "state": "REACHABLE", "static": False, "published": False}


def test_next_deadline_is_the_earliest_timer(world: World) -> None:
    assert world.arp.next_deadline() is None
    world.resolve(TARGET)
    assert world.arp.next_deadline() == 1.0
    world.now = 0.5
    world.resolve(ip("10.0.0.3"))
    assert world.arp.next_deadline() == 1.0
    _answer(world)  # 10.0.0.2 resolved: its retransmit timer is void
    assert world.arp.next_deadline() == 1.5


def test_tick_before_any_deadline_changes_nothing(world: World) -> None:
    world.resolve(TARGET)
    world.sink.take_frames()
    world.arp.tick(0.99)
    assert world.sink.frames == [] and world.entry_state(TARGET) == "INCOMPLETE"


def test_deleted_entry_drops_its_held_packets_at_the_next_tick(world: World) -> None:
    world.resolve(TARGET)
    world.arp.delete(world.eth0, TARGET)
    assert world.arp.next_deadline() == world.now
    world.arp.tick(world.now)
    assert world.arp.stats.held_dropped == 1
    assert world.sink.unreachable_ == [] and world.sink.released == []


def test_configuration_refuses_nonsense() -> None:
    with pytest.raises(RouterError) as caught:
        ArpConfig(retrans_time=0)
    assert caught.value.errno == EINVAL and caught.value.field == "retrans_time"
    with pytest.raises(RouterError) as caught:
        ArpConfig(gc_thresh2=2000)
    assert caught.value.field == "gc_thresh3"
    with pytest.raises(RouterError):
        ArpConfig(probe_min=3.0, probe_max=2.0)


def test_address_added_before_any_clock_starts_from_time_zero() -> None:
    sink = Recorder()
    world = World(with_address=False)
    arp = Arp(sink, world.routes.lookup, ArpConfig(probe_num=3, seed=1))
    arp.attach_interface(world.eth0)
    arp.address_added(world.eth0, IfAddr(ip("10.0.0.1")))
    deadline = arp.next_deadline()
    assert deadline is not None and 0.0 <= deadline <= 1.0

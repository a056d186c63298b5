"""Address conflict detection (RFC 5227): generated from ACD_TRANSITIONS, then scenarios."""

from __future__ import annotations

import itertools

import pytest
from scapy.layers.l2 import ARP, Ether

from router.arp.acd import ACD_TRANSITIONS, AcdAction, AcdEvent, AcdRecord, AcdState
from router.arp.config import ArpConfig
from router.events import EventKind
from router.link.ifnet import IfFlags
from tests.unit.arp.support import (
    MAC_A,
    World,
    ip,
    ipv4,
    reply,
    request,
    text,
)

Ac = AcdAction
ADDR = ip("10.0.0.1")
NOW = 50.0
SENTINEL = NOW + 999.0
ACD = ArpConfig(probe_num=3, seed=11)  # RFC 5227 PROBE_NUM (opt-in), 2 announcements


def _record_in(state: AcdState) -> tuple[World, AcdRecord]:
    world = World(ACD, with_address=False)
    world.now = NOW
    detector = world.arp.conflicts
    record = detector.start(world.eth0, ADDR, NOW)
    record.state = state
    detector.timers.arm(record, SENTINEL)
    return world, record


def _is_probe(frame: Ether) -> bool:
    return frame[ARP].op == 1 and frame[ARP].psrc == "0.0.0.0" and frame[ARP].pdst == "10.0.0.1"


def _is_announcement(frame: Ether) -> bool:
    arp = frame[ARP]
    return arp.op == 1 and arp.psrc == arp.pdst == "10.0.0.1" and frame.dst == "ff:ff:ff:ff:ff:ff"


ROWS = sorted(ACD_TRANSITIONS.items(), key=lambda r: (r[0][0].value, r[0][1].value))


@pytest.mark.parametrize(("pair", "outcome"), ROWS,
                         ids=[f"{s.value}-{e.value}" for (s, e), _ in ROWS])
def test_acd_transition_row(pair: tuple[AcdState, AcdEvent],
                            outcome: tuple[AcdState, tuple[AcdAction, ...]]) -> None:
    state, event = pair
    next_state, actions = outcome
    world, record = _record_in(state)
    config = world.arp.config
    assert world.arp.conflicts.step(record, event, NOW, MAC_A)
    assert record.state is next_state

    frames = world.sink.take_frames()
    expected_probes = 1 if Ac.SEND_PROBE in actions else 0
    expected_announcements = (Ac.SEND_ANNOUNCE in actions) + (Ac.DEFEND in actions)
    assert sum(map(_is_probe, frames)) == expected_probes
    assert sum(map(_is_announcement, frames)) == expected_announcements
    assert len(frames) == expected_probes + expected_announcements

    conflicts = [e for e in world.sink.events if e.kind is EventKind.ARP_CONFLICT]
    if Ac.REPORT_CONFLICT in actions:
        [event_] = conflicts
        assert event_.data["addr"] == "10.0.0.1" and event_.data["lladdr"] == text(MAC_A)
        assert event_.data["defended"] == (Ac.DEFEND in actions)
    else:
        assert conflicts == []
    assert (record.last_defence == NOW) == (Ac.DEFEND in actions)

    if Ac.ARM_PROBE_GAP in actions:
        assert NOW + config.probe_min <= record.timer_at <= NOW + config.probe_max
    elif Ac.ARM_ANNOUNCE in actions:
        assert record.timer_at == NOW + config.announce_interval
    elif Ac.ARM_NOW in actions:
        assert record.timer_at == NOW
    elif next_state is AcdState.CONFLICTED:
        assert record.timer_at == 0.0
    else:
        assert record.timer_at == SENTINEL


OUTSIDE = [p for p in itertools.product(AcdState, AcdEvent) if p not in ACD_TRANSITIONS]


@pytest.mark.parametrize("pair", OUTSIDE, ids=[f"{s.value}-{e.value}" for s, e in OUTSIDE])
def test_acd_pair_outside_the_table_changes_nothing(pair: tuple[AcdState, AcdEvent]) -> None:
    state, event = pair
    world, record = _record_in(state)
    assert not world.arp.conflicts.step(record, event, NOW, MAC_A)
    assert record.state is state and record.timer_at == SENTINEL
    assert world.sink.frames == [] and world.sink.events == []


def test_conflicted_is_the_only_state_without_a_way_out() -> None:
    sources = {state for state, _ in ACD_TRANSITIONS}
    assert set(AcdState) - sources == {AcdState.CONFLICTED}


def test_the_last_probe_is_followed_by_announce_wait() -> None:
    world, record = _record_in(AcdState.PROBING)
    record.probes_sent = world.arp.config.probe_num - 1
    world.arp.conflicts.step(record, AcdEvent.PROBE_DUE, NOW)
    assert record.timer_at == NOW + world.arp.config.announce_wait


# -- scenarios -----------------------------------------------------------------------


def _timeline(world: World, seconds: float) -> list[tuple[float, Ether]]:
    seen = []
    for _ in range(int(seconds / 0.05)):
        world.advance(0.05)
        seen.extend((round(world.now, 2), frame) for frame in world.sink.take_frames())
    return seen


def test_new_address_is_probed_three_times_then_announced_twice() -> None:
    world = World(ACD)
    config = world.arp.config
    seen = _timeline(world, 15)
    probes = [t for t, f in seen if _is_probe(f)]
    announcements = [t for t, f in seen if _is_announcement(f)]
    assert len(probes) == 3 and len(announcements) == 2 and len(seen) == 5
    assert 0 <= probes[0] <= config.probe_wait + 0.05
    for earlier, later in itertools.pairwise(probes):
        assert config.probe_min - 0.05 <= later - earlier <= config.probe_max + 0.05
    assert announcements[0] - probes[-1] == pytest.approx(config.announce_wait, abs=0.06)
    assert announcements[1] - announcements[0] == pytest.approx(config.announce_interval,
                                                                abs=0.06)
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.DEFENDING
    assert world.arp.stats.probes_out == 3 and world.arp.stats.announcements_out == 2


def test_address_is_not_answered_while_probing_and_answered_after() -> None:
    world = World(ACD)
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.sink.take_frames() == []
    assert world.entry_state(ip("10.0.0.2")) is None
    _timeline(world, 10)
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    [frame] = world.sink.take_frames()
    assert frame[ARP].op == 2 and frame[ARP].psrc == "10.0.0.1"


def test_reply_from_another_mac_during_probing_is_a_conflict() -> None:
    world = World(ACD)
    world.receive(reply(MAC_A, "10.0.0.1", "0.0.0.0"))
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.CONFLICTED
    [event] = [e for e in world.sink.events if e.kind is EventKind.ARP_CONFLICT]
    assert event.data["lladdr"] == text(MAC_A) and event.data["state"] == "CONFLICTED"
    world.sink.take_frames()
    later = _timeline(world, 15)
    assert later == []  # no more probes, no announcements
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.sink.frames == []  # a conflicted address is never answered for


def test_probe_from_another_host_during_probing_is_a_conflict() -> None:
    world = World(ACD)
    world.receive(request(MAC_A, "0.0.0.0", "10.0.0.1"))
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.CONFLICTED
    assert world.arp.stats.conflicts == 1


def test_probe_for_another_address_during_probing_is_no_conflict() -> None:
    world = World(ACD)
    world.receive(request(MAC_A, "0.0.0.0", "10.0.0.9"))
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.PROBING


def test_claim_after_announcing_is_defended_once_per_defend_interval() -> None:
    world = World(ACD)
    _timeline(world, 12)
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.DEFENDING
    world.sink.events.clear()

    world.receive(request(MAC_A, "10.0.0.1", "10.0.0.1"))
    assert [_is_announcement(f) for f in world.sink.take_frames()] == [True]
    world.advance(5)
    world.receive(request(MAC_A, "10.0.0.1", "10.0.0.1"))
    assert world.sink.take_frames() == []  # defended 5 s ago: report only
    world.advance(5)
    world.receive(reply(MAC_A, "10.0.0.1", "10.0.0.1"))
    assert [_is_announcement(f) for f in world.sink.take_frames()] == [True]

    conflicts = [e for e in world.sink.events if e.kind is EventKind.ARP_CONFLICT]
    assert [e.data["defended"] for e in conflicts] == [True, False, True]
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.DEFENDING
    table = world.arp.table(world.eth0)
    assert table is not None
    own = table.lookup(ADDR)
    assert own is not None and own.lladdr == world.eth0.lladdr  # never learned


def test_probe_num_zero_sends_gratuitous_arp_at_once() -> None:
    world = World(ArpConfig(probe_num=0, announce_num=2, seed=1))
    frames = world.sink.take_frames()
    assert [_is_announcement(f) for f in frames] == [True]
    assert frames[0][ARP].hwsrc == text(world.eth0.lladdr)
    world.advance(2.0)
    assert [_is_announcement(f) for f in world.sink.take_frames()] == [True]


def test_scrub_address_stops_detection_and_deletes_the_entry() -> None:
    world = World(ACD)
    world.arp.scrub_address(world.eth0, ADDR)
    assert world.arp.acd_state(world.eth0, ADDR) is None
    assert world.entry_state(ADDR) is None
    assert _timeline(world, 15) == []


def test_readding_a_conflicted_address_starts_probing_again() -> None:
    world = World(ACD)
    world.receive(request(MAC_A, "0.0.0.0", "10.0.0.1"))
    world.add_address(world.eth0, ADDR)
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.PROBING
    assert sum(_is_probe(f) for _, f in _timeline(world, 10)) == 3


def test_readding_a_defended_address_does_not_probe_again() -> None:
    world = World(ACD)
    _timeline(world, 12)
    world.add_address(world.eth0, ADDR)
    assert world.arp.acd_state(world.eth0, ADDR) is AcdState.DEFENDING
    assert _timeline(world, 10) == []


def test_noarp_interface_gets_its_entry_but_no_probes() -> None:
    world = World(ACD, with_address=False)
    world.eth0.flags |= IfFlags.NOARP
    world.add_address(world.eth0, ADDR)
    assert world.entry_state(ADDR) == "PERMANENT"
    assert world.arp.acd_state(world.eth0, ADDR) is None
    assert _timeline(world, 10) == []


def test_a_tentative_address_is_never_a_solicitation_source() -> None:
    world = World(ACD)
    world.resolve(ip("10.0.0.2"), ipv4("10.0.0.1", "10.0.0.2"))
    requests = [f for f in world.sink.take_frames() if f[ARP].pdst == "10.0.0.2"]
    assert [f[ARP].psrc for f in requests] == ["0.0.0.0"]


def test_detaching_the_interface_stops_detection() -> None:
    world = World(ACD)
    world.arp.detach_interface(world.eth0)
    assert world.arp.acd_state(world.eth0, ADDR) is None
    assert world.arp.next_deadline() is None

"""Tests generated from the reachability transition table (router/arp/nud.py).

Every row is applied to an entry in its state, and the observable effect of
each listed action is checked — and the absence of every action not listed.
Every pair outside the table is checked to change nothing.
"""

from __future__ import annotations

import itertools

import pytest
from scapy.layers.l2 import ARP

from router.arp.lltable import LleFlags, LlEntry, NudState
from router.arp.nud import STATES_WITH_MAC, TRANSITIONS, NudAction, NudEvent
from router.events import EventKind
from tests.unit.arp.support import MAC_A, MAC_B, World, ip, ipv4

A = NudAction
TARGET = ip("10.0.0.2")
HELD = ipv4("10.0.0.1", "10.0.0.50", b"held")
NEW = ipv4("10.0.0.1", "10.0.0.50", b"new")
NOW = 100.0
SENTINEL = NOW + 999.0  # a timer no row arms


def _entry_in(world: World, state: NudState) -> LlEntry:
    table = world.arp.table(world.eth0)
    assert table is not None
    _, entry = table.create(TARGET, now=NOW - 10)
    assert entry is not None
    world.sink.events.clear()
    if state is NudState.NONE:
        return entry
    entry.set_state(state)
    if state in STATES_WITH_MAC:
        entry.lladdr = MAC_A
        entry.flags |= LleFlags.VALID
    if state is NudState.INCOMPLETE:
        entry.hold.append(HELD)
        entry.probes = 1
    if state is NudState.REACHABLE:
        entry.reachable_until = NOW + 1
    world.arp.reachability.timers.arm(entry, SENTINEL)
    world.sink.events.clear()
    return entry


def _apply(state: NudState, event: NudEvent) -> tuple[World, LlEntry, bool, bytes]:
    world = World()
    world.now = NOW
    entry = _entry_in(world, state)
    lladdr = MAC_A if event in (NudEvent.REPLY_SAME, NudEvent.HEARD_SAME) else MAC_B
    before_mac = entry.lladdr
    took = world.arp.reachability.step(entry, event, NOW, lladdr=lladdr, packet=NEW)
    return world, entry, took, before_mac


ROWS = sorted(TRANSITIONS.items(), key=lambda row: (row[0][0].value, row[0][1].value))


@pytest.mark.parametrize(("pair", "outcome"), ROWS,
                         ids=[f"{s.value}-{e.value}" for (s, e), _ in ROWS])
def test_transition_row(pair: tuple[NudState, NudEvent],
                        outcome: tuple[NudState, tuple[NudAction, ...]]) -> None:
    state, event = pair
    next_state, actions = outcome
    world, entry, took, before_mac = _apply(state, event)
    assert took
    config = world.arp.config
    table = world.arp.table(world.eth0)
    assert table is not None

    if A.REMOVE in actions:
        assert table.lookup(TARGET) is None and entry.flags & LleFlags.DELETED
        assert EventKind.ARP_DELETED in world.sink.kinds()
    else:
        assert table.lookup(TARGET) is entry
        assert entry.state is next_state
        assert entry.ready == (next_state in {NudState.REACHABLE, NudState.DELAY,
                                              NudState.PROBE})

    kinds = world.sink.kinds()
    if A.REMOVE in actions:
        assert kinds == [EventKind.ARP_DELETED]
    elif state is NudState.NONE:
        assert kinds == [EventKind.ARP_ADDED]
    elif next_state is not state or entry.lladdr != before_mac:
        assert kinds == [EventKind.ARP_CHANGED]
    else:
        assert kinds == []

    assert bool(entry.hold and entry.hold[-1] == NEW) == (A.HOLD in actions)

    if A.SET_MAC in actions:
        assert entry.lladdr == MAC_B and entry.flags & LleFlags.VALID
    elif A.FORGET_MAC in actions:
        assert entry.lladdr == b"" and not entry.flags & LleFlags.VALID
    else:
        assert entry.lladdr == before_mac

    if A.CONFIRM in actions:
        low = config.base_reachable_time * config.reachable_jitter_min
        assert entry.reachable_until >= NOW + low

    # Only INCOMPLETE entries hold packets; releasing or giving back none sends nothing.
    held = [[HELD]] if state is NudState.INCOMPLETE else []
    released = [pkts for _, _, pkts in world.sink.released]
    assert released == (held if A.RELEASE in actions else [])
    given_back = [pkts for _, pkts in world.sink.unreachable_]
    assert given_back == (held if A.UNREACHABLE in actions else [])

    frames = world.sink.take_frames()
    if A.SOLICIT_BROADCAST in actions:
        assert [f.dst for f in frames] == ["ff:ff:ff:ff:ff:ff"]
    elif A.SOLICIT_UNICAST in actions:
        assert [f.dst for f in frames] == [MAC_A.hex(":")]
    else:
        assert frames == []
    for frame in frames:
        assert frame[ARP].op == 1 and frame[ARP].pdst == "10.0.0.2"

    expected_timer = {
        A.ARM_RETRANSMIT: NOW + config.retransmit_interval(entry.probes),
        A.ARM_REACHABLE: entry.reachable_until,
        A.ARM_DELAY: NOW + config.delay_first_probe_time,
        A.ARM_STALE: NOW + config.stale_time,
        A.ARM_FAILED: NOW + config.failed_hold_time,
    }
    armed = [expected_timer[a] for a in actions if a in expected_timer]
    if A.REMOVE in actions:
        assert entry.timer_at == 0.0
    elif armed:
        assert entry.timer_at == pytest.approx(armed[-1])
    else:
        assert entry.timer_at == SENTINEL


OUTSIDE = [pair for pair in itertools.product(NudState, NudEvent)
           if pair not in TRANSITIONS and pair[0] is not NudState.PERMANENT]


@pytest.mark.parametrize("pair", OUTSIDE, ids=[f"{s.value}-{e.value}" for s, e in OUTSIDE])
def test_pair_outside_the_table_changes_nothing(pair: tuple[NudState, NudEvent]) -> None:
    state, event = pair
    world, entry, took, before_mac = _apply(state, event)
    assert not took
    assert entry.state is state and entry.lladdr == before_mac
    assert entry.timer_at == (SENTINEL if state is not NudState.NONE else 0.0)
    assert world.sink.frames == [] and world.sink.released == []
    assert world.sink.unreachable_ == [] and world.sink.events == []


def test_permanent_entries_are_outside_the_machine() -> None:
    assert not any(state is NudState.PERMANENT for state, _ in TRANSITIONS)
    assert not any(nxt is NudState.PERMANENT for nxt, _ in TRANSITIONS.values())


def test_every_state_of_the_machine_is_reachable_from_none() -> None:
    seen, todo = {NudState.NONE}, [NudState.NONE]
    while todo:
        state = todo.pop()
        for (src, _), (dst, _) in TRANSITIONS.items():
            if src is state and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    assert seen == set(NudState) - {NudState.PERMANENT}


def test_every_state_can_end_in_removal() -> None:
    ends = {NudState.NONE}
    changed = True
    while changed:
        changed = False
        for (src, _), (dst, _) in TRANSITIONS.items():
            if dst in ends and src not in ends:
                ends.add(src)
                changed = True
    assert ends == set(NudState) - {NudState.PERMANENT}


def test_only_a_remove_leads_back_to_none() -> None:
    for (src, event), (dst, actions) in TRANSITIONS.items():
        assert (dst is NudState.NONE) == (A.REMOVE in actions), (src, event)


def test_only_news_from_the_neighbour_sets_its_mac() -> None:
    news = {NudEvent.REPLY_NEW, NudEvent.HEARD_NEW}
    for (src, event), (_, actions) in TRANSITIONS.items():
        assert (A.SET_MAC in actions) == (event in news), (src, event)


def test_every_soliciting_row_arms_the_retransmit_timer() -> None:
    for pair, (_, actions) in TRANSITIONS.items():
        solicits = A.SOLICIT_BROADCAST in actions or A.SOLICIT_UNICAST in actions
        assert solicits == (A.ARM_RETRANSMIT in actions), pair

"""Fuzzing ARP input and random operation sequences: never raises, invariants hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.arp.config import ArpConfig
from router.arp.lltable import READY_STATES, UNRESOLVED_STATES, LleFlags, NudState
from router.errors import RouterError
from router.wire import arp as wire
from tests.unit.arp.support import MAC_A, MAC_B, World, ip, reply, request

SMALL = ArpConfig(probe_num=1, announce_num=1, gc_thresh1=2, gc_thresh2=4, gc_thresh3=6,
                  hold_limit=3, unresolved_limit=3, seed=5)


def _counters(world: World) -> dict[str, int]:
    return world.arp.stats.as_dict()


def _check_counters_grew(before: dict[str, int], after: dict[str, int]) -> None:
    assert all(after[name] >= value for name, value in before.items()), (before, after)


def _check_tables(world: World) -> None:
    config = world.arp.config
    total = 0
    for info in world.arp.entries():
        assert info.expire == 0.0 or not info.static
    table = world.arp.table(world.eth0)
    assert table is not None
    for addr, entry in table.entries.items():
        assert entry.addr == addr and not entry.flags & LleFlags.DELETED
        assert entry.state is not NudState.NONE
        assert entry.ready == (entry.state in READY_STATES)
        if entry.ready:
            assert len(entry.lladdr) == 6
        assert len(entry.hold) <= config.hold_limit
        assert not entry.hold or entry.state is NudState.INCOMPLETE
        total += not entry.static
    assert table.dynamic == total <= config.gc_thresh3
    unresolved = [e for e in table.entries.values() if e.state in UNRESOLVED_STATES]
    assert set(table.unresolved) == set(unresolved)
    assert len(unresolved) <= config.unresolved_limit
    assert table.ifaddrs == {a: e for a, e in table.entries.items() if e.flags & LleFlags.IFADDR}


_VALID = st.builds(
    lambda op, mac, host, target: (request if op == 1 else reply)(mac, f"10.0.0.{host}",
                                                                  f"10.0.0.{target}"),
    st.sampled_from([1, 2]), st.sampled_from([MAC_A, MAC_B]), st.integers(0, 9),
    st.integers(0, 9),
)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_VALID))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data) - 1))
        data[where] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data) + 8))
    return bytes(data[:cut]) + draw(st.binary(max_size=max(0, cut - len(data))))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=60), _mutated(), _VALID), max_size=12))
def test_arp_input_never_raises_and_counters_only_grow(frames: list[bytes]) -> None:
    world = World(SMALL)
    for frame in frames:
        before = _counters(world)
        world.receive(frame)
        _check_counters_grew(before, _counters(world))
        world.advance(0.3)
        _check_tables(world)


def _every_frame_parses(world: World) -> None:
    for _, frame in world.sink.frames:
        assert frame[12:14] == b"\x08\x06"
        wire.parse(frame[14:])


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["input", "resolve", "advance", "static", "delete", "flush",
                         "address", "scrub"]),
        st.integers(0, 9),
        st.one_of(_VALID, _mutated()),
        st.floats(0.0, 12.0),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_OPS)
def test_random_operations_keep_the_tables_consistent(
        ops: list[tuple[str, int, bytes, float]]) -> None:
    world = World(SMALL)
    statics: dict[int, bytes] = {}
    for op, host, frame, seconds in ops:
        addr = ip(f"10.0.0.{host}")
        before = _counters(world)
        try:
            if op == "input":
                world.receive(frame)
            elif op == "resolve":
                world.resolve(addr)
            elif op == "advance":
                world.advance(seconds)
            elif op == "static":
                world.arp.set_static(world.eth0, addr, MAC_B)
                statics[addr] = MAC_B
            elif op == "delete":
                world.arp.delete(world.eth0, addr)
                statics.pop(addr, None)
            elif op == "flush":
                world.arp.flush(world.eth0)
            elif op == "address":
                world.add_address(world.eth0, addr)
                statics.pop(addr, None)
            else:
                world.arp.scrub_address(world.eth0, addr)
                statics.pop(addr, None)
        except RouterError:
            pass
        _check_counters_grew(before, _counters(world))
        _check_tables(world)
        table = world.arp.table(world.eth0)
        assert table is not None
        for static_addr, mac in statics.items():
            entry = table.lookup(static_addr)
            assert entry is not None and entry.lladdr == mac and entry.static
        world.arp.tick(world.now)
        deadline = world.arp.next_deadline()
        assert deadline is None or deadline > world.now
    _every_frame_parses(world)

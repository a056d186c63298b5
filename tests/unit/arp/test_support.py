"""The ARP test harness itself: a broken harness would make other tests vacuous."""

from __future__ import annotations

from scapy.layers.l2 import ARP

from tests.unit.arp.support import MAC_A, World, ip, request


def test_recorder_dissects_the_frames_arp_sends() -> None:
    world = World()
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    [frame] = world.sink.take_frames()
    assert frame[ARP].op == 2 and frame[ARP].pdst == "10.0.0.2"
    assert world.sink.frames == []


def test_advance_runs_timers_at_their_deadlines() -> None:
    world = World()
    world.resolve(ip("10.0.0.2"))
    world.advance(0.5)
    assert len(world.sink.take_frames()) == 1  # only the first request
    world.advance(0.6)
    assert len(world.sink.take_frames()) == 1  # the retransmit at 1.0 s

"""The data-plane loop against in-memory links and a recording engine (no root, no sockets).

Each fake link's ``fileno`` is an eventfd that is readable while frames wait,
so the loop's ``poll`` sees it exactly like a receive ring.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.dataplane import DataPlane, wanted_promiscuous
from agents.gate import Gate
from router.link.ifnet import IfFlags, Interface


class FakeLink:
    def __init__(self, ifname: str, mac: bytes) -> None:
        self._ifname = ifname
        self._mac = mac
        self._promiscuous = False
        self.inbox: deque[bytes] = deque()
        self.sent: list[list[bytes]] = []
        self.promisc_changes: list[bool] = []
        self.fd = os.eventfd(0, os.EFD_NONBLOCK)

    @property
    def ifname(self) -> str:
        return self._ifname

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def promiscuous(self) -> bool:
        return self._promiscuous

    def deliver(self, *frames: bytes) -> None:
        self.inbox.extend(frames)
        os.eventfd_write(self.fd, 1)

    def fileno(self) -> int:
        return self.fd

    def recv_batch(self, max_frames: int = 256) -> list[bytes]:
        out = [self.inbox.popleft() for _ in range(min(max_frames, len(self.inbox)))]
        if not self.inbox:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self.fd)
        return out

    def pending(self) -> bool:
        return bool(self.inbox)

    def send_batch(self, frames: list[bytes]) -> int:
        self.sent.append(list(frames))
        return len(frames)

    def set_promiscuous(self, on: bool) -> None:
        self._promiscuous = on
        self.promisc_changes.append(on)


@dataclass
class RecordingEngine:
    """Records receive/tick calls; ``out`` is what ``transmit`` hands over next."""

    ifps: dict[str, Interface] = field(default_factory=dict)
    received: list[tuple[int, list[bytes], float]] = field(default_factory=list)
    ticks: list[float] = field(default_factory=list)
    out: list[tuple[int, bytes]] = field(default_factory=list)
    deadline: float | None = None
    fail_next: bool = False

    def add(self, name: str, index: int, mac: bytes) -> Interface:
        ifp = Interface(name, flags=IfFlags.UP | IfFlags.BROADCAST)
        ifp.index = index
        ifp.lladdr = mac
        self.ifps[name] = ifp
        return ifp

    def receive_batch(self, ifindex: int, frames: list[bytes], now: float) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("engine bug")
        self.received.append((ifindex, list(frames), now))

    def tick(self, now: float) -> None:
        self.ticks.append(now)

    def transmit(self) -> list[tuple[int, bytes]]:
        out, self.out = self.out, []
        return out

    def next_deadline(self) -> float | None:
        return self.deadline

    def interface(self, name: str) -> Interface | None:
        return self.ifps.get(name)

    # what the gate drains after every entry
    def drain_events(self) -> list[Any]:
        return []

    def drain_hook_output(self) -> list[Any]:
        return []

    def drain_taps(self) -> list[Any]:
        return []

    def client_output_pending(self) -> bool:
        return False


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"


@pytest.fixture
def setup() -> Any:
    engine = RecordingEngine()
    engine.add("eth0", 1, MAC_A)
    engine.add("eth1", 2, MAC_B)
    links = {1: FakeLink("eth0", MAC_A), 2: FakeLink("eth1", MAC_B)}
    clock = Clock()
    gate = Gate(engine)
    plane = DataPlane(gate, links, clock=clock, max_batch=4, max_wait=0.05)
    yield engine, links, clock, gate, plane
    plane.stop()


def test_received_batch_reaches_engine_with_its_ifindex_and_the_clock(setup: Any) -> None:
    engine, links, clock, _gate, plane = setup
    links[2].deliver(b"f1", b"f2")
    plane.run_once()
    assert engine.received == [(2, [b"f1", b"f2"], clock.now)]


def test_output_is_grouped_per_link_and_sent_as_one_batch_each(setup: Any) -> None:
    engine, links, _clock, _gate, plane = setup
    engine.out = [(1, b"a1"), (2, b"b1"), (1, b"a2"), (2, b"b2"), (1, b"a3")]
    plane.run_once()
    assert links[1].sent == [[b"a1", b"a2", b"a3"]]
    assert links[2].sent == [[b"b1", b"b2"]]
    assert plane.stats.frames_out == 5


def test_output_for_an_ifindex_without_a_link_is_counted_not_sent(setup: Any) -> None:
    engine, links, _clock, _gate, plane = setup
    engine.out = [(9, b"lost"), (1, b"kept")]
    plane.run_once()
    assert plane.stats.tx_unroutable == 1
    assert links[1].sent == [[b"kept"]]


def test_tick_runs_only_once_the_deadline_is_due(setup: Any) -> None:
    engine, _links, clock, _gate, plane = setup
    engine.deadline = 101.0
    plane.run_once()  # learns the deadline
    assert engine.ticks == []
    clock.now = 100.5
    plane.run_once()
    assert engine.ticks == []
    clock.now = 101.0
    plane.run_once()
    assert engine.ticks == [101.0]


def test_wait_is_bounded_by_the_deadline_and_by_max_wait(setup: Any) -> None:
    engine, _links, clock, _gate, plane = setup
    assert plane._timeout() == pytest.approx(0.05)  # no deadline: max_wait
    engine.deadline = 100.01
    plane.run_once()
    assert plane._timeout() == pytest.approx(0.01)
    clock.now = 200.0  # overdue: no wait at all
    assert plane._timeout() == 0.0


def test_frames_beyond_one_batch_are_taken_next_iteration_without_waiting(setup: Any) -> None:
    engine, links, _clock, _gate, plane = setup
    plane.max_wait = 5.0  # a wait would show: the eventfd of the fake ring stays readable
    links[1].deliver(*[bytes([i]) for i in range(6)])
    started = time.monotonic()
    plane.run_once()
    plane.run_once()  # a ring still holds frames: taken at once
    assert time.monotonic() - started < 1.0
    assert [len(frames) for _i, frames, _t in engine.received] == [4, 2]


def test_an_iteration_with_frames_waiting_never_polls(setup: Any) -> None:
    """Frames already in a ring are taken without asking poll (which costs a syscall)."""
    engine, links, _clock, _gate, plane = setup
    polled: list[int] = []
    real_poll = plane._poll

    class CountingPoll:
        def poll(self, millis: int) -> list[tuple[int, int]]:
            polled.append(millis)
            return real_poll.poll(millis)

    plane._poll = CountingPoll()  # type: ignore[assignment]
    links[1].deliver(b"f1")
    plane.run_once()
    assert polled == []
    assert engine.received[0][1] == [b"f1"]
    plane.run_once()  # every ring empty now: it sleeps in poll (bounded by max_wait)
    assert polled == [50]


def test_api_call_through_the_gate_wakes_the_running_loop(setup: Any) -> None:
    _engine, links, _clock, gate, plane = setup
    plane.max_wait = 5.0  # without the wake-up the frame would wait seconds
    plane.start()
    time.sleep(0.05)  # let the loop settle into its long wait
    started = time.monotonic()
    gate.call(lambda e: e.out.append((1, b"garp")))
    deadline = time.monotonic() + 2.0
    while not links[1].sent and time.monotonic() < deadline:
        time.sleep(0.005)
    assert links[1].sent == [[b"garp"]]
    assert time.monotonic() - started < 1.0


def test_promiscuous_follows_the_engine_mac_and_flag(setup: Any) -> None:
    _engine, links, _clock, gate, plane = setup
    plane.run_once()
    assert links[1].promisc_changes == []  # same MAC as the NIC: not needed
    gate.call(lambda e: setattr(e.ifps["eth0"], "lladdr", b"\x02\xaa\xaa\xaa\xaa\xaa"))
    plane.run_once()
    assert links[1].promiscuous is True
    gate.call(lambda e: setattr(e.ifps["eth0"], "lladdr", MAC_A))
    plane.run_once()
    assert links[1].promisc_changes == [True, False]
    gate.call(lambda e: setattr(e.ifps["eth1"], "flags", e.ifps["eth1"].flags | IfFlags.PROMISC))
    plane.run_once()
    assert links[2].promiscuous is True


def test_wanted_promiscuous_is_false_without_an_interface() -> None:
    assert wanted_promiscuous(None, MAC_A) is False


def test_a_failing_iteration_is_counted_and_the_loop_goes_on(setup: Any) -> None:
    engine, links, _clock, _gate, plane = setup
    engine.fail_next = True
    plane.start()
    links[1].deliver(b"boom")
    deadline = time.monotonic() + 2.0
    while plane.stats.engine_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    links[1].deliver(b"ok")
    while not engine.received and time.monotonic() < deadline:
        time.sleep(0.005)
    assert plane.stats.engine_errors == 1
    assert engine.received[0][1] == [b"ok"]
    assert plane.running


def test_stop_joins_the_loop_thread(setup: Any) -> None:
    _engine, _links, _clock, gate, plane = setup
    plane.start()
    assert plane.running
    assert gate.on_change == plane.wake
    assert plane.stop(timeout=2.0) is True
    assert not plane.running
    assert gate.on_change is None


def test_an_idle_loop_never_opens_its_busy_poll_window() -> None:
    """Spinning happens only right after traffic; idle iterations sleep in poll."""
    link = FakeLink("eth0", b"\x02" * 6)
    engine = RecordingEngine()
    plane = DataPlane(Gate(engine), {1: link}, max_wait=0.01, busy_poll=0.001)
    try:
        for _ in range(5):
            plane.run_once()
        assert plane.stats.spin_hits == plane.stats.spin_misses == 0
        link.deliver(b"f" * 60)
        plane.run_once()  # moves the frame: the next wait spins first
        plane.run_once()
        assert plane.stats.spin_misses == 1
        plane.run_once()  # that one moved nothing: back to sleeping
        assert plane.stats.spin_misses == 1
    finally:
        plane.stop()


def test_a_frame_arriving_inside_the_window_is_taken_without_sleeping() -> None:
    link = FakeLink("eth0", b"\x02" * 6)
    engine = RecordingEngine()
    plane = DataPlane(Gate(engine), {1: link}, max_wait=1.0, busy_poll=0.5)
    try:
        link.deliver(b"a" * 60)
        plane.run_once()
        # lands in the "ring" 20 ms into the window, with no wake-up signalled
        late = threading.Timer(0.02, link.inbox.append, (b"b" * 60,))
        late.start()
        started = time.monotonic()
        plane.run_once()
        late.join()
        assert plane.stats.spin_hits == 1
        assert [frames for _ifindex, frames, _now in engine.received][-1] == [b"b" * 60]
        assert time.monotonic() - started < 0.5
    finally:
        plane.stop()


def test_an_unknown_priority_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="realtime, high, normal"):
        DataPlane(Gate(RecordingEngine()), {}, priority="turbo")


def test_a_normal_priority_loop_keeps_the_default_scheduling() -> None:
    plane = DataPlane(Gate(RecordingEngine()), {}, max_wait=0.01, priority="normal")
    try:
        plane.start()
        plane.stop()
        assert plane.granted_priority == "normal"
    finally:
        plane.stop()


def test_a_saturated_realtime_loop_rests_at_normal_priority_then_returns_to_realtime(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_SHARE of a window the loop drops to SCHED_OTHER for REST seconds (it keeps
    running: no sleep) and then asks for SCHED_RR again; below it, nothing changes."""
    from agents import dataplane as module

    policies: list[int] = []
    monkeypatch.setattr(module.os, "sched_setscheduler",
                        lambda pid, policy, param: policies.append(policy))
    slept: list[float] = []
    monkeypatch.setattr(module.time, "sleep", slept.append)
    plane = DataPlane(Gate(RecordingEngine()), {}, max_wait=0.0)
    plane.granted_priority = "realtime"
    wall = cpu = 100.0
    plane._wall, plane._cpu = (lambda: wall), (lambda: cpu)
    plane._window_start, plane._window_cpu = wall, cpu
    plane._window_end = wall + module.PACE_WINDOW

    wall += module.PACE_WINDOW
    cpu += 0.5 * module.PACE_WINDOW  # half busy: no rest
    plane._pace()
    assert policies == [] and plane.stats.rests == 0

    wall += module.PACE_WINDOW
    cpu += 0.99 * module.PACE_WINDOW  # saturated: rest at normal priority
    plane._pace()
    assert policies == [os.SCHED_OTHER] and plane.stats.rests == 1
    wall += module.REST / 2
    plane._pace()  # still resting
    assert policies == [os.SCHED_OTHER]
    wall += module.REST
    cpu += module.REST  # it kept forwarding through the rest
    plane._pace()
    assert policies == [os.SCHED_OTHER, os.SCHED_RR]
    assert slept == []  # never slept
    plane.stop()

"""Capture memory is bounded in bytes, per stream and in total, with every drop counted.

Issue 11 item 4: the capture mailbox was bounded at 65,536 frames, so four
unread captures of 1,442-byte frames held ~59 MB each. Now each capture (and
hook) stream holds at most ``STREAM_BYTES`` and all of them together
``TOTAL_BYTES``; what does not fit is dropped and counted
(``CaptureBatch.dropped``).
"""

from __future__ import annotations

import time

from agents.gate import RECORD_OVERHEAD, STREAM_BYTES, TOTAL_BYTES, BytePool, Gate, Mailbox
from tests.unit.agents.support import FakeEngine, running_agent, sample_engine
from vrc.v1 import agent_pb2 as pb

FRAME = bytes(1442)
TIMEOUT = 10


def inject(gate: Gate, engine: FakeEngine, frames: int, ifname: str = "eth0") -> None:
    """``frames`` frames arrive on ``ifname``, collected by the gate 1,000 at a time
    (as the data-plane loop does once per batch)."""
    for start in range(0, frames, 1000):
        for _ in range(min(1000, frames - start)):
            engine.inject_frame(ifname, FRAME)
        gate.call(lambda e: None)


def test_four_unread_captures_hold_at_most_the_stream_and_total_bounds() -> None:
    engine = sample_engine()
    gate = Gate(engine)
    taps = [gate.open_tap("eth0") for _ in range(4)]
    per_stream_frames = 2 * STREAM_BYTES // len(FRAME)  # twice what one stream may hold
    inject(gate, engine, per_stream_frames)
    for tap in taps:
        assert tap.mailbox.bytes <= STREAM_BYTES
        assert tap.mailbox.dropped > 0
        # every frame is either queued or counted as dropped (engine side or ours)
        queued = len(tap.mailbox.take(0, 1 << 20))
        assert queued + tap.mailbox.dropped + tap.handle.dropped == per_stream_frames
    assert gate.stream_bytes.limit == TOTAL_BYTES


def test_captures_together_never_exceed_the_total() -> None:
    engine = sample_engine()
    gate = Gate(engine, stream_bytes=1 << 20, total_bytes=3 << 20)
    taps = [gate.open_tap("eth0") for _ in range(5)]
    inject(gate, engine, 3000)  # 4.3 MB per tap offered
    held = sum(tap.mailbox.bytes for tap in taps)
    assert held <= 3 << 20
    assert gate.stream_bytes.used == held
    assert all(tap.mailbox.bytes <= 1 << 20 for tap in taps)
    # reading gives the bytes back to the pool
    for tap in taps:
        tap.mailbox.take(0, 1 << 20)
    assert gate.stream_bytes.used == 0


def test_a_closed_capture_gives_its_bytes_back() -> None:
    engine = sample_engine()
    gate = Gate(engine, stream_bytes=1 << 20, total_bytes=1 << 20)
    first = gate.open_tap("eth0")
    inject(gate, engine, 1000)
    assert gate.stream_bytes.used > 0
    gate.close_tap(first)
    assert gate.stream_bytes.used == 0
    second = gate.open_tap("eth0")
    inject(gate, engine, 10)
    assert len(second.mailbox.take(0, 100)) == 10


def test_mailbox_bounds_bytes_and_counts_what_it_dropped() -> None:
    pool = BytePool(10_000)
    box: Mailbox[bytes] = Mailbox(byte_limit=4000, pool=pool)
    box.put_many([bytes(1000)] * 10)
    assert box.bytes <= 4000 and box.dropped == 10 - len(box.take(0, 100))
    other: Mailbox[bytes] = Mailbox(byte_limit=8000, pool=pool)
    box.put_many([bytes(1000)] * 4)
    other.put_many([bytes(1000)] * 8)
    assert pool.used <= 10_000
    assert box.bytes + other.bytes == pool.used


def test_an_unread_grpc_capture_reports_its_drops_in_the_batch() -> None:
    engine = sample_engine()
    with running_agent(engine) as agent:
        call = agent.stub.Capture(pb.CaptureRequest(ifname="eth0"), timeout=60)
        assert next(call).linktype == 1  # subscribed; now the client stops reading
        offered = 2 * STREAM_BYTES // len(FRAME)
        inject(agent.gate, engine, offered)
        received = dropped = 0
        deadline = time.monotonic() + TIMEOUT
        try:
            for batch in call:
                received += len(batch.frames)
                dropped = batch.dropped
                if received + dropped >= offered or time.monotonic() > deadline:
                    break
        finally:
            call.cancel()
    assert dropped > 0
    assert received + dropped == offered
    assert received * (len(FRAME) + RECORD_OVERHEAD) <= STREAM_BYTES + 8 * (1 << 20)


def test_a_hook_stream_is_bounded_in_bytes_too() -> None:
    engine = sample_engine()
    gate = Gate(engine, stream_bytes=1 << 20, total_bytes=4 << 20)
    name = gate.call(lambda e: e.create_ng())
    gate.call(lambda e: e.set_interface(name, up=True))
    handle, mailbox = gate.open_hook(name, "inet")
    packet = bytes(1400)
    for _ in range(3):
        gate.call(lambda e: [e.hook_send(handle, packet) for _ in range(1000)])
    assert mailbox.bytes <= 1 << 20
    assert mailbox.dropped == 3000 - len(mailbox.take(0, 10_000))

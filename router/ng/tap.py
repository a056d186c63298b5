"""Packet taps: any interface can be watched, the frames written as pcap.

A tap is the engine's ``bpf`` descriptor without the filter language: it
records every frame that enters or leaves one interface with the engine's
time (``now``, passed in by the caller — the engine never reads a clock),
the interface index and the direction. Records wait in a bounded queue until
the agent drains them (to a gRPC stream or a pcap file); when the queue is
full the oldest record is dropped and counted, so a slow reader never stalls
the data plane and always sees the newest traffic.

The link type follows the interface, as ``bpfattach`` does: ``DLT_EN10MB``
for Ethernet, ``DLT_NULL`` for ``ngN`` and loopback. For ``DLT_NULL`` the
caller hands the frame with its 4-byte family header already in front (the
``ngN`` driver does so, like the seed's ``ng_iface_bpftap``); see
:func:`router.ng.pcap.null_header`.

Hook points: the engine calls :meth:`Taps.tap_input` and
:meth:`Taps.tap_output` for Ethernet frames; ``ngN`` interfaces tap their own
traffic. With no tap open on an interface each call is one dict lookup.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from router.errors import EINVAL, ENXIO, RouterError
from router.link.ifnet import IfFamily, IfState, IfType, Interface
from router.ng.pcap import DEFAULT_SNAPLEN, DLT_EN10MB, DLT_NULL, PcapWriter

DEFAULT_MAX_QUEUED = 4096


class Direction(enum.IntEnum):
    """Which way a frame crossed the interface (gRPC and pcap-ng speak the same)."""

    IN = 1
    OUT = 2


@dataclass(slots=True, frozen=True)
class TapRecord:
    """One captured frame: ``frame`` is cut to the snap length, ``length`` is the original."""

    timestamp: float
    ifindex: int
    direction: Direction
    frame: bytes
    length: int


def linktype_for(ifp: Interface) -> int:
    """The pcap link type of an interface's frames (``bpfattach``'s DLT)."""
    if ifp.type is IfType.ETHER and ifp.family is IfFamily.ETHERNET:
        return DLT_EN10MB
    return DLT_NULL


class Tap:
    """One open tap on one interface. Made by :meth:`Taps.open`."""

    __slots__ = (
        "closed",
        "dropped",
        "ifindex",
        "ifname",
        "linktype",
        "max_queued",
        "queue",
        "seen",
        "snaplen",
    )

    def __init__(self, ifp: Interface, snaplen: int, max_queued: int) -> None:
        self.ifindex = ifp.index
        self.ifname = ifp.name
        self.linktype = linktype_for(ifp)
        self.snaplen = snaplen
        self.max_queued = max_queued
        # deque(maxlen) discards from the other end on append: drop-oldest
        self.queue: deque[TapRecord] = deque(maxlen=max_queued)
        self.seen = 0  # frames recorded, including the ones dropped later
        self.dropped = 0  # records pushed out of a full queue before anyone drained them
        self.closed = False

    def record(self, frame: bytes | bytearray | memoryview, direction: Direction,
               now: float) -> None:
        """Queue one frame; a full queue loses its oldest record."""
        if len(self.queue) == self.max_queued:
            self.dropped += 1
        self.seen += 1
        self.queue.append(TapRecord(now, self.ifindex, direction,
                                    bytes(frame[: self.snaplen]), len(frame)))

    def drain(self, limit: int | None = None) -> list[TapRecord]:
        """Take the queued records, oldest first (at most ``limit``)."""
        queue = self.queue
        count = len(queue) if limit is None else min(limit, len(queue))
        return [queue.popleft() for _ in range(count)]

    def pcap_writer(self, out: BinaryIO) -> PcapWriter:
        """A pcap writer for this tap's link type and snap length into ``out``."""
        return PcapWriter(out, self.linktype, self.snaplen)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.queue)} queued"
        return f"<Tap {self.ifname} dlt={self.linktype} {state} dropped={self.dropped}>"


def write_records(writer: PcapWriter, records: Iterable[TapRecord]) -> int:
    """Write tap records as pcap records; returns how many were written."""
    count = 0
    for rec in records:
        writer.write(rec.timestamp, rec.frame, rec.length)
        count += 1
    return count


class Taps:
    """Every open tap of one engine, indexed by interface for the hot path."""

    __slots__ = ("_by_ifp",)

    def __init__(self) -> None:
        self._by_ifp: dict[Interface, tuple[Tap, ...]] = {}

    def open(self, ifp: Interface, snaplen: int = DEFAULT_SNAPLEN,
             max_queued: int = DEFAULT_MAX_QUEUED) -> Tap:
        """Start recording ``ifp``'s frames.

        ``ENXIO`` unless the interface is attached; ``EINVAL`` for a snap
        length or queue bound below 1.
        """
        subject = f"tap on {ifp.name}"
        if ifp.state is not IfState.ATTACHED:
            raise RouterError(ENXIO, "interface", ifp.name, subject)
        if snaplen < 1:
            raise RouterError(EINVAL, "snaplen", snaplen, subject)
        if max_queued < 1:
            raise RouterError(EINVAL, "max_queued", max_queued, subject)
        tap = Tap(ifp, snaplen, max_queued)
        self._by_ifp[ifp] = (*self._by_ifp.get(ifp, ()), tap)
        return tap

    def close(self, tap: Tap) -> bool:
        """Stop a tap; its queued records stay drainable. False if it was closed already."""
        if tap.closed:
            return False
        tap.closed = True
        for ifp, taps in list(self._by_ifp.items()):
            if tap in taps:
                rest = tuple(t for t in taps if t is not tap)
                if rest:
                    self._by_ifp[ifp] = rest
                else:
                    del self._by_ifp[ifp]
        return True

    def close_interface(self, ifp: Interface) -> list[Tap]:
        """Close every tap on ``ifp`` (``bpfdetach``); returns them."""
        taps = self._by_ifp.pop(ifp, ())
        for tap in taps:
            tap.closed = True
        return list(taps)

    def taps_on(self, ifp: Interface) -> tuple[Tap, ...]:
        return self._by_ifp.get(ifp, ())

    def is_tapped(self, ifp: Interface) -> bool:
        """Whether any tap watches ``ifp``: lets a caller skip building a frame."""
        return ifp in self._by_ifp

    def tap_input(self, ifp: Interface, frame: bytes | bytearray | memoryview,
                  now: float) -> None:
        """A frame arrived on ``ifp`` (before any processing)."""
        taps = self._by_ifp.get(ifp)
        if taps:
            for tap in taps:
                tap.record(frame, Direction.IN, now)

    def tap_output(self, ifp: Interface, frame: bytes | bytearray | memoryview,
                   now: float) -> None:
        """A frame leaves through ``ifp`` (as handed to the driver)."""
        taps = self._by_ifp.get(ifp)
        if taps:
            for tap in taps:
                tap.record(frame, Direction.OUT, now)

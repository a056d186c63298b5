"""Engines joined by in-memory Ethernet segments, with a clock moved by hand.

A :class:`Net` holds named engines and segments. A segment is a hub: a frame
one port transmits reaches every other port in the same round (so three
hosts can share a LAN, and a cable is a two-port segment). ``run`` moves
frames until every engine is quiet; ``advance`` moves the clock, running each
engine's timers at its deadlines on the way. Nothing sleeps and nothing
reads the wall clock: tests are deterministic.

Every delivered frame is logged per segment (``Segment.log``) with the time
and the sending port, for assertions with scapy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router import Engine


@dataclass(frozen=True)
class Port:
    node: str
    ifname: str


@dataclass
class Segment:
    name: str
    ports: list[Port] = field(default_factory=list)
    log: list[tuple[float, Port, bytes]] = field(default_factory=list)
    up: bool = True

    def frames_from(self, node: str) -> list[bytes]:
        return [frame for _, port, frame in self.log if port.node == node]


class Net:
    """A small network of engines (see the module docstring)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.nodes: dict[str, Engine] = {}
        self.segments: dict[str, Segment] = {}
        self._where: dict[tuple[str, int], Segment] = {}
        self.moved = 0

    def add(self, name: str, engine: Engine) -> Engine:
        self.nodes[name] = engine
        return engine

    def segment(self, name: str, *ports: tuple[str, str]) -> Segment:
        """Join interfaces ``(node, ifname)`` on one hub segment."""
        seg = self.segments.setdefault(name, Segment(name))
        for node, ifname in ports:
            ifp = self.nodes[node].interface(ifname)
            assert ifp is not None, f"{node} has no {ifname}"
            seg.ports.append(Port(node, ifname))
            self._where[(node, ifp.index)] = seg
        return seg

    def _deliver(self, sender: str, ifindex: int, frame: bytes,
                 batches: dict[tuple[str, str], list[bytes]]) -> None:
        seg = self._where.get((sender, ifindex))
        if seg is None or not seg.up:
            return
        port = next(p for p in seg.ports
                    if p.node == sender and self._index(p) == ifindex)
        seg.log.append((self.now, port, frame))
        for other in seg.ports:
            if other != port:
                batches.setdefault((other.node, other.ifname), []).append(frame)

    def _index(self, port: Port) -> int:
        ifp = self.nodes[port.node].interface(port.ifname)
        return ifp.index if ifp is not None else -1

    def run(self, max_rounds: int = 1000) -> int:
        """Move frames between engines until none is left; returns how many moved."""
        moved = 0
        for _ in range(max_rounds):
            batches: dict[tuple[str, str], list[bytes]] = {}
            for name, engine in self.nodes.items():
                for ifindex, frame in engine.transmit():
                    self._deliver(name, ifindex, frame, batches)
                    moved += 1
            if not batches:
                self.moved += moved
                return moved
            for (node, ifname), frames in batches.items():
                engine = self.nodes[node]
                ifp = engine.interface(ifname)
                if ifp is not None:
                    engine.receive_batch(ifp.index, frames, self.now)
        raise AssertionError("the network did not go quiet")

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` ahead, running timers when they fall due."""
        target = self.now + seconds
        self.run()
        for _ in range(100_000):
            due = [d for d in (e.next_deadline() for e in self.nodes.values())
                   if d is not None and d <= target]
            if not due:
                break
            self.now = max(self.now, min(due))
            for engine in self.nodes.values():
                deadline = engine.next_deadline()
                if deadline is not None and deadline <= self.now:
                    engine.tick(self.now)
            self.run()
        else:
            raise AssertionError("timers kept falling due without the clock moving")
        self.now = target
        for engine in self.nodes.values():
            engine.tick(self.now)
        self.run()

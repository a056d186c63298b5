"""One read of the agent's counters, for both ``GetStats`` and the ``/metrics`` endpoint.

:class:`StatsSource` takes the engine gate's lock once, copies the numbers
(interface counters, ARP table sizes by state, drop counters by reason, the
fast path, protocol counters) and releases it; the AF_PACKET links' and the
data-plane loop's own counts are plain attributes of the agent's objects and
are read without the lock. ``agents.metrics.EngineCollector`` renders a
:class:`StatsSnapshot` as Prometheus metrics and ``AgentService.GetStats``
as a ``GetStatsResponse``: one source, so the two never disagree.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from router import IfFlags

# The AF_PACKET link's and the loop's counters, by their attribute names.
LINK_FIELDS = ("rx_frames", "rx_local", "tx_frames", "tx_errors", "tx_oversize", "kernel_drops",
               "rx_offload", "rx_copies", "rx_truncated")
LOOP_FIELDS = ("iterations", "frames_in", "frames_out", "ticks", "tx_unroutable",
               "tx_failed", "engine_errors", "spin_hits", "spin_misses", "rests")


@dataclass(slots=True)
class InterfaceSnapshot:
    name: str
    counters: dict[str, int]
    up: bool
    mtu: int
    arp_states: dict[str, int] = field(default_factory=dict)  # ARP entries by state

    @property
    def arp_entries(self) -> int:
        return sum(self.arp_states.values())


@dataclass(slots=True)
class LinkSnapshot:
    ifname: str
    counts: dict[str, int]  # LINK_FIELDS
    promiscuous: bool


@dataclass(slots=True)
class StatsSnapshot:
    """Numbers copied out of the engine (under the lock), the links and the loop."""

    interfaces: list[InterfaceSnapshot] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    fast_path_hits: int = 0
    protocols: dict[str, int] = field(default_factory=dict)  # "ipv4.forwarded" -> n
    links: list[LinkSnapshot] = field(default_factory=list)
    loop: dict[str, int] | None = None  # LOOP_FIELDS; None outside vrc-agent


class StatsSource:
    """Reads a :class:`StatsSnapshot`; ``links`` and ``loop_stats`` are the agent's own."""

    def __init__(self, gate: Any, links: Callable[[], Iterable[Any]] = list,
                 loop_stats: Callable[[], Any] = lambda: None) -> None:
        self.gate = gate
        self.links = links
        self.loop_stats = loop_stats

    def read(self) -> StatsSnapshot:
        with self.gate.locked() as engine:
            snap = snapshot_engine(engine)
        snap.links = [snapshot_link(link) for link in self.links()]
        stats = self.loop_stats()
        if stats is not None:
            snap.loop = {name: int(getattr(stats, name, 0)) for name in LOOP_FIELDS}
        return snap


def snapshot_engine(engine: Any) -> StatsSnapshot:
    """Copy what GetStats and the collector export; runs under the gate's lock."""
    snap = StatsSnapshot()
    states: dict[str, Counter[str]] = {}
    for entry in engine.arp_entries(""):
        states.setdefault(entry.ifname, Counter())[_state_name(entry)] += 1
    for ifp in engine.interfaces():
        counters = ifp.counters.as_dict() if hasattr(ifp.counters, "as_dict") else {}
        snap.interfaces.append(InterfaceSnapshot(
            ifp.name, {k: int(v) for k, v in counters.items()}, bool(ifp.flags & IfFlags.UP),
            int(ifp.mtu), dict(sorted(states.get(ifp.name, Counter()).items()))))
    snap.drops = {str(reason): int(count) for reason, count in drop_counts(engine).items()}
    protocols = protocol_counts(engine)
    snap.fast_path_hits = protocols.pop("fastpath.hits", 0)
    snap.protocols = protocols
    return snap


def _state_name(entry: Any) -> str:
    state = getattr(entry, "state", None)
    if state is None:
        return "UNKNOWN"
    return str(getattr(state, "name", state))


def drop_counts(engine: Any) -> Mapping[Any, int]:
    """The engine's drop counters by reason (``Engine.drop_counts()``), if it has them."""
    reader = getattr(engine, "drop_counts", None)
    if reader is None:
        return {}
    counts = reader()
    return {getattr(reason, "name", reason): value for reason, value in counts.items()}


def protocol_counts(engine: Any) -> dict[str, int]:
    """``Engine.stats()`` flattened to ``layer.counter`` (``ipv4.forwarded``), if it has them."""
    reader = getattr(engine, "stats", None)
    if reader is None:
        return {}
    return {f"{layer}.{name}": int(value)
            for layer, counters in reader().items() for name, value in counters.items()}


def snapshot_link(link: Any) -> LinkSnapshot:
    """A link's counts; the kernel's ring-drop count is refreshed first (an ioctl)."""
    refresh = getattr(link, "kernel_stats", None)
    if refresh is not None and not getattr(link, "closed", False):
        with contextlib.suppress(OSError):
            refresh()
    counts = {name: int(getattr(link.stats, name, 0)) for name in LINK_FIELDS}
    return LinkSnapshot(link.ifname, counts, bool(link.promiscuous))

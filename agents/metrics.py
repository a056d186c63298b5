"""Prometheus metrics: read at scrape time, never on the packet path.

``EngineCollector`` is a custom collector. On each scrape it takes the
engine gate's lock once, copies the numbers it needs (interface counters,
ARP table sizes, drop counters by reason) and releases the lock; the data
plane only pays for that copy, once per scrape. Link and loop statistics are
plain attributes of the agent's own objects and are read without the lock.

Metric names:

* ``vrc_interface_<counter>_total{ifname}`` for every ``if_data`` counter
  (``receive_packets``, ``transmit_bytes``, ``input_errors``...);
* ``vrc_interface_up{ifname}``, ``vrc_interface_mtu{ifname}``;
* ``vrc_arp_entries{ifname}``: ARP table size per interface;
* ``vrc_drops_total{reason}``: packets the engine dropped, by reason;
* ``vrc_link_*{ifname}``: the AF_PACKET link's own counts (frames taken from
  the ring, kernel ring drops, transmit errors);
* ``vrc_dataplane_*``: loop iterations, frames in/out, timer runs.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from router import IfFlags
from serving.metrics import MetricsServer, parse_hostport, serve_metrics

__all__ = ["EngineCollector", "MetricsServer", "parse_hostport", "serve_metrics"]

# if_data field -> metric stem and help text
INTERFACE_COUNTERS: dict[str, tuple[str, str]] = {
    "ipackets": ("receive_packets", "Packets received"),
    "ibytes": ("receive_bytes", "Bytes received"),
    "ierrors": ("input_errors", "Input errors (malformed frames and headers)"),
    "iqdrops": ("input_drops", "Input packets dropped"),
    "imcasts": ("receive_multicast_packets", "Multicast and broadcast packets received"),
    "opackets": ("transmit_packets", "Packets sent"),
    "obytes": ("transmit_bytes", "Bytes sent"),
    "oerrors": ("output_errors", "Output errors"),
    "oqdrops": ("output_drops", "Output packets dropped"),
    "omcasts": ("transmit_multicast_packets", "Multicast and broadcast packets sent"),
    "noproto": ("unknown_protocol_packets", "Packets for a protocol nobody attached"),
    "collisions": ("collisions", "Collisions"),
}


@dataclass(slots=True)
class EngineSnapshot:
    """Numbers copied out of the engine under the lock."""

    interfaces: list[tuple[str, dict[str, int], bool, int]] = field(default_factory=list)
    arp_sizes: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)


def snapshot_engine(engine: Any) -> EngineSnapshot:
    """Copy what the collector exports; runs under the gate's lock."""
    snap = EngineSnapshot()
    for ifp in engine.interfaces():
        counters = ifp.counters.as_dict() if hasattr(ifp.counters, "as_dict") else {}
        snap.interfaces.append((ifp.name, counters, bool(ifp.flags & IfFlags.UP), ifp.mtu))
    sizes: Counter[str] = Counter(entry.ifname for entry in engine.arp_entries(""))
    snap.arp_sizes = {ifname: sizes.get(ifname, 0) for ifname, *_ in snap.interfaces}
    snap.drops = {str(reason): int(count) for reason, count in drop_counts(engine).items()}
    return snap


def drop_counts(engine: Any) -> Mapping[Any, int]:
    """The engine's drop counters by reason (``Engine.drop_counts()``), if it has them."""
    reader = getattr(engine, "drop_counts", None)
    if reader is None:
        return {}
    counts = reader()
    return {getattr(reason, "name", reason): value for reason, value in counts.items()}


class EngineCollector(Collector):
    """The custom collector described in the module docstring."""

    def __init__(
        self,
        gate: Any,
        links: Callable[[], Iterable[Any]] = list,
        loop_stats: Callable[[], Any] = lambda: None,
    ) -> None:
        self.gate = gate
        self.links = links
        self.loop_stats = loop_stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        with self.gate.locked() as engine:
            snap = snapshot_engine(engine)
        yield from _interface_metrics(snap)
        arp = GaugeMetricFamily("vrc_arp_entries", "ARP table entries", labels=["ifname"])
        for ifname, size in sorted(snap.arp_sizes.items()):
            arp.add_metric([ifname], size)
        yield arp
        drops = CounterMetricFamily("vrc_drops", "Packets dropped, by reason", labels=["reason"])
        for reason, count in sorted(snap.drops.items()):
            drops.add_metric([reason], count)
        yield drops
        yield from _link_metrics(list(self.links()))
        yield from _loop_metrics(self.loop_stats())


def _interface_metrics(snap: EngineSnapshot) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    families = {
        key: CounterMetricFamily(f"vrc_interface_{stem}", text, labels=["ifname"])
        for key, (stem, text) in INTERFACE_COUNTERS.items()
    }
    up = GaugeMetricFamily("vrc_interface_up", "1 when the interface is UP", labels=["ifname"])
    mtu = GaugeMetricFamily("vrc_interface_mtu", "Interface MTU", labels=["ifname"])
    for ifname, counters, is_up, ifmtu in snap.interfaces:
        for key, family in families.items():
            family.add_metric([ifname], counters.get(key, 0))
        up.add_metric([ifname], 1 if is_up else 0)
        mtu.add_metric([ifname], ifmtu)
    yield from families.values()
    yield up
    yield mtu


LINK_COUNTERS = {
    "rx_frames": ("vrc_link_receive_frames", "Frames taken from the receive ring"),
    "tx_frames": ("vrc_link_transmit_frames", "Frames handed to the kernel for transmit"),
    "tx_errors": ("vrc_link_transmit_errors", "Frames the kernel refused to transmit"),
    "tx_oversize": ("vrc_link_transmit_oversize", "Frames too large for a transmit slot"),
    "kernel_drops": ("vrc_link_ring_drops", "Frames the kernel dropped: receive ring full"),
}


def _link_metrics(links: list[Any]) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    families = {
        key: CounterMetricFamily(name, text, labels=["ifname"])
        for key, (name, text) in LINK_COUNTERS.items()
    }
    promisc = GaugeMetricFamily(
        "vrc_link_promiscuous", "1 while the NIC is held promiscuous", labels=["ifname"]
    )
    for link in links:
        refresh = getattr(link, "kernel_stats", None)
        if refresh is not None and not getattr(link, "closed", False):
            with contextlib.suppress(OSError):
                refresh()
        for key, family in families.items():
            family.add_metric([link.ifname], getattr(link.stats, key, 0))
        promisc.add_metric([link.ifname], 1 if link.promiscuous else 0)
    yield from families.values()
    yield promisc


LOOP_COUNTERS = {
    "iterations": ("vrc_dataplane_iterations", "Data-plane loop iterations"),
    "frames_in": ("vrc_dataplane_frames_in", "Frames fed to the engine"),
    "frames_out": ("vrc_dataplane_frames_out", "Frames the engine sent that left"),
    "ticks": ("vrc_dataplane_timer_runs", "Engine timer runs"),
    "tx_unroutable": ("vrc_dataplane_unroutable", "Engine output for an ifindex without a link"),
    "tx_failed": ("vrc_dataplane_transmit_failed", "Engine output the links failed to send"),
    "engine_errors": ("vrc_dataplane_errors", "Loop iterations that raised"),
}


def _loop_metrics(stats: Any) -> Iterator[CounterMetricFamily]:
    if stats is None:
        return
    for key, (name, text) in LOOP_COUNTERS.items():
        yield CounterMetricFamily(name, text, value=getattr(stats, key, 0))

"""Prometheus metrics: read at scrape time, never on the packet path.

``EngineCollector`` is a custom collector. On each scrape it reads one
:class:`agents.stats.StatsSnapshot` (the engine gate's lock taken once; the
links' and the loop's counts without it) — the same snapshot ``GetStats``
answers with, so the two always agree.

Metric names:

* ``vrc_interface_<counter>_total{ifname}`` for every ``if_data`` counter
  (``receive_packets``, ``transmit_bytes``, ``input_errors``...);
* ``vrc_interface_up{ifname}``, ``vrc_interface_mtu{ifname}``;
* ``vrc_arp_entries{ifname}``: ARP table size per interface, and
  ``vrc_arp_entries_by_state{ifname,state}``;
* ``vrc_drops_total{reason}``: packets the engine dropped, by reason;
* ``vrc_fastpath_hits_total``: packets the fast path forwarded;
* ``vrc_protocol_total{counter}``: the engine's protocol counters
  (``ipv4.forwarded``, ``arp.requests_in``...);
* ``vrc_link_*{ifname}``: the AF_PACKET link's own counts (frames taken from
  the ring, kernel ring drops, transmit errors);
* ``vrc_dataplane_*``: loop iterations, frames in/out, timer runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from agents.stats import StatsSnapshot, StatsSource
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

Family = CounterMetricFamily | GaugeMetricFamily


class EngineCollector(Collector):
    """The custom collector described in the module docstring."""

    def __init__(
        self,
        gate: Any,
        links: Callable[[], Iterable[Any]] = list,
        loop_stats: Callable[[], Any] = lambda: None,
    ) -> None:
        self.source = StatsSource(gate, links, loop_stats)

    @classmethod
    def of(cls, source: StatsSource) -> EngineCollector:
        """A collector over an existing source (the one GetStats reads too)."""
        collector = cls.__new__(cls)
        collector.source = source
        return collector

    def collect(self) -> Iterator[Family]:
        snap = self.source.read()
        yield from _interface_metrics(snap)
        yield from _arp_metrics(snap)
        drops = CounterMetricFamily("vrc_drops", "Packets dropped, by reason", labels=["reason"])
        for reason, count in sorted(snap.drops.items()):
            drops.add_metric([reason], count)
        yield drops
        yield CounterMetricFamily("vrc_fastpath_hits", "Packets the fast path forwarded",
                                  value=snap.fast_path_hits)
        protocols = CounterMetricFamily("vrc_protocol", "Engine protocol counters",
                                        labels=["counter"])
        for name, value in sorted(snap.protocols.items()):
            protocols.add_metric([name], value)
        yield protocols
        yield from _link_metrics(snap)
        yield from _loop_metrics(snap)


def _interface_metrics(snap: StatsSnapshot) -> Iterator[Family]:
    families = {
        key: CounterMetricFamily(f"vrc_interface_{stem}", text, labels=["ifname"])
        for key, (stem, text) in INTERFACE_COUNTERS.items()
    }
    up = GaugeMetricFamily("vrc_interface_up", "1 when the interface is UP", labels=["ifname"])
    mtu = GaugeMetricFamily("vrc_interface_mtu", "Interface MTU", labels=["ifname"])
    for ifp in snap.interfaces:
        for key, family in families.items():
            family.add_metric([ifp.name], ifp.counters.get(key, 0))
        up.add_metric([ifp.name], 1 if ifp.up else 0)
        mtu.add_metric([ifp.name], ifp.mtu)
    yield from families.values()
    yield up
    yield mtu


def _arp_metrics(snap: StatsSnapshot) -> Iterator[Family]:
    sizes = GaugeMetricFamily("vrc_arp_entries", "ARP table entries", labels=["ifname"])
    by_state = GaugeMetricFamily("vrc_arp_entries_by_state", "ARP table entries by state",
                                 labels=["ifname", "state"])
    for ifp in sorted(snap.interfaces, key=lambda i: i.name):
        sizes.add_metric([ifp.name], ifp.arp_entries)
        for state, count in ifp.arp_states.items():
            by_state.add_metric([ifp.name, state], count)
    yield sizes
    yield by_state


LINK_COUNTERS = {
    "rx_frames": ("vrc_link_receive_frames", "Frames taken from the receive ring"),
    "rx_local": ("vrc_link_receive_local_frames",
                 "Of them, frames to the engine's own addresses, from the local ring"),
    "tx_frames": ("vrc_link_transmit_frames", "Frames handed to the kernel for transmit"),
    "tx_errors": ("vrc_link_transmit_errors", "Frames the kernel refused to transmit"),
    "tx_oversize": ("vrc_link_transmit_oversize", "Frames too large for a transmit slot"),
    "kernel_drops": ("vrc_link_ring_drops",
                     "Frames the kernel dropped: a receive ring (main, ARP or local) full"),
    "rx_offload": ("vrc_link_receive_offload_frames",
                   "Frames received with a partial checksum or as GSO super-frames"),
    "rx_copies": ("vrc_link_receive_copies",
                  "Frames larger than a receive slot, read from the socket queue"),
    "rx_truncated": ("vrc_link_receive_truncated",
                     "Frames larger than a slot with no room for a copy: dropped"),
}


def _link_metrics(snap: StatsSnapshot) -> Iterator[Family]:
    families = {
        key: CounterMetricFamily(name, text, labels=["ifname"])
        for key, (name, text) in LINK_COUNTERS.items()
    }
    promisc = GaugeMetricFamily(
        "vrc_link_promiscuous", "1 while the NIC is held promiscuous", labels=["ifname"]
    )
    for link in snap.links:
        for key, family in families.items():
            family.add_metric([link.ifname], link.counts.get(key, 0))
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
    "spin_hits": ("vrc_dataplane_busy_poll_hits", "Busy-poll windows that found a frame"),
    "spin_misses": ("vrc_dataplane_busy_poll_misses",
                    "Busy-poll windows that closed empty (the loop then slept)"),
    "rests": ("vrc_dataplane_rests",
              "Pauses of a realtime loop that kept it below the kernel's RT throttle"),
}


def _loop_metrics(snap: StatsSnapshot) -> Iterator[Family]:
    if snap.loop is None:
        return
    for key, (name, text) in LOOP_COUNTERS.items():
        yield CounterMetricFamily(name, text, value=snap.loop.get(key, 0))

"""GetStats: drops by reason, interface counters, fast path, ARP tables — the numbers of /metrics.

Issue 11 item 11: drop reasons were visible only as Prometheus metrics. Both
now read one snapshot (agents/stats.py); the tests compare them number for
number.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from agents.dataplane import LoopStats
from agents.gate import Gate
from agents.link import LinkStats
from agents.metrics import INTERFACE_COUNTERS, LINK_COUNTERS, LOOP_COUNTERS, EngineCollector
from agents.server import build_server
from agents.stats import StatsSource
from router import Engine
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import agent_pb2_grpc

TIMEOUT = 10
R_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("02000000aa01")


class StatLink:
    ifname = "eth0"
    promiscuous = True
    closed = False

    def __init__(self) -> None:
        self.stats = LinkStats(rx_frames=10, tx_frames=4, tx_errors=2, tx_oversize=1,
                               kernel_drops=3)


def ipv4_frame(src: str, dst: str, *, checksum_ok: bool = True, ttl: int = 64) -> bytes:
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    packet = IP(src=src, dst=dst, ttl=ttl) / ICMP()
    raw = bytearray(bytes(packet))
    if not checksum_ok:
        raw[10] ^= 0xFF
    return bytes(Ether(src=PEER_MAC, dst=R_MAC, type=0x0800)) + bytes(raw)


def busy_engine() -> Engine:
    """An engine that saw pings, a bad checksum, a short frame and a forwarded packet."""
    engine = Engine()
    eth0 = engine.add_ethernet("eth0", R_MAC)
    engine.add_ethernet("eth1", bytes.fromhex("020000000002"))
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    engine.set_arp("eth0", "10.0.0.2", PEER_MAC)
    engine.set_arp("eth1", "10.1.0.2", bytes.fromhex("02000000bb01"))
    frames = [ipv4_frame("10.0.0.2", "10.0.0.1") for _ in range(3)]
    frames += [ipv4_frame("10.0.0.2", "10.1.0.2") for _ in range(5)]  # forwarded
    frames.append(ipv4_frame("10.0.0.2", "10.0.0.1", checksum_ok=False))
    frames.append(bytes(ipv4_frame("10.0.0.2", "10.0.0.1")[:20]))  # short IPv4
    engine.receive_batch(eth0.index, frames, 1.0)
    engine.transmit()
    return engine


@pytest.fixture
def served() -> Iterator[tuple[agent_pb2_grpc.AgentStub, StatsSource]]:
    gate = Gate(busy_engine())
    source = StatsSource(gate, links=lambda: [StatLink()],
                         loop_stats=lambda: LoopStats(iterations=9, frames_in=10, ticks=5))
    directory = tempfile.mkdtemp(prefix="vrc-st-")
    server, address = build_server(gate, f"unix:{directory}/a.sock", stats=source)
    server.start()
    channel = grpc.insecure_channel(address)
    try:
        yield agent_pb2_grpc.AgentStub(channel), source
    finally:
        channel.close()
        server.stop(None).wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_get_stats_counts_drops_by_reason_and_interface_counters(
    served: tuple[agent_pb2_grpc.AgentStub, StatsSource],
) -> None:
    stub, _ = served
    stats = stub.GetStats(pb.GetStatsRequest(), timeout=TIMEOUT)
    drops = {d.reason: d.count for d in stats.drops}
    assert drops["ipv4.bad_checksum"] == 1
    assert drops["ipv4.short"] == 1
    eth0 = {i.ifname: i for i in stats.interfaces}["eth0"]
    assert eth0.counters.ipackets == 10 and eth0.up and eth0.mtu == 1500
    assert eth0.arp_entries >= 2  # our own address and the static neighbour
    assert sum(s.count for s in eth0.arp_states) == eth0.arp_entries
    assert {s.state for s in eth0.arp_states} >= {"PERMANENT"}
    assert stats.fast_path_hits >= 1
    protocols = {p.name: p.value for p in stats.protocols}
    assert protocols["ipv4.forwarded"] == 5
    assert [link.ifname for link in stats.links] == ["eth0"]
    assert stats.links[0].ring_drops == 3 and stats.links[0].promiscuous
    assert stats.dataplane.iterations == 9 and stats.dataplane.timer_runs == 5


def _metrics(source: StatsSource) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector.of(source))
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_get_stats_and_metrics_give_the_same_numbers(
    served: tuple[agent_pb2_grpc.AgentStub, StatsSource],
) -> None:
    stub, source = served
    stats = stub.GetStats(pb.GetStatsRequest(), timeout=TIMEOUT)
    metrics = _metrics(source)
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for drop in stats.drops:
        expected[("vrc_drops_total", (("reason", drop.reason),))] = drop.count
    for ifp in stats.interfaces:
        label = (("ifname", ifp.ifname),)
        for key, (stem, _) in INTERFACE_COUNTERS.items():
            expected[(f"vrc_interface_{stem}_total", label)] = getattr(ifp.counters, key)
        expected[("vrc_interface_up", label)] = 1 if ifp.up else 0
        expected[("vrc_interface_mtu", label)] = ifp.mtu
        expected[("vrc_arp_entries", label)] = ifp.arp_entries
        for state in ifp.arp_states:
            expected[("vrc_arp_entries_by_state",
                      (("ifname", ifp.ifname), ("state", state.state)))] = state.count
    expected[("vrc_fastpath_hits_total", ())] = stats.fast_path_hits
    for counter in stats.protocols:
        expected[("vrc_protocol_total", (("counter", counter.name),))] = counter.value
    for link in stats.links:
        label = (("ifname", link.ifname),)
        for name, _ in LINK_COUNTERS.values():
            field = name.removeprefix("vrc_link_")
            expected[(f"{name}_total", label)] = getattr(link, field)
        expected[("vrc_link_promiscuous", label)] = 1 if link.promiscuous else 0
    for name, _ in LOOP_COUNTERS.values():
        expected[(f"{name}_total", ())] = getattr(stats.dataplane,
                                                  name.removeprefix("vrc_dataplane_"))
    assert len(expected) > 150
    mismatched = {k: (v, metrics.get(k)) for k, v in expected.items() if metrics.get(k) != v}
    assert mismatched == {}
    # and /metrics says nothing GetStats does not (apart from the _created timestamps)
    extra = {k for k in metrics if k not in expected and not k[0].endswith("_created")}
    assert extra == set()


def test_get_stats_without_the_daemon_has_the_engine_numbers_only(tmp_path: Any) -> None:
    gate = Gate(busy_engine())
    directory = tempfile.mkdtemp(prefix="vrc-st-")
    server, address = build_server(gate, f"unix:{directory}/a.sock")
    server.start()
    try:
        with grpc.insecure_channel(address) as channel:
            stats = agent_pb2_grpc.AgentStub(channel).GetStats(pb.GetStatsRequest(),
                                                               timeout=TIMEOUT)
    finally:
        server.stop(None).wait()
        shutil.rmtree(directory, ignore_errors=True)
    assert {d.reason: d.count for d in stats.drops}["ipv4.short"] == 1
    assert list(stats.links) == [] and not stats.HasField("dataplane")

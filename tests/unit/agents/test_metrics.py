"""Metrics, logs and the vrc-agent command line, without root."""

from __future__ import annotations

import io
import json
import logging
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry

from agents.daemon import DEFAULT_LISTEN, build_parser, main, options_from
from agents.dataplane import LoopStats
from agents.gate import Gate
from agents.link import LinkStats, TxMode
from agents.metrics import EngineCollector, parse_hostport, serve_metrics
from router.link.ifnet import IfFlags, Interface
from serving.logs import configure_logging, get_logger


@dataclass
class Entry:
    ifname: str


class SnapshotEngine:
    def __init__(self) -> None:
        self.eth0 = Interface("eth0", flags=IfFlags.UP, mtu=1500)
        self.eth1 = Interface("eth1", mtu=9000)
        self.eth0.counters.ipackets = 7
        self.eth0.counters.ierrors = 3
        self.eth1.counters.obytes = 1234

    def interfaces(self) -> list[Interface]:
        return [self.eth0, self.eth1]

    def arp_entries(self, ifname: str) -> list[Entry]:
        return [Entry("eth0"), Entry("eth0"), Entry("eth1")]

    def drop_counts(self) -> dict[str, int]:
        return {"BAD_CHECKSUM": 2, "TTL_EXCEEDED": 1}

    def drain_events(self) -> list[Any]:
        return []

    def drain_hook_output(self) -> list[Any]:
        return []

    def drain_taps(self) -> list[Any]:
        return []

    def client_output_pending(self) -> bool:
        return False


class StatLink:
    ifname = "eth0"
    promiscuous = True
    closed = False

    def __init__(self) -> None:
        self.stats = LinkStats(rx_frames=10, tx_frames=4, kernel_drops=1)


def _scrape(collector: EngineCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def _collector() -> EngineCollector:
    return EngineCollector(
        Gate(SnapshotEngine()), links=lambda: [StatLink()], loop_stats=lambda: LoopStats(ticks=5)
    )


def test_scrape_exports_interface_counters_with_ifname_labels() -> None:
    text = _scrape(_collector())
    assert 'vrc_interface_receive_packets_total{ifname="eth0"} 7.0' in text
    assert 'vrc_interface_input_errors_total{ifname="eth0"} 3.0' in text
    assert 'vrc_interface_transmit_bytes_total{ifname="eth1"} 1234.0' in text
    assert 'vrc_interface_up{ifname="eth1"} 0.0' in text
    assert 'vrc_interface_mtu{ifname="eth1"} 9000.0' in text


def test_scrape_exports_arp_table_size_per_interface() -> None:
    text = _scrape(_collector())
    assert 'vrc_arp_entries{ifname="eth0"} 2.0' in text
    assert 'vrc_arp_entries{ifname="eth1"} 1.0' in text


def test_scrape_exports_drops_by_reason() -> None:
    text = _scrape(_collector())
    assert 'vrc_drops_total{reason="BAD_CHECKSUM"} 2.0' in text
    assert 'vrc_drops_total{reason="TTL_EXCEEDED"} 1.0' in text


def test_scrape_exports_link_and_loop_counts() -> None:
    text = _scrape(_collector())
    assert 'vrc_link_receive_frames_total{ifname="eth0"} 10.0' in text
    assert 'vrc_link_ring_drops_total{ifname="eth0"} 1.0' in text
    assert 'vrc_link_promiscuous{ifname="eth0"} 1.0' in text
    assert "vrc_dataplane_timer_runs_total 5.0" in text


def test_metrics_endpoint_serves_over_http_on_loopback() -> None:
    server = serve_metrics(_collector(), "127.0.0.1:0")
    try:
        with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5) as reply:
            body = reply.read().decode()
    finally:
        server.close()
    assert 'vrc_arp_entries{ifname="eth0"} 2.0' in body


def test_metrics_address_needs_a_port() -> None:
    with pytest.raises(ValueError, match="--metrics"):
        parse_hostport("localhost")


def test_json_log_format_gives_one_object_per_line() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        get_logger("vrc.agent", host="h1").info("started", interfaces=["a", "b"])
        logging.getLogger("vrc.agent.server").warning("plain %s", "stdlib")
        get_logger("vrc.agent").debug("below the level")
    finally:
        configure_logging("text", "warning")
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["started", "plain stdlib"]
    assert records[0]["host"] == "h1" and records[0]["interfaces"] == ["a", "b"]
    assert records[1]["level"] == "warning"


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="--log-format"):
        configure_logging("xml", "info")


def test_agent_options_defaults_and_repeated_interfaces() -> None:
    args = build_parser().parse_args(["-i", "eth1", "--interface", "eth2", "-i", "eth1"])
    options = options_from(args)
    assert options.interfaces == ["eth1", "eth2"]
    assert options.listen == DEFAULT_LISTEN
    assert options.isolation is True
    assert options.tx_mode is TxMode.AUTO
    assert options.host_id  # the hostname


def test_agent_options_from_every_flag() -> None:
    args = build_parser().parse_args([
        "-i", "eth1", "--listen", "unix:/tmp/x.sock", "--host-id", "r1",
        "--controller", "ctl:7000", "--metrics", "127.0.0.1:9100", "--no-isolation",
        "--log-format", "json", "--log-level", "DEBUG",
    ])  # fmt: skip
    options = options_from(args)
    assert (options.host_id, options.controller, options.metrics) == ("r1", "ctl:7000",
                                                                       "127.0.0.1:9100")
    assert options.isolation is False
    assert args.log_level == "debug"


def test_agent_without_interface_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "--interface" in capsys.readouterr().err

"""``vrc stats``: GetStats for people (tables) and programs (``-o json``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.unit.agents.support import RunningAgent, cli_runner, running_agent
from tests.unit.agents.test_stats import busy_engine
from vrc.v1 import agent_pb2 as pb


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    with running_agent(busy_engine()) as running:
        yield running


def test_stats_shows_interfaces_nonzero_drops_and_the_fast_path(
    agent: RunningAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli_runner(agent.address, capsys)("stats")
    assert code == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("IFACE"))
    assert header.split()[:5] == ["IFACE", "STATE", "MTU", "RX", "RX-BYTES"]
    eth0 = next(line.split() for line in lines if line.startswith("eth0 "))
    assert eth0[:4] == ["eth0", "UP", "1500", "10"]
    drops = {line.split()[0]: line.split()[1] for line in lines
             if line.startswith(("ipv4.", "arp.", "link.", "icmp.", "engine."))
             and len(line.split()) == 2}
    assert drops["ipv4.bad_checksum"] == "1" and drops["ipv4.short"] == "1"
    assert "ipv4.ttl_exceeded" not in drops  # zero: shown with --all only
    assert "fast path hits: 5" in out
    assert "ipv4.forwarded" in out


def test_stats_all_shows_the_zero_counters_too(
    agent: RunningAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli_runner(agent.address, capsys)("stats", "--all")
    assert code == 0
    assert any(line.split() == ["ipv4.ttl_exceeded", "0"] for line in out.splitlines())


def test_stats_json_is_the_get_stats_reply_with_numbers(
    agent: RunningAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli_runner(agent.address, capsys)("-o", "json", "stats")
    assert code == 0
    data = json.loads(out)
    reply = agent.stub.GetStats(pb.GetStatsRequest(), timeout=10)
    assert {d["reason"]: d["count"] for d in data["drops"]} == {
        d.reason: d.count for d in reply.drops}
    assert data["fast_path_hits"] == reply.fast_path_hits == 5
    eth0 = next(i for i in data["interfaces"] if i["ifname"] == "eth0")
    assert eth0["counters"]["ipackets"] == 10  # a number, not the JSON mapping's string

"""``vrc --controller T status [HOST]`` and ``--host H COMMAND`` against a real controller.

The agent is a real Sync client and engine in this process whose Agent API
is served on a Unix socket (the endpoint it registers), so ``--host`` reaches
it exactly as it would reach a vrc-agent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agents.server import build_server
from agents.sync.sim import InProcessAgent
from cli import main as vrc
from tests.controller.sync_support import (
    Running,
    agent_log,
    host_up,
    sync_controller,
    wait_for,
)
from tests.etcd import TestEtcd
from vrc.v1 import controller_pb2 as pb


@pytest.fixture
def ctl(etcd: TestEtcd) -> Iterator[Running]:
    with sync_controller(etcd) as running:
        yield running


@pytest.fixture
def served(ctl: Running) -> Iterator[InProcessAgent]:
    """Host h1 with its Agent API on a socket, registered with the controller."""
    endpoint = f"unix:{ctl.directory}/h1.sock"
    agent = InProcessAgent("h1", ctl.target, interfaces=("eth1", "eth2"),
                           agent_endpoint=endpoint, log=agent_log("h1"),
                           backoff_initial=0.05, backoff_max=0.5)
    server, _ = build_server(agent.gate, endpoint)
    server.start()
    agent.start()
    ctl.agents.append(agent)
    try:
        wait_for(lambda: host_up(ctl.stub(), "h1"), "h1 up")
        yield agent
    finally:
        server.stop(None).wait(5)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = vrc.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_of_a_host_shows_each_item_and_of_the_fleet_the_watermark(
        ctl: Running, served: InProcessAgent, capsys: pytest.CaptureFixture[str]) -> None:
    stub = ctl.stub()
    served.gate.call(lambda e: e.add_alias("eth2", "10.5.0.1/16"))  # local, in the way
    stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(host="h1", ifname="eth2",
                                                    address="10.5.0.1/24")), timeout=10)
    revision = stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
        host="h1", ifname="eth1", address="10.0.1.1/24")), timeout=10).revision
    assert served.client.wait_applied(revision, 20)
    wait_for(lambda: stub.GetHostStatus(pb.GetHostStatusRequest(host="h1"), timeout=10)
             .applied_version >= revision, "the status written")
    code, out, _ = run(capsys, "--controller", ctl.target, "status", "h1")
    assert code == 0
    assert "host h1: up" in out
    assert "alias/eth1/10.0.1.1" in out and "applied" in out
    assert "EEXIST: " in out and "configured locally" in out
    assert "alias/eth2/10.5.0.1: alias 10.5.0.1/16 on eth2" in out  # the local item
    code, out, _ = run(capsys, "--controller", ctl.target, "-o", "json", "status")
    data = json.loads(out)
    assert int(data["fleet"]["watermark"]) >= revision
    assert [h["host"] for h in data["hosts"]] == ["h1"]


def test_host_runs_an_agent_command_at_the_endpoint_the_host_registered(
        ctl: Running, served: InProcessAgent, capsys: pytest.CaptureFixture[str]) -> None:
    stub = ctl.stub()
    revision = stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
        host="h1", ifname="eth1", address="10.0.1.1/24")), timeout=10).revision
    assert served.client.wait_applied(revision, 20)
    code, out, _ = run(capsys, "--controller", ctl.target, "--host", "h1", "-o", "json",
                       "ifaces")
    assert code == 0
    interfaces = {i["name"]: i for i in json.loads(out)}
    assert [a["address"] for a in interfaces["eth1"]["addresses"]] == ["10.0.1.1"]
    code, out, _ = run(capsys, "--controller", ctl.target, "--host", "h1", "routes")
    assert code == 0 and "10.0.1.0/24" in out


def test_host_refusals_say_what_is_wrong(ctl: Running,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--controller", ctl.target, "--host", "h9", "routes")
    assert code == 1 and "NOT_FOUND" in err and "h9" in err
    ctl.stub().AddHost(pb.AddHostRequest(id="h8"), timeout=10)
    code, _, err = run(capsys, "--controller", ctl.target, "--host", "h8", "routes")
    assert code == 1 and "no registered Agent API endpoint" in err
    code, _, err = run(capsys, "--controller", ctl.target, "--host", "h8", "hosts")
    assert code == 2 and "--host goes with" in err

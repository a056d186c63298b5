"""Probing is an opt-in (issue 11 item 16): ``vrc-agent --arp-probes N`` (default 0) for
the agent's engine, ``AddAliasRequest.probes`` for one alias, passed through to
``Engine.add_alias``; an unset field leaves the agent's setting."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from agents.daemon import build_parser, default_engine_factory, options_from
from router import Engine
from router.arp.acd import AcdState
from tests.unit.agents.support import RunningAgent, running_agent, sample_engine
from vrc.v1 import agent_pb2 as pb

TIMEOUT = 10


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    engine = Engine()
    engine.add_ethernet("eth0", bytes.fromhex("020000000001"))
    with running_agent(engine) as running:
        yield running


def acd_state(agent: RunningAgent, address: int) -> AcdState | None:
    engine = agent.engine
    ifp = engine.interface("eth0")
    state: AcdState | None = engine.arp.acd_state(ifp, address)
    return state


def test_an_alias_without_probes_is_in_use_at_once(agent: RunningAgent) -> None:
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.88.1.1/24"),
                        timeout=TIMEOUT)
    assert acd_state(agent, 0x0A580101) is AcdState.ANNOUNCING


def test_probes_in_the_request_reach_the_engine(agent: RunningAgent) -> None:
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.88.1.1/24", probes=2),
                        timeout=TIMEOUT)
    assert acd_state(agent, 0x0A580101) is AcdState.PROBING


def test_too_many_probes_is_invalid_argument_naming_the_field(agent: RunningAgent) -> None:
    with pytest.raises(grpc.RpcError) as info:
        agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.88.1.1/24",
                                               probes=256), timeout=TIMEOUT)
    error = info.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert dict(error.trailing_metadata())["vrc-field"] == "probes"  # type: ignore[attr-defined]


def test_unset_and_zero_probes_are_told_apart() -> None:
    with running_agent(sample_engine()) as agent:
        agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.88.1.1/24"),
                            timeout=TIMEOUT)
        agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.88.2.1/24",
                                               probes=0), timeout=TIMEOUT)
        assert agent.engine.probes_asked == [None, 0]


def test_the_agent_probes_nothing_by_default() -> None:
    options = options_from(build_parser().parse_args(["-i", "eth1"]))
    assert options.arp_probes == 0
    assert default_engine_factory(options).arp.config.probe_num == 0
    three = options_from(build_parser().parse_args(["-i", "eth1", "--arp-probes", "3"]))
    assert default_engine_factory(three).arp.config.probe_num == 3


@pytest.mark.parametrize("value", ["-1", "256", "\u0663", "\u00b2", "3.0", ""])
def test_a_bad_arp_probes_value_is_a_usage_error(value: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["-i", "eth1", "--arp-probes", value])
    assert info.value.code == 2
    assert "--arp-probes" in capsys.readouterr().err

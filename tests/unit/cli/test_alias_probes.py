"""``vrc alias add ... --probes N``: RFC 5227 probing for one alias (issue 11 item 16)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli.main import main
from tests.unit.agents.support import RunningAgent, running_agent, sample_engine


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    with running_agent(sample_engine()) as running:
        yield running


def test_probes_go_to_the_agent_only_when_given(agent: RunningAgent,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--agent", agent.address, "alias", "add", "eth0", "10.88.1.1/24"]) == 0
    assert main(["--agent", agent.address, "alias", "add", "eth0", "10.88.2.1/24",
                 "--probes", "3"]) == 0
    assert main(["--agent", agent.address, "alias", "add", "eth0", "10.88.3.1/24",
                 "--probes", "0"]) == 0
    assert agent.engine.probes_asked == [None, 3, 0]
    assert "10.88.2.1/24" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["256", "-1", "x"])
def test_a_bad_probe_count_is_a_usage_error(agent: RunningAgent, value: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--agent", agent.address, "alias", "add", "eth0", "10.88.1.1/24",
              "--probes", value])
    assert info.value.code == 2 and "--probes" in capsys.readouterr().err
    assert agent.engine.probes_asked == []

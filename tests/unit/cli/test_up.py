"""`vrc up` and `vrc down` on the command line: dispatch and flags (no namespace made)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main as vrc
from cli import up
from lab.chain import MAX_HOSTS
from lab.state import DEFAULT_ROOT


def test_up_and_down_are_dispatched_before_the_controller_env(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VRC_CONTROLLER", "unix:/nonexistent.sock")
    for command in ("up", "down"):
        with pytest.raises(SystemExit) as exited:
            vrc.main([command, "-h"])
        assert exited.value.code == 0
        assert f"usage: vrc {command}" in capsys.readouterr().out


def test_the_hosts_flag_takes_1_to_the_maximum(capsys: pytest.CaptureFixture[str]) -> None:
    assert up.build_up_parser().parse_args([]).hosts == 3
    assert up.build_up_parser().parse_args(["--hosts", str(MAX_HOSTS)]).hosts == MAX_HOSTS
    for bad in ("0", str(MAX_HOSTS + 1), "three"):
        with pytest.raises(SystemExit) as exited:
            up.build_up_parser().parse_args(["--hosts", bad])
        assert exited.value.code == 2
        assert "--hosts" in capsys.readouterr().err


def test_the_state_directory_comes_from_the_flag_the_env_or_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(up.ROOT_ENV, raising=False)
    assert up.build_up_parser().parse_args([]).state_dir == DEFAULT_ROOT
    monkeypatch.setenv(up.ROOT_ENV, "/tmp/vrc-up-env")
    assert up.build_down_parser().parse_args([]).state_dir == Path("/tmp/vrc-up-env")
    assert up.build_up_parser().parse_args(["--state-dir", "/x"]).state_dir == Path("/x")


def test_the_main_help_names_vrc_up(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        vrc.main(["-h"])
    assert "vrc up" in capsys.readouterr().out.replace("\n", " ")

"""What a user meets at the ``vrc`` CLI with bad input: one line naming field and value,
exit 1 for refusals, exit 2 for usage, nothing changed; and ``vrc-agent``'s start checks."""

from __future__ import annotations

import argparse
import errno
import json
from collections.abc import Callable, Iterator

import pytest

from agents.daemon import StartError, check_nic_mac, nic_problem
from agents.errors import message_of
from cli.main import build_parser, main
from cli.output import timestamp_text
from router import Engine
from router.errors import EINVAL, RouterError
from tests.unit.agents.support import cli_runner, running_agent, sample_engine

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def vrc(capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    engine = Engine()
    engine.add_ethernet("eth0", bytes.fromhex("020000000001"))
    engine.add_ethernet("eth1", bytes.fromhex("020000000002"))
    with running_agent(engine) as running:
        yield cli_runner(running.address, capsys)


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_ifaces_lists_every_alias_not_only_the_primary(vrc: Run) -> None:
    vrc("alias", "add", "eth0", "10.0.0.1/24")
    vrc("alias", "add", "eth0", "10.1.0.1/24")
    _, out, _ = vrc("-o", "json", "ifaces", "eth0")
    assert [a["address"] for a in json.loads(out)[0]["addresses"]] == ["10.0.0.1", "10.1.0.1"]


def test_bad_mac_names_the_mac_field_not_lladdr(vrc: Run) -> None:
    code, _, err = vrc("arp", "set", "eth0", "10.0.0.9", "02:00:00:00:00")
    assert code == 1
    assert "02:00:00:00:00" in one_line(err) and "lladdr" not in err


def test_delete_first_alias_of_bare_interface_names_it(vrc: Run) -> None:
    code, _, err = vrc("alias", "del", "eth1")
    assert code == 1
    assert "eth1" in one_line(err) and "None" not in err


def test_refused_route_changes_nothing(vrc: Run) -> None:
    _, before, _ = vrc("-o", "json", "routes")
    code, _, err = vrc("route", "add", "10.5.0.0/33", "--dev", "eth0")
    assert code == 1 and "10.5.0.0/33" in one_line(err)
    assert vrc("-o", "json", "routes")[1] == before


@pytest.mark.parametrize("argv", [
    ("capture", "eth0", "-c", "0"),
    ("capture", "eth0", "-s", "-1"),
    ("events", "-c", "many"),
    ("events", "--after", "-1"),
    ("events", "--kind", "RTM_BOGUS"),
    ("iface", "set", "eth0", "--mtu", "-5"),
    ("--timeout", "0", "ifaces"),
    ("query", "broadcast", "10.0.0.255"),
])
def test_bad_numbers_and_choices_are_usage_errors(vrc: Run, argv: tuple[str, ...]) -> None:
    code, out, err = vrc(*argv)
    assert (code, out) == (2, "")
    assert "Traceback" not in err and "error:" in err


@pytest.mark.parametrize("argv", [
    ("iface", "set", "eth0", "--mtu", "\u0661\u0665\u0660\u0660"),  # Arabic-Indic 1500
    ("iface", "set", "eth0", "--mtu", "1_500"),
    ("iface", "set", "eth0", "--mtu", " 1500"),
    ("iface", "set", "eth0", "--mtu", "+1500"),
    ("capture", "eth0", "-c", "\u00b2"),  # superscript two
    ("capture", "eth0", "-s", "\uff19"),  # fullwidth nine
    ("events", "--after", "\u0663"),
    ("--timeout", "\u0661", "ifaces"),
    ("--timeout", "inf", "ifaces"),
    ("--timeout", "nan", "ifaces"),
    ("--timeout", "1e3", "ifaces"),
    ("--timeout", "99999999999999999999", "ifaces"),
])
def test_numbers_are_ascii_digits_and_timeouts_are_bounded(vrc: Run,
                                                           argv: tuple[str, ...]) -> None:
    """Issue 11 item 7 at the CLI: int() and float() take Unicode digits, blanks, signs,
    '_', inf and nan; a timeout of 1e20 s overflowed into an instant DEADLINE_EXCEEDED."""
    code, out, err = vrc(*argv)
    assert (code, out) == (2, "")
    assert "Traceback" not in err and "error:" in err


@pytest.mark.parametrize(("argv", "shown"), [
    (("--timeout", "2.5", "ifaces"), "eth0"),
    (("--timeout", "0.5", "ifaces"), "eth0"),
    (("iface", "set", "eth0", "--mtu", "01400"), "1400"),
])
def test_plain_ascii_numbers_still_work(vrc: Run, argv: tuple[str, ...], shown: str) -> None:
    code, out, _ = vrc(*argv)
    assert code == 0 and shown in out


def test_unreachable_agent_says_where_and_exits_1(
        capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    address = f"unix:{tmp_path}/none.sock"
    code = main(["--agent", address, "--timeout", "2", "ifaces"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot reach the agent at {address}" in one_line(err)


def test_json_counters_are_numbers(vrc: Run) -> None:
    _, out, _ = vrc("-o", "json", "ifaces", "eth0")
    counters = json.loads(out)[0]["counters"]
    assert counters and all(isinstance(v, int) for v in counters.values())


def test_arp_flush_of_one_entry_is_singular(capsys: pytest.CaptureFixture[str]) -> None:
    with running_agent(sample_engine()) as agent:
        assert main(["--agent", agent.address, "arp", "set", "eth0", "10.0.0.9",
                     "02:00:00:00:00:09"]) == 0
        capsys.readouterr()
        assert main(["--agent", agent.address, "arp", "flush"]) == 0
    assert capsys.readouterr().out == "1 entry flushed\n"


def test_engine_clock_timestamps_print_as_seconds() -> None:
    assert timestamp_text(12.5) == "12.500000"
    assert timestamp_text(1_700_000_000.25).endswith(".250000")
    assert ":" in timestamp_text(1_700_000_000.25)


def test_empty_value_reads_not_given_instead_of_none() -> None:
    error = RouterError(EINVAL, "dest", None, subject="alias 10.0.0.1 on ng0")
    assert message_of(error).endswith("[destination not given]")


def test_missing_nic_is_named_with_a_hint() -> None:
    text = nic_problem("nosuch0", OSError(errno.ENODEV, "No such device"))
    assert text.startswith("--interface nosuch0: no such network interface")


def test_nic_without_permission_says_root_is_needed() -> None:
    text = nic_problem("eth9", PermissionError(errno.EPERM, "Operation not permitted"))
    assert "needs root" in text and "eth9" in text


@pytest.mark.parametrize("mac", [bytes(6), b"", bytes.fromhex("010000000001")])
def test_nic_without_unicast_mac_cannot_start(mac: bytes) -> None:
    with pytest.raises(StartError, match="lo: not an Ethernet NIC"):
        check_nic_mac("lo", mac)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_cli_argument_and_command_has_help_text() -> None:
    bare = [f"{parser.prog}: {action.dest}"
            for parser in _parsers(build_parser())
            for action in parser._actions
            if not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert bare == []

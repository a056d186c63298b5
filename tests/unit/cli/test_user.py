"""The ``vrc`` CLI used the way a demanding user does, against the real engine.

Each rough edge found by driving a live agent by hand has a test here: bad
input gives one line naming the field and the value, exit 1 (2 for usage),
never a traceback, and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.main import main
from cli.output import timestamp_text
from router import Engine, EngineConfig
from router.arp.config import ArpConfig
from tests.unit.agents.support import RunningAgent, cli_runner, running_agent

MAC0, MAC1 = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    engine = Engine(EngineConfig(arp=ArpConfig(probe_num=0)))  # addresses usable at once
    engine.add_ethernet("eth0", MAC0)
    engine.add_ethernet("eth1", MAC1)
    with running_agent(engine) as running:
        yield running


@pytest.fixture
def vrc(agent: RunningAgent, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run one command; a usage error (SystemExit) comes back as its exit code."""
    return cli_runner(agent.address, capsys)


def ok(vrc: Run, *argv: str) -> str:
    code, out, err = vrc(*argv)
    assert (code, err) == (0, ""), err
    return out


def state(vrc: Run) -> list[str]:
    """Everything a command could change, as JSON text."""
    return [ok(vrc, "-o", "json", *cmd) for cmd in
            (("ifaces",), ("routes",), ("arp",), ("policy", "same-prefix"))]


# --- listings ------------------------------------------------------------------------


def test_ifaces_lists_every_ipv4_address_not_only_the_primary(vrc: Run) -> None:
    ok(vrc, "alias", "add", "eth0", "10.0.0.1/24")
    ok(vrc, "alias", "add", "eth0", "10.0.0.5/24")
    ok(vrc, "alias", "add", "eth0", "10.9.0.1/16")
    row = ok(vrc, "ifaces", "eth0").splitlines()[1]
    assert row.split()[-3:] == ["10.0.0.1/24", "10.0.0.5/24", "10.9.0.1/16"]
    listed = json.loads(ok(vrc, "-o", "json", "ifaces"))
    assert [a["address"] for a in listed[0]["addresses"]] == ["10.0.0.1", "10.0.0.5",
                                                              "10.9.0.1"]


def test_the_unspecified_address_shows_as_0_0_0_0_not_blank(vrc: Run) -> None:
    # in.c lets SIOCAIFADDR set INADDR_ANY (DHCP clients do); it must stay visible
    assert ok(vrc, "alias", "add", "eth0", "0.0.0.0/0") == \
        "eth0 0.0.0.0/0 broadcast 255.255.255.255\n"
    assert ok(vrc, "ifaces", "eth0").splitlines()[1].split()[-1] == "0.0.0.0/0"


def test_json_64_bit_integers_are_numbers_not_strings(vrc: Run) -> None:
    ok(vrc, "alias", "add", "eth0", "10.0.0.1/24")
    interface = json.loads(ok(vrc, "-o", "json", "ifaces", "eth0"))[0]
    assert all(type(v) is int for v in interface["counters"].values())
    event = json.loads(ok(vrc, "-o", "json", "events", "--after", "0", "-c", "1"))
    assert type(event["seq"]) is int and event["seq"] == 1


def test_flushing_one_entry_says_entry(vrc: Run, agent: RunningAgent) -> None:
    from scapy.layers.l2 import ARP, Ether

    ok(vrc, "alias", "add", "eth0", "10.0.0.1/24")
    request = Ether(src="02:00:00:00:00:09", dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc="02:00:00:00:00:09", psrc="10.0.0.9", pdst="10.0.0.1")
    agent.gate.call(lambda e: e.tick(5.0))  # the address is announced and usable
    agent.gate.call(lambda e: e.receive(1, bytes(request), 6.0))
    assert ok(vrc, "arp", "flush", "eth0") == "1 entry flushed\n"
    assert ok(vrc, "arp", "flush", "eth0") == "0 entries flushed\n"


def test_capture_time_of_day_for_unix_time_and_seconds_for_engine_clock() -> None:
    assert timestamp_text(12.5) == "12.500000"
    assert len(timestamp_text(1_795_543_883.25)) == len("18:11:23.250000")
    assert timestamp_text(1_795_543_883.25).endswith(":23.250000")


# --- usage errors: exit 2, a message, never a traceback --------------------------------

USAGE_ERRORS = [
    (("events", "-c", "-1"), "-c/--count"),
    (("events", "-c", "0"), "-c/--count"),
    (("events", "--after", "-5", "-c", "1"), "--after"),
    (("events", "--kind", "RTM_BOGUS", "-c", "1"), "--kind"),
    (("capture", "eth0", "-c", "-1"), "-c/--count"),
    (("capture", "eth0", "-s", "-5"), "--snaplen"),
    (("iface", "set", "eth0", "--mtu", "-3"), "--mtu"),
    (("iface", "set", "eth0", "--mtu", "abc"), "--mtu"),
    (("--timeout", "0", "ifaces"), "--timeout"),
    (("query", "broadcast", "10.0.0.255"), "IFACE"),
    (("policy", "same-prefix", "sometimes"), "mode"),
]


@pytest.mark.parametrize(("argv", "named"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in
                                                                USAGE_ERRORS])
def test_out_of_range_arguments_are_usage_errors_not_tracebacks(
        vrc: Run, argv: tuple[str, ...], named: str) -> None:
    code, out, err = vrc(*argv)
    assert code == 2 and out == ""
    assert named in err and "Traceback" not in err


# --- refusals: exit 1, one line naming the field and the value, nothing changed ------

REFUSALS = [
    (("alias", "add", "eth0", "10.0.0.256/24"), "INVALID_ARGUMENT: address 10.0.0.256/24"),
    (("alias", "add", "eth0", "10.0.0.1/33"), "INVALID_ARGUMENT: address 10.0.0.1/33"),
    (("alias", "add", "eth9", "10.0.0.1/24"), "NOT_FOUND: interface eth9"),
    (("alias", "add", "eth0", ""), "INVALID_ARGUMENT: address: is required"),
    (("alias", "add", "eth0", "10.0.0.9/24", "--broadcast", "1.2.3"),
     "INVALID_ARGUMENT: broadcast 1.2.3"),
    (("alias", "del", "eth1"),
     "NOT_FOUND: ifname eth1: has no IPv4 address to delete (EADDRNOTAVAIL)"),
    (("alias", "del", "eth0", "10.0.0.99"), "NOT_FOUND: delete 10.0.0.99 on eth0"),
    (("route", "add", "192.168.7.0/24"),
     "INVALID_ARGUMENT: route 192.168.7.0/24: needs a gateway or an interface"),
    (("route", "add", "192.168.7.0/40", "--dev", "eth0"),
     "INVALID_ARGUMENT: prefix 192.168.7.0/40"),
    (("route", "add", "192.168.7.0/24", "--gw", "172.16.0.1"),
     "FAILED_PRECONDITION: route 192.168.7.0/24: gateway is not on a connected network"),
    (("route", "del", "192.168.7.0/24"), "NOT_FOUND: route 192.168.7.0/24"),
    (("arp", "set", "eth0", "10.0.0.50", "02:00:00:00:00"),
     "INVALID_ARGUMENT: mac 02:00:00:00:00"),
    (("arp", "set", "eth0", "10.0.0.50", "01:00:5e:00:00:01"),
     "not a unicast MAC (EINVAL) [mac 01:00:5e:00:00:01]"),
    (("arp", "set", "eth0", "10.0.0.5x", "02:00:00:00:00:50"), "INVALID_ARGUMENT: ip 10.0.0.5x"),
    (("arp", "del", "eth0", "10.0.0.77"), "NOT_FOUND: ARP 10.0.0.77 on eth0"),
    (("arp", "del", "eth0", "10.0.0.1"),
     "FAILED_PRECONDITION: ARP 10.0.0.1 on eth0: an interface address"),
    (("arp", "-i", "eth9"), "NOT_FOUND: interface eth9"),
    (("ng", "destroy", "eth0"), "INVALID_ARGUMENT: destroy eth0: not an ngN interface (EINVAL)"),
    (("ng", "destroy", "ng7"), "NOT_FOUND: interface ng7"),
    (("iface", "set", "eth0", "--point-to-point"),
     "INVALID_ARGUMENT: mode of eth0: only ngN interfaces switch modes (EINVAL)"),
    (("iface", "set", "eth0", "--mtu", "20"), "INVALID_ARGUMENT: mtu of eth0"),
    (("query", "local-subnet", "1.2.3"), "INVALID_ARGUMENT: address 1.2.3"),
    (("capture", "eth9", "-c", "1"), "NOT_FOUND: ifname eth9"),
]


@pytest.mark.parametrize(("argv", "expected"), REFUSALS, ids=[" ".join(a) for a, _ in
                                                              REFUSALS])
def test_bad_input_is_one_line_naming_field_and_value_and_changes_nothing(
        vrc: Run, argv: tuple[str, ...], expected: str) -> None:
    ok(vrc, "alias", "add", "eth0", "10.0.0.1/24")
    before = state(vrc)
    code, out, err = vrc(*argv)
    assert (code, out) == (1, "")
    assert err.startswith("vrc: ") and err.count("\n") == 1, err
    assert expected in err
    assert "None" not in err and " : " not in err and "Traceback" not in err
    assert state(vrc) == before


def test_p2p_alias_without_destination_says_destination_not_given(vrc: Run) -> None:
    name = ok(vrc, "ng", "create").strip()
    code, _, err = vrc("alias", "add", name, "10.5.0.1/32")
    assert code == 1
    assert err == (f"vrc: INVALID_ARGUMENT: alias 10.5.0.1 on {name}: destination address "
                   "required (EDESTADDRREQ) [destination not given]\n")


# --- the connection -------------------------------------------------------------------


def test_unreachable_agent_names_the_address_and_what_to_check(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = f"unix:{tmp_path}/none.sock"
    code = main(["--agent", target, "--timeout", "2", "routes"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"vrc: UNAVAILABLE: cannot reach the agent at {target}: ")
    assert "vrc-agent running" in err and err.count("\n") == 1


def test_a_stream_whose_agent_stops_says_the_agent_went_away(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import threading
    import time

    from tests.unit.agents.support import sample_engine

    pcap = tmp_path / "eth0.pcap"
    codes: list[int] = []
    with running_agent(sample_engine()) as agent:
        worker = threading.Thread(target=lambda: codes.append(
            main(["--agent", agent.address, "capture", "eth0", "-w", str(pcap)])))
        worker.start()
        deadline = time.monotonic() + 10
        while not (pcap.exists() and pcap.stat().st_size >= 24):  # header: streaming
            assert time.monotonic() < deadline, "the capture never started"
            time.sleep(0.01)
        agent.server.stop(None).wait()
        worker.join(10)
    assert not worker.is_alive() and codes == [1]
    err = capsys.readouterr().err
    assert f"the agent at {agent.address} went away" in err
    assert "cannot reach" not in err


def test_a_capture_whose_interface_goes_away_says_so_and_exits_1(
        agent: RunningAgent, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import threading
    import time

    name = agent.gate.call(lambda e: e.create_ng())
    pcap = tmp_path / "ng.pcap"
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(
        main(["--agent", agent.address, "capture", name, "-c", "5", "-w", str(pcap)])))
    worker.start()
    deadline = time.monotonic() + 10
    while not (pcap.exists() and pcap.stat().st_size >= 24):  # header: streaming
        assert time.monotonic() < deadline, "the capture never started"
        time.sleep(0.01)
    agent.gate.call(lambda e: e.destroy_ng(name))
    worker.join(10)
    assert not worker.is_alive() and codes == [1]
    err = capsys.readouterr().err
    assert "vrc: 0 frames written to" in err
    assert f"vrc: capture on {name} ended after 0 frames: the interface is gone\n" in err

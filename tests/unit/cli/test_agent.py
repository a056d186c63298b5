"""The ``vrc`` CLI (agent half) against a live in-process agent."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.main import main
from cli.output import frame_summary
from router import Engine
from tests.unit.agents.support import RunningAgent, running_agent, sample_engine

ETH_ARP = bytes.fromhex(
    "ffffffffffff" "020000000009" "0806"
    "0001" "0800" "06" "04" "0001" "020000000009" "0a000009" "000000000000" "0a000001")
ETH_ICMP = bytes.fromhex(
    "020000000001" "020000000009" "0800"
    "45000054000040004001" "0000" "0a000009" "0a000001") + bytes(64)


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    with running_agent(sample_engine()) as running:
        yield running


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def vrc(agent: RunningAgent, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--agent", agent.address, *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition never came true"
        time.sleep(0.01)


def test_ifaces_prints_a_table(vrc: Run) -> None:
    code, out, err = vrc("ifaces")
    assert code == 0 and err == ""
    header, eth0, eth1 = out.splitlines()
    assert header.split() == ["NAME", "INDEX", "STATE", "MTU", "MAC", "FLAGS", "ADDRESSES"]
    assert eth0.split()[:5] == ["eth0", "1", "UP", "1500", "02:00:00:00:00:01"]
    assert eth1.split()[0] == "eth1"


def test_json_output_parses_before_or_after_the_command(vrc: Run) -> None:
    for argv in (("-o", "json", "ifaces"), ("ifaces", "-o", "json")):
        code, out, _ = vrc(*argv)
        assert code == 0
        assert [i["name"] for i in json.loads(out)] == ["eth0", "eth1"]


def test_alias_add_then_ifaces_shows_it(vrc: Run) -> None:
    code, out, _ = vrc("alias", "add", "eth0", "10.0.0.1/24")
    assert (code, out) == (0, "eth0 10.0.0.1/24 broadcast 10.0.0.255\n")
    _, out, _ = vrc("ifaces", "eth0")
    assert "10.0.0.1/24" in out


def test_alias_add_json_is_the_address(vrc: Run) -> None:
    code, out, _ = vrc("-o", "json", "alias", "add", "eth0", "10.0.0.1/24",
                       "--broadcast", "10.0.0.255")
    assert code == 0
    assert json.loads(out)["netmask"] == "255.255.255.0"


def test_alias_del_without_address_deletes_the_first(vrc: Run) -> None:
    vrc("alias", "add", "eth0", "10.0.0.1/24")
    vrc("alias", "add", "eth0", "10.1.0.1/16")
    code, out, _ = vrc("alias", "del", "eth0")
    assert code == 0 and out.startswith("eth0 10.0.0.1/24")


def test_grpc_error_prints_status_and_message_and_exits_1(vrc: Run) -> None:
    code, out, err = vrc("alias", "del", "eth0", "10.0.0.9")
    assert code == 1 and out == ""
    assert err.startswith("vrc: NOT_FOUND: ")
    assert "10.0.0.9" in err and "Traceback" not in err


def test_bad_address_is_invalid_argument_naming_the_field(vrc: Run) -> None:
    code, _, err = vrc("alias", "add", "eth0", "10.0.0.256/24")
    assert code == 1
    assert err == "vrc: INVALID_ARGUMENT: address 10.0.0.256/24: not an IPv4 address (EINVAL)\n"


def test_unreachable_agent_is_unavailable_not_a_traceback(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["--agent", f"unix:{tmp_path}/none.sock", "--timeout", "2", "routes"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("vrc: UNAVAILABLE: ")


def test_missing_tls_file_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--agent", "127.0.0.1:1", "--tls-ca", "/nonexistent/ca.pem", "routes"])
    assert code == 1
    assert capsys.readouterr().err.startswith("vrc: --tls-ca /nonexistent/ca.pem")


def test_usage_error_exits_2(vrc: Run) -> None:
    with pytest.raises(SystemExit) as info:
        vrc("policy", "same-prefix", "sometimes")
    assert info.value.code == 2


def test_routes_table_and_route_add_del(vrc: Run) -> None:
    assert vrc("route", "add", "192.168.0.0/16", "--gw", "10.0.0.254")[0] == 0
    code, out, _ = vrc("routes")
    assert code == 0
    assert out.splitlines()[1].split()[:2] == ["192.168.0.0/16", "10.0.0.254"]
    assert vrc("route", "del", "192.168.0.0/16")[0] == 0
    assert vrc("-o", "json", "routes")[1].strip() == "[]"


def test_arp_set_list_del(vrc: Run) -> None:
    code, out, _ = vrc("arp", "set", "eth0", "10.0.0.7", "02:aa:bb:cc:dd:ee", "--publish")
    assert code == 0 and "published" in out
    code, out, _ = vrc("arp")
    row = out.splitlines()[1].split()
    assert row == ["eth0", "10.0.0.7", "02:aa:bb:cc:dd:ee", "REACHABLE", "static,published"]
    code, out, _ = vrc("-o", "json", "arp", "-i", "eth1")
    assert json.loads(out) == []
    assert vrc("arp", "del", "eth0", "10.0.0.7")[0] == 0
    code, _, err = vrc("arp", "del", "eth0", "10.0.0.7")
    assert code == 1 and err.startswith("vrc: NOT_FOUND")


def test_arp_set_with_bad_mac_names_the_field(vrc: Run) -> None:
    code, _, err = vrc("arp", "set", "eth0", "10.0.0.7", "02:aa:bb")
    assert code == 1 and "INVALID_ARGUMENT: mac 02:aa:bb" in err


def test_policy_show_and_set(vrc: Run, agent: RunningAgent) -> None:
    assert vrc("policy", "same-prefix")[1] == "same-prefix: allow\n"
    assert vrc("policy", "same-prefix", "refuse")[1] == "same-prefix: refuse\n"
    assert agent.engine.policy == "refuse"
    assert json.loads(vrc("-o", "json", "policy", "same-prefix")[1]) == {
        "same_prefix": "POLICY_REFUSE"}


def test_iface_set_mode_then_up_and_mode_switch_while_up_is_refused(vrc: Run) -> None:
    assert vrc("ng", "create")[1] == "ng0\n"
    code, out, _ = vrc("-o", "json", "iface", "set", "ng0", "--broadcast")
    assert code == 0 and "BROADCAST" in json.loads(out)[0]["flags"]
    assert vrc("iface", "set", "ng0", "--up")[0] == 0
    code, out, err = vrc("iface", "set", "ng0", "--point-to-point")
    assert (code, out) == (1, "")
    assert err.startswith("vrc: FAILED_PRECONDITION: ")


def test_iface_set_mtu_and_down(vrc: Run) -> None:
    code, out, _ = vrc("iface", "set", "eth0", "--down", "--mtu", "9000")
    assert code == 0
    assert out.splitlines()[1].split()[:4] == ["eth0", "1", "DOWN", "9000"]


def test_query_answers_yes_or_no(vrc: Run) -> None:
    vrc("alias", "add", "eth0", "10.0.0.1/24")
    assert vrc("query", "local-address", "10.0.0.1")[1] == "yes\n"
    assert vrc("query", "local-subnet", "10.9.0.1")[1] == "no\n"


def test_events_with_count_prints_lines_and_exits_0(vrc: Run) -> None:
    vrc("alias", "add", "eth0", "10.0.0.1/24")
    vrc("alias", "add", "eth1", "10.1.0.1/24")
    code, out, _ = vrc("events", "--after", "0", "-c", "2")
    assert code == 0
    assert out.splitlines() == ["#1 RTM_NEWADDR eth0 addr=10.0.0.1 plen=24",
                                "#2 RTM_NEWADDR eth1 addr=10.1.0.1 plen=24"]


def test_events_json_is_one_object_per_line(vrc: Run) -> None:
    vrc("alias", "add", "eth0", "10.0.0.1/24")
    code, out, _ = vrc("-o", "json", "events", "--after", "0", "-c", "1")
    assert code == 0
    event = json.loads(out)
    assert (event["kind"], event["seq"], event["data"]["addr"]) == ("RTM_NEWADDR", 1,
                                                                    "10.0.0.1")


def _capture_in_background(agent: RunningAgent, argv: list[str],
                           frames: list[bytes]) -> int:
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(
        main(["--agent", agent.address, *argv])))
    worker.start()
    wait_for(lambda: agent.engine.taps.is_tapped(agent.engine.ifps["eth0"]))
    agent.gate.call(lambda e: [e.inject_frame("eth0", f) for f in frames])
    worker.join(10)
    assert not worker.is_alive()
    return result[0]


def test_capture_prints_one_line_per_frame(
        agent: RunningAgent, capsys: pytest.CaptureFixture[str]) -> None:
    code = _capture_in_background(agent, ["capture", "eth0", "-c", "2"],
                                  [ETH_ARP, ETH_ICMP, ETH_ARP])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].split()[1:4] == ["eth0", "in", "42"]
    assert lines[0].endswith("ARP who-has 10.0.0.1 tell 10.0.0.9")
    assert "IPv4 10.0.0.9 > 10.0.0.1 ICMP" in lines[1]


def test_capture_writes_a_pcap_tshark_reads(
        agent: RunningAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "eth0.pcap"
    code = _capture_in_background(agent, ["capture", "eth0", "-c", "2", "-w", str(path)],
                                  [ETH_ARP, ETH_ICMP])
    assert code == 0
    assert "2 frames written" in capsys.readouterr().err
    tshark = shutil.which("tshark")
    assert tshark, "tshark is needed (scripts/install-deps.sh installs it)"
    fields = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.protocols", "-e", "frame.len"],
        capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    assert fields == ["eth:ethertype:arp\t42", f"eth:ethertype:ip:icmp:data\t{len(ETH_ICMP)}"]


def test_capture_of_ng_interface_writes_dlt_null_pcap(
        agent: RunningAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scapy.utils import rdpcap

    from tests.unit.agents.test_api_service import HookClient, ng_up

    ng_up(agent)
    path = tmp_path / "ng0.pcap"
    hook = HookClient(agent, "ng0", "inet")
    assert next(hook.call).attached
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(main(
        ["--agent", agent.address, "capture", "ng0", "-c", "2", "-w", str(path)])))
    worker.start()
    wait_for(lambda: agent.engine.taps.is_tapped(agent.engine.ifps["ng0"]))
    packet = ETH_ICMP[14:]
    hook.send(packet)
    worker.join(10)
    hook.close()
    list(hook.call)
    assert result == [0]
    assert struct.unpack("=I", path.read_bytes()[20:24]) == (0,)  # LINKTYPE_NULL
    frames = rdpcap(str(path))
    assert [bytes(f)[4:] for f in frames] == [packet, packet]
    tshark = shutil.which("tshark")
    assert tshark, "tshark is needed (scripts/install-deps.sh installs it)"
    protocols = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.protocols"],
        capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert protocols == ["null:ip:icmp:data"] * 2


def test_frame_summary_of_dlt_null_ipv4() -> None:
    packet = (2).to_bytes(4, "little") + ETH_ICMP[14:]
    assert frame_summary(packet, 0).startswith("IPv4 10.0.0.9 > 10.0.0.1 ICMP")


@pytest.fixture
def engine_vrc(capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    """``vrc`` against an agent in front of a real engine with eth0/eth1 addressed."""
    engine = Engine()
    engine.add_ethernet("eth0", "02:00:00:00:00:01")
    engine.add_ethernet("eth1", "02:00:00:00:00:02")
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    with running_agent(engine) as running:
        def run(*argv: str) -> tuple[int, str, str]:
            code = main(["--agent", running.address, *argv])
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        yield run


def test_multipath_route_add_list_replace(engine_vrc: Run) -> None:
    vrc = engine_vrc
    code, out, _ = vrc("route", "add", "10.9.0.0/16", "--via", "10.0.0.254@eth0",
                       "--via", "10.1.0.254@eth1")
    assert code == 0 and "10.9.0.0/16 added" in out
    row = next(line.split() for line in vrc("routes")[1].splitlines()
               if line.startswith("10.9.0.0/16"))
    assert row[1:3] == ["10.0.0.254,10.1.0.254", "eth0,eth1"] and "ECMP" in row[3]
    listed = json.loads(vrc("-o", "json", "routes")[1])
    legs = next(r for r in listed if r["prefix"] == "10.9.0.0/16")["next_hops"]
    assert [(leg["gateway"], leg["ifname"]) for leg in legs] == [("10.0.0.254", "eth0"),
                                                                 ("10.1.0.254", "eth1")]
    code, out, _ = vrc("route", "add", "10.9.0.0/16", "--replace", "--via", "10.1.0.254@eth1")
    assert code == 0 and "10.9.0.0/16 set" in out
    row = next(line.split() for line in vrc("routes")[1].splitlines()
               if line.startswith("10.9.0.0/16"))
    assert row[1:3] == ["10.1.0.254", "eth1"] and "ECMP" not in row[3]
    code, _, err = vrc("route", "add", "10.8.0.0/16", "--via", "10.1.0.254@eth0")
    assert code == 1 and "FAILED_PRECONDITION" in err and "not on-link through eth0" in err


def test_route_add_via_needs_gw_at_iface(engine_vrc: Run) -> None:
    with pytest.raises(SystemExit) as info:
        engine_vrc("route", "add", "10.9.0.0/16", "--via", "10.0.0.254")
    assert info.value.code == 2

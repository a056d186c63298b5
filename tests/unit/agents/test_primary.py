"""Never cut a node off: the primary-interface decision, on fake routing tables (no root)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

import agents.primary as primary
from agents.daemon import Agent, AgentOptions, StartError, build_parser, options_from
from agents.primary import (
    DefaultRoute,
    HostFacts,
    parse_ip_addresses,
    parse_ipv4_routes,
    parse_ipv6_routes,
    parse_node_ip,
    primary_reasons,
    refusal,
)

ROUTE_HEADER = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\t"
                "Window\tIRTT\n")


def route_line(ifname: str, destination: str, gateway: str, flags: str, mask: str) -> str:
    return f"{ifname}\t{destination}\t{gateway}\t{flags}\t0\t0\t0\t{mask}\t0\t0\t0\n"


# default via 192.0.2.1 dev eth0 (little-endian hex, as the kernel prints it)
PROC_NET_ROUTE = (
    ROUTE_HEADER
    + route_line("eth0", "00000000", "010200C0", "0003", "00000000")
    + route_line("eth0", "000200C0", "00000000", "0001", "00FFFFFF")
    + route_line("eth1", "0000000A", "00000000", "0001", "0000FFFF")
)
IPV6_ROUTE = (
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth3\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
)


def no_uppers(_ifname: str) -> list[str]:
    return []


def reasons_for(ifname: str, *, routes: list[DefaultRoute] | None = None,
                addresses: dict[str, set[Any]] | None = None,
                uppers: dict[str, list[str]] | None = None,
                node_ip: str | None = None) -> list[str]:
    stacks = uppers or {}
    return primary_reasons(
        ifname,
        default_routes=routes if routes is not None else parse_ipv4_routes(PROC_NET_ROUTE),
        addresses=addresses or {},
        uppers=lambda name: stacks.get(name, []),
        node_ip=ipaddress.ip_address(node_ip) if node_ip else None,
    )


def test_ipv4_default_route_is_read_with_its_gateway() -> None:
    routes = parse_ipv4_routes(PROC_NET_ROUTE)
    assert routes == [DefaultRoute("eth0", 4, ipaddress.IPv4Address("192.0.2.1"))]


def test_ipv4_reject_and_down_defaults_do_not_count() -> None:
    text = (ROUTE_HEADER + route_line("eth0", "00000000", "00000000", "0201", "00000000")
            + route_line("eth1", "00000000", "00000000", "0000", "00000000"))
    assert parse_ipv4_routes(text) == []


def test_ipv4_route_lines_that_do_not_parse_are_ignored() -> None:
    assert parse_ipv4_routes(ROUTE_HEADER + "eth0\tzz\t00\t1\n" + "short line\n") == []


def test_ipv6_default_route_is_read_and_the_kernels_lo_rejects_are_not() -> None:
    assert parse_ipv6_routes(IPV6_ROUTE) == [
        DefaultRoute("eth3", 6, ipaddress.IPv6Address("fd00::1"))]


def test_interface_with_the_default_route_is_primary() -> None:
    assert reasons_for("eth0") == ["it holds the default route 0.0.0.0/0 via 192.0.2.1"]


def test_interface_with_only_a_subnet_route_is_not_primary() -> None:
    assert reasons_for("eth1") == []


def test_ipv6_default_route_makes_an_interface_primary() -> None:
    reasons = reasons_for("eth3", routes=parse_ipv6_routes(IPV6_ROUTE))
    assert reasons == ["it holds the default route ::/0 via fd00::1"]


def test_interface_holding_the_node_ip_is_primary_even_without_a_default_route() -> None:
    addresses = {"eth2": {ipaddress.ip_address("10.20.0.7")}}
    reasons = reasons_for("eth2", addresses=addresses, node_ip="10.20.0.7")
    assert reasons == ["it holds the node's address 10.20.0.7 (--node-ip)"]


def test_node_ip_on_another_interface_leaves_this_one_alone() -> None:
    addresses = {"eth2": {ipaddress.ip_address("10.20.0.7")}}
    assert reasons_for("eth1", addresses=addresses, node_ip="10.20.0.7") == []


def test_bridge_port_under_the_primary_bridge_is_primary() -> None:
    routes = [DefaultRoute("br0", 4, ipaddress.IPv4Address("192.0.2.1"))]
    reasons = reasons_for("eth0", routes=routes, uppers={"eth0": ["br0"]})
    assert reasons == ["its upper device br0 (eth0 -> br0) holds the default route "
                       "0.0.0.0/0 via 192.0.2.1"]


def test_vlan_on_a_bond_on_the_nic_is_followed_to_the_node_ip() -> None:
    addresses = {"bond0.10": {ipaddress.ip_address("10.20.0.7")}}
    reasons = reasons_for("eth4", routes=[], addresses=addresses, node_ip="10.20.0.7",
                          uppers={"eth4": ["bond0"], "bond0": ["bond0.10"]})
    assert reasons == ["its upper device bond0.10 (eth4 -> bond0 -> bond0.10) holds the "
                       "node's address 10.20.0.7 (--node-ip)"]


def test_both_reasons_are_given_when_both_hold() -> None:
    addresses = {"eth0": {ipaddress.ip_address("192.0.2.5")}}
    reasons = reasons_for("eth0", addresses=addresses, node_ip="192.0.2.5")
    assert len(reasons) == 2


def test_a_cycle_of_uppers_cannot_loop() -> None:
    reasons = reasons_for("a", routes=[], uppers={"a": ["b"], "b": ["a"]})
    assert reasons == []


def test_refusal_names_the_interface_the_reason_and_the_override() -> None:
    text = refusal("eth0", ["it holds the default route 0.0.0.0/0 via 192.0.2.1"])
    assert text.startswith("--interface eth0: refusing the node's primary interface")
    assert "default route 0.0.0.0/0 via 192.0.2.1" in text
    assert "cut this node off" in text
    assert "--allow-primary-interface" in text


def test_ip_json_addresses_are_collected_per_interface() -> None:
    text = ('[{"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.5"},'
            '{"family":"inet6","local":"fe80::1"}]},{"ifname":"eth1","addr_info":[]}]')
    assert parse_ip_addresses(text) == {
        "eth0": {ipaddress.ip_address("192.0.2.5"), ipaddress.ip_address("fe80::1")},
        "eth1": set(),
    }


@pytest.mark.parametrize("value", ["", "10.0.0", "node-1", "10.0.0.1/24"])
def test_bad_node_ip_is_a_value_error_naming_the_flag(value: str) -> None:
    with pytest.raises(ValueError, match="--node-ip"):
        parse_node_ip(value)


def test_uppers_come_from_sysfs_upper_links(tmp_path: Path) -> None:
    (tmp_path / "eth0").mkdir()
    (tmp_path / "br0").mkdir()
    (tmp_path / "eth0" / "upper_br0").symlink_to(tmp_path / "br0")
    (tmp_path / "eth0" / "lower_x").symlink_to(tmp_path / "br0")
    facts = HostFacts([DefaultRoute("br0", 4, None)], {}, tmp_path)
    assert facts.uppers("eth0") == ["br0"]
    assert facts.uppers("missing") == []
    assert facts.reasons("eth0", None) == [
        "its upper device br0 (eth0 -> br0) holds the default route 0.0.0.0/0"]


def test_host_facts_read_the_proc_files(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(PROC_NET_ROUTE)
    (tmp_path / "ipv6_route").write_text(IPV6_ROUTE)
    facts = primary.read_host_facts(tmp_path, tmp_path, need_addresses=False)
    assert {route.ifname for route in facts.default_routes} == {"eth0", "eth3"}


# --- the agent refuses before any NIC is touched -------------------------------------------


class Touched(Exception):
    pass


@pytest.fixture
def fake_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    facts = HostFacts(parse_ipv4_routes(PROC_NET_ROUTE),
                      {"eth2": {ipaddress.ip_address("10.20.0.7")}}, tmp_path)
    monkeypatch.setattr(primary, "read_host_facts", lambda **_kw: facts)

    def no_open(*_args: Any) -> Any:
        raise Touched("a NIC was opened")

    monkeypatch.setattr("agents.daemon.PacketLink.open", no_open)


def agent_for(*argv: str) -> Agent:
    options: AgentOptions = options_from(build_parser().parse_args(
        [*argv, "--listen", "unix:/tmp/vrc-never-bound.sock"]))
    return Agent(options)


@pytest.mark.usefixtures("fake_host")
@pytest.mark.parametrize(("argv", "ifname"), [
    (("-i", "eth1", "-i", "eth0"), "eth0"),
    (("-i", "eth2", "--node-ip", "10.20.0.7"), "eth2"),
])
def test_agent_refuses_the_primary_interface_before_opening_any_nic(
        argv: tuple[str, ...], ifname: str) -> None:
    with pytest.raises(StartError, match=f"--interface {ifname}: refusing the node's primary"):
        agent_for(*argv).start()


@pytest.mark.usefixtures("fake_host")
def test_forced_primary_interface_goes_on_to_open_the_nic() -> None:
    with pytest.raises(Touched):
        agent_for("-i", "eth0", "--allow-primary-interface").start()


@pytest.mark.usefixtures("fake_host")
def test_a_data_plane_nic_goes_on_to_open_the_nic() -> None:
    with pytest.raises(Touched):
        agent_for("-i", "eth1", "--node-ip", "10.20.0.7").start()


@pytest.mark.usefixtures("fake_host")
def test_without_isolation_nothing_is_cut_off_and_nothing_is_refused() -> None:
    with pytest.raises(Touched):
        agent_for("-i", "eth0", "--no-isolation").start()


def test_interface_lists_split_on_commas_keep_order_and_drop_repeats() -> None:
    args = build_parser().parse_args(["-i", "eth1, eth2", "--interface", "eth3,eth1,", "-i",
                                      "eth2"])
    assert options_from(args).interfaces == ["eth1", "eth2", "eth3"]


def test_an_empty_interface_list_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from agents.daemon import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--interface=", "--listen", "unix:/tmp/vrc-never-bound.sock"])
    assert exit_info.value.code == 2
    assert "at least one --interface" in capsys.readouterr().err

"""The Agent API in front of the real engine (router.engine.api.Engine)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from scapy.layers.inet import ICMP, IP

from router import Engine
from tests.unit.agents.support import RunningAgent, running_agent
from tests.unit.agents.test_api_service import HookClient
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import types_pb2 as tpb

TIMEOUT = 10
MAC0, MAC1 = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    engine = Engine()
    engine.add_ethernet("eth0", MAC0)
    engine.add_ethernet("eth1", MAC1)
    with running_agent(engine) as running:
        yield running


def failure(call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=TIMEOUT)  # type: ignore[operator]
    return info.value


def errno_of(error: grpc.RpcError) -> str:
    return dict(error.trailing_metadata())["vrc-errno"]  # type: ignore[attr-defined]


def add(agent: RunningAgent, ifname: str, address: str, **extra: str) -> tpb.Address:
    return agent.stub.AddAlias(pb.AddAliasRequest(ifname=ifname, address=address, **extra),
                               timeout=TIMEOUT).address


def make_ng(agent: RunningAgent, *, up: bool = True) -> str:
    name = agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(),
                                             timeout=TIMEOUT).name
    add(agent, name, "10.9.0.1/32", destination="10.9.0.2")  # an address brings ngN up
    agent.stub.SetInterface(pb.SetInterfaceRequest(name=name, up=up), timeout=TIMEOUT)
    return name


def test_interfaces_of_the_engine_with_addresses(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    reply = agent.stub.ListInterfaces(pb.ListInterfacesRequest(), timeout=TIMEOUT)
    eth0 = reply.interfaces[0]
    assert (eth0.name, eth0.index, eth0.mac, eth0.type) == ("eth0", 1, "02:00:00:00:00:01",
                                                            "ETHER")
    assert {"UP", "BROADCAST", "RUNNING"} <= set(eth0.flags)
    assert "ARPLL" in eth0.eflags
    assert [(a.address, a.prefix_len, a.broadcast, a.owns_route) for a in eth0.addresses] == [
        ("10.0.0.1", 24, "10.0.0.255", True)]


def test_alias_creates_the_prefix_route_listed_with_its_interface(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    routes = agent.stub.ListRoutes(pb.ListRoutesRequest(), timeout=TIMEOUT).routes
    connected = [r for r in routes if r.prefix == "10.0.0.0/24"]
    assert len(connected) == 1 and connected[0].ifname == "eth0"
    assert any(r.prefix == "10.0.0.1/32" and "LOCAL" in r.flags for r in routes)


def test_second_address_with_same_prefix_gets_no_route_then_refuse_is_already_exists(
        agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    second = add(agent, "eth1", "10.0.0.2/24")
    assert not second.owns_route
    agent.stub.SetPolicy(pb.SetPolicyRequest(same_prefix=tpb.POLICY_REFUSE), timeout=TIMEOUT)
    assert agent.stub.GetPolicy(pb.GetPolicyRequest(), timeout=TIMEOUT).same_prefix \
        == tpb.POLICY_REFUSE
    error = failure(agent.stub.AddAlias, pb.AddAliasRequest(ifname="eth1",
                                                            address="10.0.0.3/24"))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS and errno_of(error) == "EEXIST"


def test_delete_first_alias_and_unknown_alias(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    add(agent, "eth0", "10.1.0.1/24")
    deleted = agent.stub.DeleteAlias(pb.DeleteAliasRequest(ifname="eth0"), timeout=TIMEOUT)
    assert deleted.address.address == "10.0.0.1"
    error = failure(agent.stub.DeleteAlias, pb.DeleteAliasRequest(ifname="eth0",
                                                                  address="10.0.0.1"))
    assert error.code() is grpc.StatusCode.NOT_FOUND and errno_of(error) == "EADDRNOTAVAIL"


def test_get_address_fields_follow_the_seed_rules(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    name = make_ng(agent, up=False)
    reply = agent.stub.GetAddress(pb.GetAddressRequest(
        ifname="eth0", field=pb.ADDRESS_FIELD_BROADCAST), timeout=TIMEOUT)
    assert reply.value == "10.0.0.255"
    reply = agent.stub.GetAddress(pb.GetAddressRequest(
        ifname=name, field=pb.ADDRESS_FIELD_DESTINATION), timeout=TIMEOUT)
    assert reply.value == "10.9.0.2"
    for ifname, field in (("eth0", pb.ADDRESS_FIELD_DESTINATION),
                          (name, pb.ADDRESS_FIELD_BROADCAST)):
        error = failure(agent.stub.GetAddress, pb.GetAddressRequest(ifname=ifname, field=field))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    error = failure(agent.stub.GetAddress, pb.GetAddressRequest(ifname="eth1"))
    assert error.code() is grpc.StatusCode.NOT_FOUND


def test_ng_alias_rules(agent: RunningAgent) -> None:
    name = agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(),
                                             timeout=TIMEOUT).name
    assert name == "ng0"
    error = failure(agent.stub.AddAlias, pb.AddAliasRequest(ifname=name, address="10.9.0.1/32"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and errno_of(error) == "EDESTADDRREQ"
    error = failure(agent.stub.AddAlias, pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24",
                                                            vhid=1))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


def test_ng_mode_switch_while_up_is_failed_precondition(agent: RunningAgent) -> None:
    name = make_ng(agent)
    error = failure(agent.stub.SetInterface, pb.SetInterfaceRequest(
        name=name, mode=pb.INTERFACE_MODE_BROADCAST))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and errno_of(error) == "EBUSY"


def test_ng_mtu_out_of_bounds_is_invalid_argument(agent: RunningAgent) -> None:
    name = make_ng(agent)
    error = failure(agent.stub.SetInterface, pb.SetInterfaceRequest(name=name, mtu=1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "mtu" in error.details()


def test_destroy_ng_and_unknown(agent: RunningAgent) -> None:
    name = make_ng(agent)
    agent.stub.DestroyVirtualInterface(pb.DestroyVirtualInterfaceRequest(name=name),
                                       timeout=TIMEOUT)
    error = failure(agent.stub.GetInterface, pb.GetInterfaceRequest(name=name))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    error = failure(agent.stub.DestroyVirtualInterface,
                    pb.DestroyVirtualInterfaceRequest(name="eth0"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_static_routes(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    route = agent.stub.AddRoute(pb.AddRouteRequest(prefix="192.168.0.0/16",
                                                   gateway="10.0.0.254"), timeout=TIMEOUT).route
    assert (route.prefix, route.gateway, route.ifname) == ("192.168.0.0/16", "10.0.0.254",
                                                           "eth0")
    assert "STATIC" in route.flags and "GATEWAY" in route.flags
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(prefix="192.168.0.0/16",
                                                            gateway="10.0.0.254"))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(prefix="172.16.0.0/12",
                                                            gateway="10.77.0.1"))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    agent.stub.DeleteRoute(pb.DeleteRouteRequest(prefix="192.168.0.0/16"), timeout=TIMEOUT)
    error = failure(agent.stub.DeleteRoute, pb.DeleteRouteRequest(prefix="192.168.0.0/16"))
    assert error.code() is grpc.StatusCode.NOT_FOUND and errno_of(error) == "ESRCH"


def legs(*pairs: tuple[str, str]) -> list[tpb.RouteNextHop]:
    return [tpb.RouteNextHop(gateway=gateway, ifname=ifname) for gateway, ifname in pairs]


def test_multipath_routes_add_list_and_replace(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    add(agent, "eth1", "10.1.0.1/24")
    two = legs(("10.0.0.254", "eth0"), ("10.1.0.254", "eth1"))
    route = agent.stub.AddRoute(pb.AddRouteRequest(prefix="10.9.0.0/16", next_hops=two),
                                timeout=TIMEOUT).route
    assert [(h.gateway, h.ifname, h.usable) for h in route.next_hops] == [
        ("10.0.0.254", "eth0", True), ("10.1.0.254", "eth1", True)]
    assert {"ECMP", "GATEWAY", "STATIC"} <= set(route.flags)
    assert (route.gateway, route.ifname) == ("10.0.0.254", "eth0")  # the first leg
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(prefix="10.9.0.0/16", next_hops=two))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    agent.stub.AddRoute(pb.AddRouteRequest(prefix="10.9.0.0/16", replace=True,
                                           next_hops=legs(("10.1.0.254", "eth1"))),
                        timeout=TIMEOUT)
    listed = agent.stub.ListRoutes(pb.ListRoutesRequest(), timeout=TIMEOUT).routes
    replaced = next(r for r in listed if r.prefix == "10.9.0.0/16")
    assert (replaced.gateway, replaced.ifname, list(replaced.next_hops)) == (
        "10.1.0.254", "eth1", [])
    agent.stub.SetInterface(pb.SetInterfaceRequest(name="eth0", up=False), timeout=TIMEOUT)
    agent.stub.AddRoute(pb.AddRouteRequest(prefix="10.9.0.0/16", replace=True, next_hops=two),
                        timeout=TIMEOUT)
    listed = agent.stub.ListRoutes(pb.ListRoutesRequest(), timeout=TIMEOUT).routes
    wide = next(r for r in listed if r.prefix == "10.9.0.0/16")
    assert [h.usable for h in wide.next_hops] == [False, True]  # eth0 is down


def test_multipath_route_errors_name_the_field(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    add(agent, "eth1", "10.1.0.1/24")
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(
        prefix="10.9.0.0/16", next_hops=legs(("10.0.0.254", "eth0"), ("10.0.0.253", "eth1"))))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "next_hops" not in error.details() and "gateways[1].gateway" in error.details()
    assert "not on-link through eth1" in error.details()
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(
        prefix="10.9.0.0/16", gateway="10.0.0.254", next_hops=legs(("10.1.0.254", "eth1"))))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "next_hops" in error.details()
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(
        prefix="10.9.0.0/16", next_hops=legs(("10.1.0.x", "eth1"))))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "next_hops[0].gateway" in error.details()
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(
        prefix="10.9.0.0/16", gateway="10.0.0.254", replace=True))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "replace" in error.details()
    error = failure(agent.stub.AddRoute, pb.AddRouteRequest(
        prefix="10.9.0.0/16", gateway="10.1.0.254", ifname="eth0"))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "not on-link through eth0" in error.details()
    assert not [r for r in agent.stub.ListRoutes(pb.ListRoutesRequest(), timeout=TIMEOUT).routes
                if r.prefix == "10.9.0.0/16"]


def test_arp_static_published_entry(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")
    entry = agent.stub.SetArp(pb.SetArpRequest(ifname="eth0", ip="10.0.0.7",
                                               mac="02:aa:bb:cc:dd:ee", published=True),
                              timeout=TIMEOUT).entry
    assert (entry.ifname, entry.ip, entry.mac, entry.static, entry.published) == (
        "eth0", "10.0.0.7", "02:aa:bb:cc:dd:ee", True, True)
    listed = agent.stub.ListArp(pb.ListArpRequest(ifname="eth0"), timeout=TIMEOUT).entries
    assert "10.0.0.7" in [e.ip for e in listed]
    agent.stub.DeleteArp(pb.DeleteArpRequest(ifname="eth0", ip="10.0.0.7"), timeout=TIMEOUT)
    listed = agent.stub.ListArp(pb.ListArpRequest(ifname="eth0"), timeout=TIMEOUT).entries
    assert "10.0.0.7" not in [e.ip for e in listed]


def test_queries(agent: RunningAgent) -> None:
    add(agent, "eth0", "10.0.0.1/24")

    def ask(kind: int, address: str, ifname: str = "") -> bool:
        return agent.stub.Query(pb.QueryRequest(kind=kind, address=address, ifname=ifname),
                                timeout=TIMEOUT).result

    assert ask(pb.QUERY_KIND_LOCAL_ADDRESS, "10.0.0.1")
    assert ask(pb.QUERY_KIND_LOCAL_SUBNET, "10.0.0.99")
    assert not ask(pb.QUERY_KIND_LOCAL_SUBNET, "10.1.0.1")
    assert not ask(pb.QUERY_KIND_CAN_FORWARD, "127.0.0.1")
    assert ask(pb.QUERY_KIND_CAN_FORWARD, "8.8.8.8")
    assert ask(pb.QUERY_KIND_BROADCAST, "10.0.0.255", "eth0")
    assert not ask(pb.QUERY_KIND_BROADCAST, "10.0.0.255", "eth1")


def test_events_carry_the_engine_news(agent: RunningAgent) -> None:
    stream = agent.stub.WatchEvents(pb.WatchEventsRequest(after_seq=0), timeout=TIMEOUT)
    kinds: list[str] = []
    kinds += [e.kind for e in next(stream).events]
    add(agent, "eth0", "10.0.0.1/24")
    while "RTM_NEWADDR" not in kinds:
        kinds += [e.kind for e in next(stream).events]
    stream.cancel()
    assert kinds[0] == "IF_ATTACHED"
    assert "RTM_ADD" in kinds


def test_hook_ping_through_the_engine_and_capture_as_dlt_null(agent: RunningAgent) -> None:
    name = make_ng(agent)
    capture = agent.stub.Capture(pb.CaptureRequest(ifname=name, count=2), timeout=TIMEOUT)
    assert next(capture).linktype == 0
    hook = HookClient(agent, name, "inet")
    assert next(hook.call).attached
    hook.send(bytes(IP(src="10.9.0.2", dst="10.9.0.1") / ICMP(type=8, id=7, seq=1)))
    reply = IP(next(hook.call).packets[0])
    assert (reply.src, reply.dst, reply[ICMP].type, reply[ICMP].id) == ("10.9.0.1", "10.9.0.2",
                                                                       0, 7)
    frames = [f for batch in capture for f in batch.frames]
    assert [f.direction for f in frames] == [tpb.DIRECTION_IN, tpb.DIRECTION_OUT]
    assert all(f.data[:4] in (b"\x02\0\0\0", b"\0\0\0\x02") for f in frames)
    hook.close()
    list(hook.call)


def test_second_hook_client_is_already_exists_and_unknown_hook_unimplemented(
        agent: RunningAgent) -> None:
    name = make_ng(agent)
    first = HookClient(agent, name, "inet")
    assert next(first.call).attached
    second = HookClient(agent, name, "inet")
    with pytest.raises(grpc.RpcError) as info:
        next(second.call)
    assert info.value.code() is grpc.StatusCode.ALREADY_EXISTS
    odd = HookClient(agent, name, "appletalk")
    with pytest.raises(grpc.RpcError) as info:
        next(odd.call)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    first.close()
    list(first.call)


def test_hook_send_into_a_down_ng_is_unavailable(agent: RunningAgent) -> None:
    name = make_ng(agent, up=False)
    hook = HookClient(agent, name, "inet")
    assert next(hook.call).attached
    hook.send(bytes(IP(src="10.9.0.2", dst="10.9.0.1") / ICMP()))
    with pytest.raises(grpc.RpcError) as info:
        next(hook.call)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE

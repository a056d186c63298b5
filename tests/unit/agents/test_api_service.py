"""The Agent servicer through a real grpc server: every RPC and every error mapping."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc
import pytest

from agents.gate import EventLog, Gate
from router import errors as E
from router.errors import RouterError
from tests.unit.agents.support import RunningAgent, running_agent, sample_engine
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import types_pb2 as tpb

TIMEOUT = 10


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    with running_agent(sample_engine()) as running:
        yield running


def rpc_error(call: object, *args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=TIMEOUT)  # type: ignore[operator]
    return info.value


def trailing(error: grpc.RpcError) -> dict[str, str]:
    return dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]


# --- interfaces ----------------------------------------------------------------------


def test_list_interfaces_shows_flags_mac_and_index(agent: RunningAgent) -> None:
    reply = agent.stub.ListInterfaces(pb.ListInterfacesRequest(), timeout=TIMEOUT)
    eth0 = {i.name: i for i in reply.interfaces}["eth0"]
    assert eth0.index == 1
    assert eth0.mac == "02:00:00:00:00:01"
    assert {"UP", "BROADCAST", "MULTICAST"} <= set(eth0.flags)
    assert eth0.mtu == 1500
    assert eth0.state == "attached"


def test_get_unknown_interface_is_not_found_naming_it(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.GetInterface, pb.GetInterfaceRequest(name="eth9"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert "eth9" in error.details()


def test_get_interface_without_name_is_invalid_argument(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.GetInterface, pb.GetInterfaceRequest())
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in error.details()


def test_create_virtual_interface_takes_first_free_unit(agent: RunningAgent) -> None:
    first = agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(),
                                              timeout=TIMEOUT)
    second = agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(),
                                               timeout=TIMEOUT)
    assert (first.name, second.name) == ("ng0", "ng1")
    assert "POINTOPOINT" in first.flags
    agent.stub.DestroyVirtualInterface(pb.DestroyVirtualInterfaceRequest(name="ng0"),
                                       timeout=TIMEOUT)
    again = agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(),
                                              timeout=TIMEOUT)
    assert again.name == "ng0"


def test_destroy_unknown_virtual_interface_is_not_found(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.DestroyVirtualInterface,
                      pb.DestroyVirtualInterfaceRequest(name="ng7"))
    assert error.code() is grpc.StatusCode.NOT_FOUND


def test_set_interface_changes_only_the_fields_given(agent: RunningAgent) -> None:
    reply = agent.stub.SetInterface(pb.SetInterfaceRequest(name="eth0", mtu=9000),
                                    timeout=TIMEOUT)
    assert reply.mtu == 9000 and "UP" in reply.flags
    reply = agent.stub.SetInterface(pb.SetInterfaceRequest(name="eth0", up=False),
                                    timeout=TIMEOUT)
    assert reply.mtu == 9000 and "UP" not in reply.flags


def test_mode_switch_while_up_is_failed_precondition(agent: RunningAgent) -> None:
    agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(), timeout=TIMEOUT)
    agent.stub.SetInterface(pb.SetInterfaceRequest(name="ng0", up=True), timeout=TIMEOUT)
    error = rpc_error(agent.stub.SetInterface, pb.SetInterfaceRequest(
        name="ng0", mode=pb.INTERFACE_MODE_BROADCAST))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert trailing(error)["vrc-errno"] == "EBUSY"


def test_mode_switch_while_down_applies(agent: RunningAgent) -> None:
    agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(), timeout=TIMEOUT)
    reply = agent.stub.SetInterface(pb.SetInterfaceRequest(
        name="ng0", mode=pb.INTERFACE_MODE_BROADCAST), timeout=TIMEOUT)
    assert "BROADCAST" in reply.flags and "POINTOPOINT" not in reply.flags


def test_mtu_out_of_bounds_is_invalid_argument_naming_mtu(agent: RunningAgent) -> None:
    agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(), timeout=TIMEOUT)
    error = rpc_error(agent.stub.SetInterface, pb.SetInterfaceRequest(name="ng0", mtu=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "mtu" in error.details() and "10" in error.details()
    assert trailing(error)["vrc-field"] == "mtu"


# --- addresses -----------------------------------------------------------------------


def test_add_alias_returns_the_address_with_broadcast(agent: RunningAgent) -> None:
    reply = agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                                timeout=TIMEOUT)
    assert reply.address.address == "10.0.0.1"
    assert reply.address.prefix_len == 24
    assert reply.address.netmask == "255.255.255.0"
    assert reply.address.broadcast == "10.0.0.255"
    assert reply.address.destination == ""
    iface = agent.stub.GetInterface(pb.GetInterfaceRequest(name="eth0"), timeout=TIMEOUT)
    assert [a.address for a in iface.addresses] == ["10.0.0.1"]


@pytest.mark.parametrize(("field", "value"), [
    ("address", "10.0.0.300/24"),
    ("address", "10.0.0.1/33"),
    ("address", "10.0.0.1/x"),
    ("address", "fe80::1/64"),
    ("broadcast", "10.0.0"),
    ("destination", "nope"),
])
def test_bad_alias_strings_are_invalid_argument_naming_the_field(
        agent: RunningAgent, field: str, value: str) -> None:
    request = pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24")
    setattr(request, field, value)
    error = rpc_error(agent.stub.AddAlias, request)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field} {value}")
    assert trailing(error) == {"vrc-errno": "EINVAL", "vrc-field": field, "vrc-value": value}
    assert agent.engine.ifps["eth0"].addresses == []


def test_alias_on_point_to_point_without_destination_is_invalid_argument(
        agent: RunningAgent) -> None:
    agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(), timeout=TIMEOUT)
    error = rpc_error(agent.stub.AddAlias, pb.AddAliasRequest(ifname="ng0",
                                                              address="10.9.0.1/32"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert trailing(error)["vrc-errno"] == "EDESTADDRREQ"
    reply = agent.stub.AddAlias(pb.AddAliasRequest(ifname="ng0", address="10.9.0.1/32",
                                                   destination="10.9.0.2"), timeout=TIMEOUT)
    assert reply.address.destination == "10.9.0.2"
    assert reply.address.broadcast == ""


def test_alias_with_vhid_is_unimplemented(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.AddAlias, pb.AddAliasRequest(
        ifname="eth0", address="10.0.0.1/24", vhid=3))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert trailing(error)["vrc-errno"] == "EPROTONOSUPPORT"


def test_same_prefix_refused_is_already_exists(agent: RunningAgent) -> None:
    agent.stub.SetPolicy(pb.SetPolicyRequest(same_prefix=tpb.POLICY_REFUSE), timeout=TIMEOUT)
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                        timeout=TIMEOUT)
    error = rpc_error(agent.stub.AddAlias, pb.AddAliasRequest(ifname="eth1",
                                                              address="10.0.0.2/24"))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "10.0.0.2/24" in error.details()


def test_delete_alias_without_address_deletes_the_first(agent: RunningAgent) -> None:
    for address in ("10.0.0.1/24", "10.1.0.1/24"):
        agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address=address), timeout=TIMEOUT)
    reply = agent.stub.DeleteAlias(pb.DeleteAliasRequest(ifname="eth0"), timeout=TIMEOUT)
    assert reply.address.address == "10.0.0.1"
    left = agent.stub.GetInterface(pb.GetInterfaceRequest(name="eth0"), timeout=TIMEOUT)
    assert [a.address for a in left.addresses] == ["10.1.0.1"]


def test_delete_unknown_alias_is_not_found(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.DeleteAlias, pb.DeleteAliasRequest(ifname="eth0",
                                                                    address="10.0.0.9"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert trailing(error)["vrc-errno"] == "EADDRNOTAVAIL"


def test_get_address_answers_the_requested_field(agent: RunningAgent) -> None:
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                        timeout=TIMEOUT)
    netmask = agent.stub.GetAddress(pb.GetAddressRequest(
        ifname="eth0", field=pb.ADDRESS_FIELD_NETMASK), timeout=TIMEOUT)
    assert netmask.value == "255.255.255.0"
    broadcast = agent.stub.GetAddress(pb.GetAddressRequest(
        ifname="eth0", address="10.0.0.1", field=pb.ADDRESS_FIELD_BROADCAST), timeout=TIMEOUT)
    assert broadcast.value == "10.0.0.255"


def test_get_destination_of_broadcast_interface_is_invalid_argument(
        agent: RunningAgent) -> None:
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                        timeout=TIMEOUT)
    error = rpc_error(agent.stub.GetAddress, pb.GetAddressRequest(
        ifname="eth0", field=pb.ADDRESS_FIELD_DESTINATION))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_get_address_of_interface_without_one_is_not_found(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.GetAddress, pb.GetAddressRequest(ifname="eth1"))
    assert error.code() is grpc.StatusCode.NOT_FOUND


# --- routes, ARP, policy, queries -----------------------------------------------------


def test_add_list_delete_route(agent: RunningAgent) -> None:
    added = agent.stub.AddRoute(pb.AddRouteRequest(prefix="192.168.7.9/24",
                                                   gateway="10.0.0.254"), timeout=TIMEOUT)
    assert added.route.prefix == "192.168.7.0/24"
    listed = agent.stub.ListRoutes(pb.ListRoutesRequest(), timeout=TIMEOUT)
    assert [(r.prefix, r.gateway) for r in listed.routes] == [("192.168.7.0/24", "10.0.0.254")]
    agent.stub.DeleteRoute(pb.DeleteRouteRequest(prefix="192.168.7.0/24"), timeout=TIMEOUT)
    assert not agent.stub.ListRoutes(pb.ListRoutesRequest(), timeout=TIMEOUT).routes


def test_route_twice_is_already_exists_and_unknown_delete_is_not_found(
        agent: RunningAgent) -> None:
    request = pb.AddRouteRequest(prefix="192.168.7.0/24", ifname="eth0")
    agent.stub.AddRoute(request, timeout=TIMEOUT)
    assert rpc_error(agent.stub.AddRoute, request).code() is grpc.StatusCode.ALREADY_EXISTS
    error = rpc_error(agent.stub.DeleteRoute, pb.DeleteRouteRequest(prefix="172.16.0.0/12"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert trailing(error)["vrc-errno"] == "ESRCH"


@pytest.mark.parametrize("prefix", ["192.168.7.0", "192.168.7.0/40", "x/24", ""])
def test_bad_route_prefix_is_invalid_argument(agent: RunningAgent, prefix: str) -> None:
    error = rpc_error(agent.stub.AddRoute, pb.AddRouteRequest(prefix=prefix, ifname="eth0"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "prefix" in error.details()


def test_route_without_gateway_or_interface_is_invalid_argument(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.AddRoute, pb.AddRouteRequest(prefix="10.0.0.0/8"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "gateway" in error.details()


def test_set_list_delete_flush_arp(agent: RunningAgent) -> None:
    entry = agent.stub.SetArp(pb.SetArpRequest(ifname="eth0", ip="10.0.0.7",
                                               mac="02-aa-bb-cc-dd-ee", published=True),
                              timeout=TIMEOUT).entry
    assert (entry.ip, entry.mac, entry.static, entry.published) == (
        "10.0.0.7", "02:aa:bb:cc:dd:ee", True, True)
    agent.stub.SetArp(pb.SetArpRequest(ifname="eth1", ip="10.1.0.7", mac="02:00:00:00:00:09"),
                      timeout=TIMEOUT)
    only_eth1 = agent.stub.ListArp(pb.ListArpRequest(ifname="eth1"), timeout=TIMEOUT)
    assert [e.ip for e in only_eth1.entries] == ["10.1.0.7"]
    agent.stub.DeleteArp(pb.DeleteArpRequest(ifname="eth0", ip="10.0.0.7"), timeout=TIMEOUT)
    error = rpc_error(agent.stub.DeleteArp, pb.DeleteArpRequest(ifname="eth0", ip="10.0.0.7"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    flushed = agent.stub.FlushArp(pb.FlushArpRequest(), timeout=TIMEOUT)
    assert flushed.flushed == 1
    assert not agent.stub.ListArp(pb.ListArpRequest(), timeout=TIMEOUT).entries


@pytest.mark.parametrize("mac", ["02:00:00:00:00", "02:00:00:00:00:0g", "0200.0000.0001", ""])
def test_bad_mac_is_invalid_argument_naming_mac(agent: RunningAgent, mac: str) -> None:
    error = rpc_error(agent.stub.SetArp, pb.SetArpRequest(ifname="eth0", ip="10.0.0.7",
                                                          mac=mac))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert trailing(error)["vrc-field"] == "mac"


def test_policy_round_trips(agent: RunningAgent) -> None:
    assert agent.stub.GetPolicy(pb.GetPolicyRequest(), timeout=TIMEOUT).same_prefix \
        == tpb.POLICY_ALLOW
    reply = agent.stub.SetPolicy(pb.SetPolicyRequest(same_prefix=tpb.POLICY_MULTIPATH),
                                 timeout=TIMEOUT)
    assert reply.same_prefix == tpb.POLICY_MULTIPATH
    assert agent.engine.policy == "multipath"


def test_unspecified_policy_is_invalid_argument(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.SetPolicy, pb.SetPolicyRequest())
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert agent.engine.policy == "allow"


def test_queries_answer_from_the_engine(agent: RunningAgent) -> None:
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                        timeout=TIMEOUT)

    def ask(kind: int, address: str, ifname: str = "") -> bool:
        return agent.stub.Query(pb.QueryRequest(kind=kind, address=address, ifname=ifname),
                                timeout=TIMEOUT).result

    assert ask(pb.QUERY_KIND_LOCAL_ADDRESS, "10.0.0.1")
    assert not ask(pb.QUERY_KIND_LOCAL_ADDRESS, "10.0.0.2")
    assert ask(pb.QUERY_KIND_LOCAL_SUBNET, "10.0.0.2")
    assert not ask(pb.QUERY_KIND_CAN_FORWARD, "224.0.0.5")
    assert ask(pb.QUERY_KIND_BROADCAST, "10.0.0.255", "eth0")


def test_broadcast_query_without_interface_is_invalid_argument(agent: RunningAgent) -> None:
    error = rpc_error(agent.stub.Query, pb.QueryRequest(kind=pb.QUERY_KIND_BROADCAST,
                                                        address="10.0.0.255"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "ifname" in error.details()


# --- the errno → status table, one engine errno at a time ----------------------------

MAPPING = [
    (E.EINVAL, grpc.StatusCode.INVALID_ARGUMENT),
    (E.EDESTADDRREQ, grpc.StatusCode.INVALID_ARGUMENT),
    (E.EEXIST, grpc.StatusCode.ALREADY_EXISTS),
    (E.EISCONN, grpc.StatusCode.ALREADY_EXISTS),
    (E.EADDRNOTAVAIL, grpc.StatusCode.NOT_FOUND),
    (E.ENXIO, grpc.StatusCode.NOT_FOUND),
    (E.ESRCH, grpc.StatusCode.NOT_FOUND),
    (E.EBUSY, grpc.StatusCode.FAILED_PRECONDITION),
    (E.EPROTONOSUPPORT, grpc.StatusCode.UNIMPLEMENTED),
    (E.EPFNOSUPPORT, grpc.StatusCode.UNIMPLEMENTED),
    (E.EOPNOTSUPP, grpc.StatusCode.UNIMPLEMENTED),
    (E.ENETDOWN, grpc.StatusCode.UNAVAILABLE),
    (E.ENETUNREACH, grpc.StatusCode.FAILED_PRECONDITION),
    (E.ENOBUFS, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (E.EPERM, grpc.StatusCode.FAILED_PRECONDITION),
    (E.EADDRINUSE, grpc.StatusCode.ALREADY_EXISTS),
    (E.ENOENT, grpc.StatusCode.NOT_FOUND),
    (E.EMSGSIZE, grpc.StatusCode.UNKNOWN),
]


@pytest.mark.parametrize(("errno", "status"), MAPPING,
                         ids=[E.errno_name(errno) for errno, _ in MAPPING])
def test_engine_errno_maps_to_status_with_field_and_value(
        agent: RunningAgent, errno: int, status: grpc.StatusCode) -> None:
    agent.engine.failing = RouterError(errno, "gateway", "10.9.9.9",
                                       subject="route 10.0.0.0/8")
    error = rpc_error(agent.stub.ListRoutes, pb.ListRoutesRequest())
    assert error.code() is status
    assert "route 10.0.0.0/8" in error.details()
    assert error.details().endswith("[gateway 10.9.9.9]")
    assert trailing(error)["vrc-errno"] == E.errno_name(errno)


def test_error_in_a_stream_ends_it_with_the_mapped_status(agent: RunningAgent) -> None:
    agent.engine.failing = RouterError(E.ENXIO, "interface", "eth5")
    stream = agent.stub.Capture(pb.CaptureRequest(ifname="eth5"), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as info:
        list(stream)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


# --- events --------------------------------------------------------------------------


def test_watch_events_resumes_after_the_given_seq_in_one_batch(agent: RunningAgent) -> None:
    for address in ("10.0.0.1/24", "10.1.0.1/24", "10.2.0.1/24"):
        agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address=address), timeout=TIMEOUT)
    stream = agent.stub.WatchEvents(pb.WatchEventsRequest(after_seq=1), timeout=TIMEOUT)
    first = next(stream)
    stream.cancel()
    assert [e.seq for e in first.events] == [2, 3]
    assert {e.kind for e in first.events} == {"RTM_NEWADDR"}
    assert first.events[0].data["addr"] == "10.1.0.1"
    assert first.events[0].ifname == "eth0"
    assert not first.lost


def test_watch_events_without_resume_point_starts_now(agent: RunningAgent) -> None:
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                        timeout=TIMEOUT)
    stream = agent.stub.WatchEvents(pb.WatchEventsRequest(), timeout=TIMEOUT)
    assert list(next(stream).events) == []  # the "subscribed" message
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth1", address="10.1.0.1/24"),
                        timeout=TIMEOUT)
    batch = next(stream)
    stream.cancel()
    assert [(e.kind, e.ifname, e.seq) for e in batch.events] == [("RTM_NEWADDR", "eth1", 2)]


def test_watch_events_filters_by_kind_and_interface(agent: RunningAgent) -> None:
    stream = agent.stub.WatchEvents(pb.WatchEventsRequest(
        after_seq=0, kinds=["LINK_DOWN"], ifname="eth1"), timeout=TIMEOUT)
    next(stream)
    agent.stub.SetInterface(pb.SetInterfaceRequest(name="eth0", up=False), timeout=TIMEOUT)
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth1", address="10.1.0.1/24"),
                        timeout=TIMEOUT)
    agent.stub.SetInterface(pb.SetInterfaceRequest(name="eth1", up=False), timeout=TIMEOUT)
    batch = next(stream)
    stream.cancel()
    assert [(e.kind, e.ifname) for e in batch.events] == [("LINK_DOWN", "eth1")]


def test_resume_point_from_an_earlier_agent_run_reports_lost_and_streams_on(
        agent: RunningAgent) -> None:
    stream = agent.stub.WatchEvents(pb.WatchEventsRequest(after_seq=5000), timeout=TIMEOUT)
    first = next(stream)
    assert first.lost and not first.events
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                        timeout=TIMEOUT)
    batch = next(stream)
    stream.cancel()
    assert [(e.kind, e.seq) for e in batch.events] == [("RTM_NEWADDR", 1)]


def test_watch_unknown_event_kind_is_invalid_argument(agent: RunningAgent) -> None:
    stream = agent.stub.WatchEvents(pb.WatchEventsRequest(kinds=["RTM_BOGUS"]),
                                    timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "RTM_BOGUS" in info.value.details()


def test_resume_point_older_than_history_reports_lost() -> None:
    gate = Gate(sample_engine(), event_history=2)
    for address in ("10.0.0.1/24", "10.1.0.1/24", "10.2.0.1/24"):
        gate.call(lambda e, a=address: e.add_alias("eth0", a))
    events, lost = gate.events.read_after(0, 100)
    assert lost and [e.seq for e in events] == [2, 3]
    events, lost = gate.events.read_after(1, 100)
    assert not lost and [e.seq for e in events] == [2, 3]


def test_lost_history_is_flagged_on_the_stream(agent: RunningAgent) -> None:
    agent.gate.events = EventLog(history=2)
    for address in ("10.0.0.1/24", "10.1.0.1/24", "10.2.0.1/24"):
        agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address=address), timeout=TIMEOUT)
    stream = agent.stub.WatchEvents(pb.WatchEventsRequest(after_seq=0), timeout=TIMEOUT)
    first = next(stream)
    stream.cancel()
    assert first.lost
    assert [e.seq for e in first.events] == [2, 3]


# --- captures ------------------------------------------------------------------------


def test_capture_announces_linktype_then_stops_after_count(agent: RunningAgent) -> None:
    stream = agent.stub.Capture(pb.CaptureRequest(ifname="eth0", count=3), timeout=TIMEOUT)
    header = next(stream)
    assert header.linktype == 1 and not header.frames
    agent.gate.call(lambda e: [e.inject_frame("eth0", bytes([n]) * 60) for n in range(5)])
    frames = [f for batch in stream for f in batch.frames]
    assert [f.data[0] for f in frames] == [0, 1, 2]
    assert all(f.ifname == "eth0" and f.direction == tpb.DIRECTION_IN for f in frames)
    assert frames[0].timestamp < frames[1].timestamp
    # the tap went away with the stream
    assert not agent.engine.taps.is_tapped(agent.engine.ifps["eth0"])


def test_capture_on_ng_interface_is_dlt_null(agent: RunningAgent) -> None:
    agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(), timeout=TIMEOUT)
    stream = agent.stub.Capture(pb.CaptureRequest(ifname="ng0", count=1), timeout=TIMEOUT)
    assert next(stream).linktype == 0
    stream.cancel()


def test_capture_of_unknown_interface_is_not_found(agent: RunningAgent) -> None:
    stream = agent.stub.Capture(pb.CaptureRequest(ifname="eth9"), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


# --- hooks ---------------------------------------------------------------------------


class HookClient:
    """One bidirectional Hook call fed from a queue."""

    def __init__(self, agent: RunningAgent, ifname: str, hook: str) -> None:
        self.outbox: queue.Queue[pb.HookRequest | None] = queue.Queue()
        self.outbox.put(pb.HookRequest(attach=pb.HookAttach(ifname=ifname, hook=hook)))
        self.call = agent.stub.Hook(iter(self.outbox.get, None), timeout=TIMEOUT)

    def send(self, *packets: bytes) -> None:
        self.outbox.put(pb.HookRequest(packets=list(packets)))

    def close(self) -> None:
        self.outbox.put(None)


def ng_up(agent: RunningAgent) -> None:
    agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(), timeout=TIMEOUT)
    agent.stub.SetInterface(pb.SetInterfaceRequest(name="ng0", up=True), timeout=TIMEOUT)


def test_hook_carries_packets_both_ways(agent: RunningAgent) -> None:
    ng_up(agent)
    client = HookClient(agent, "ng0", "inet")
    assert next(client.call).attached
    client.send(b"\x45packet-1", b"\x45packet-2")
    received: list[bytes] = []
    while len(received) < 2:
        received.extend(next(client.call).packets)
    assert received == [b"\x45packet-1", b"\x45packet-2"]
    client.close()
    assert list(client.call) == []
    assert agent.engine.hooks == {}


def test_second_client_on_same_hook_is_already_exists(agent: RunningAgent) -> None:
    ng_up(agent)
    first = HookClient(agent, "ng0", "inet")
    assert next(first.call).attached
    second = HookClient(agent, "ng0", "inet")
    with pytest.raises(grpc.RpcError) as info:
        next(second.call)
    assert info.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "inet" in info.value.details()
    first.close()
    list(first.call)
    third = HookClient(agent, "ng0", "inet")
    assert next(third.call).attached  # free again once the first left
    third.close()


def test_unknown_hook_name_is_unimplemented(agent: RunningAgent) -> None:
    ng_up(agent)
    client = HookClient(agent, "ng0", "ipx")
    with pytest.raises(grpc.RpcError) as info:
        next(client.call)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_hook_without_attach_first_is_invalid_argument(agent: RunningAgent) -> None:
    call = agent.stub.Hook(iter([pb.HookRequest(packets=[b"x"])]), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as info:
        next(call)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "attach" in info.value.details()


def test_packet_into_a_down_interface_ends_the_hook_unavailable(agent: RunningAgent) -> None:
    agent.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(), timeout=TIMEOUT)
    client = HookClient(agent, "ng0", "inet")
    assert next(client.call).attached
    client.send(b"\x45lost")
    with pytest.raises(grpc.RpcError) as info:
        next(client.call)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert agent.engine.hooks == {}


def test_gate_wakes_the_data_plane_after_an_api_call(agent: RunningAgent) -> None:
    woken = threading.Event()
    agent.gate.on_change = woken.set
    agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                        timeout=TIMEOUT)
    assert woken.is_set()

"""Every RPC against hostile input: the real status code, never INTERNAL or UNKNOWN.

Issue 11 items 5-8 at the API edge: a non-ASCII value in an error used to
break the ``vrc-value`` trailer (INTERNAL "Invalid metadata"), a 7 kB value
was echoed whole (RESOURCE_EXHAUSTED: the trailers outgrew the header
limit), ``10.9.9.1/²`` raised inside ``int`` (UNKNOWN), Arabic-Indic digits
were a prefix length, and unknown enum values were taken as "unspecified".
The tests drive the real engine through a real grpc server.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.errors import MAX_ECHO, MAX_MESSAGE
from agents.gate import Gate
from agents.server import build_server
from router import Engine
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import agent_pb2_grpc

TIMEOUT = 10
SERVICE = pb.DESCRIPTOR.services_by_name["Agent"]
# Statuses that mean the server broke rather than answered.
BROKEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
          grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}

# One valid request per RPC; each string field is then replaced by hostile text.
VALID: dict[str, Message] = {
    "ListInterfaces": pb.ListInterfacesRequest(),
    "GetInterface": pb.GetInterfaceRequest(name="eth0"),
    "CreateVirtualInterface": pb.CreateVirtualInterfaceRequest(),
    "DestroyVirtualInterface": pb.DestroyVirtualInterfaceRequest(name="ng0"),
    "SetInterface": pb.SetInterfaceRequest(name="eth0", up=True),
    "AddAlias": pb.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
    "DeleteAlias": pb.DeleteAliasRequest(ifname="eth0", address="10.0.0.1"),
    "GetAddress": pb.GetAddressRequest(ifname="eth0", address="10.0.0.1"),
    "ListRoutes": pb.ListRoutesRequest(),
    "AddRoute": pb.AddRouteRequest(prefix="10.5.0.0/16", gateway="10.0.0.254", ifname="eth0"),
    "DeleteRoute": pb.DeleteRouteRequest(prefix="10.5.0.0/16"),
    "ListArp": pb.ListArpRequest(ifname="eth0"),
    "SetArp": pb.SetArpRequest(ifname="eth0", ip="10.0.0.9", mac="02:00:00:00:00:09"),
    "DeleteArp": pb.DeleteArpRequest(ifname="eth0", ip="10.0.0.9"),
    "FlushArp": pb.FlushArpRequest(ifname="eth0"),
    "GetPolicy": pb.GetPolicyRequest(),
    "SetPolicy": pb.SetPolicyRequest(same_prefix=1),
    "Query": pb.QueryRequest(kind=pb.QUERY_KIND_BROADCAST, address="10.0.0.255", ifname="eth0"),
    "WatchEvents": pb.WatchEventsRequest(kinds=["RTM_ADD"], ifname="eth0"),
    "Capture": pb.CaptureRequest(ifname="eth0", count=1),
    "Hook": pb.HookRequest(attach=pb.HookAttach(ifname="ng0", hook="inet")),
    "GetStats": pb.GetStatsRequest(),
}


class Agent:
    def __init__(self) -> None:
        engine = Engine()
        engine.add_ethernet("eth0", bytes.fromhex("020000000001"))
        engine.add_ethernet("eth1", bytes.fromhex("020000000002"))
        engine.add_alias("eth0", "10.0.0.1/24")
        engine.create_ng()
        self.directory = tempfile.mkdtemp(prefix="vrc-hi-")
        self.server, address = build_server(Gate(engine), f"unix:{self.directory}/a.sock")
        self.server.start()
        self.channel = grpc.insecure_channel(address)
        self.stub = agent_pb2_grpc.AgentStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None).wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def call(self, rpc: str, request: Message) -> grpc.RpcError | None:
        """Call ``rpc`` (a stream: its first message); the error, or None on success."""
        method = SERVICE.methods_by_name[rpc]
        stub_method = getattr(self.stub, rpc)
        try:
            if method.client_streaming:
                done = threading.Event()
                call = stub_method(_then_wait(request, done), timeout=TIMEOUT)
                try:
                    next(call)
                finally:
                    done.set()
                    call.cancel()
            elif method.server_streaming:
                call = stub_method(request, timeout=TIMEOUT)
                try:
                    next(call)
                finally:
                    call.cancel()
            else:
                stub_method(request, timeout=TIMEOUT)
        except grpc.RpcError as error:
            return error
        return None


def _then_wait(request: Message, done: threading.Event) -> Iterator[Message]:
    yield request
    done.wait(TIMEOUT)


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    running = Agent()
    yield running
    running.close()


def string_fields(message: Message, prefix: str = "") -> list[str]:
    """Paths of every string field of a request type (nested messages too)."""
    paths: list[str] = []
    for field in message.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            paths.append(prefix + field.name)
        elif field.message_type is not None and not field.is_repeated:
            paths.extend(string_fields(getattr(message, field.name), f"{prefix}{field.name}."))
    return paths


def with_value(request: Message, path: str, value: str) -> Message:
    changed = type(request)()
    changed.CopyFrom(request)
    *parents, name = path.split(".")
    target = changed
    for parent in parents:
        target = getattr(target, parent)
    field = target.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        del getattr(target, name)[:]
        getattr(target, name).append(value)
    else:
        setattr(target, name, value)
    return changed


def trailers(error: grpc.RpcError) -> dict[str, str]:
    return dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]


CASES = [(rpc, path) for rpc, request in VALID.items() for path in string_fields(request)]


def test_every_rpc_has_a_valid_request_here() -> None:
    """A new RPC must join VALID, so every test below covers it."""
    assert set(SERVICE.methods_by_name) == set(VALID)


def assert_answered(error: grpc.RpcError | None, value: str) -> None:
    if error is None:
        return
    assert error.code() not in BROKEN, (error.code(), error.details())
    details = error.details() or ""
    assert len(details) <= MAX_MESSAGE
    meta = trailers(error)
    for key, text in meta.items():
        assert text.isascii() and text.isprintable(), (key, text)
    echoed = urllib.parse.unquote(meta.get("vrc-value", ""))
    if "vrc-value-length" in meta:  # a cut value: the first MAX_ECHO characters
        assert len(echoed) == MAX_ECHO < int(meta["vrc-value-length"])
    else:
        assert len(echoed) <= MAX_ECHO


hostile = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=("Cs",)),
            min_size=1, max_size=12),
    st.sampled_from(["é", "ü", "eth0\n", "\x00", "\x7f", "ng0\u202e", "10.9.9.1/²",
                     "10.0.0.1/٢٤", "%41", "😀"]),
    st.integers(100, 9000).map(lambda n: "é" * n),
)


@pytest.mark.parametrize(("rpc", "path"), CASES)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile)
def test_hostile_text_in_any_field_gets_a_real_status(agent: Agent, rpc: str, path: str,
                                                      value: str) -> None:
    error = agent.call(rpc, with_value(VALID[rpc], path, value))
    assert_answered(error, value)


# --- the cases from the audit, one by one -------------------------------------------


def test_non_ascii_interface_name_is_not_found_with_the_value_escaped(agent: Agent) -> None:
    error = agent.call("GetInterface", pb.GetInterfaceRequest(name="é"))
    assert error is not None and error.code() is grpc.StatusCode.NOT_FOUND
    assert "é" in error.details()
    meta = trailers(error)
    assert meta["vrc-value"] == "%C3%A9"
    assert urllib.parse.unquote(meta["vrc-value"]) == "é"


def test_non_ascii_mac_is_invalid_argument(agent: Agent) -> None:
    error = agent.call("SetArp", pb.SetArpRequest(ifname="eth0", ip="10.0.0.9", mac="ü"))
    assert error is not None and error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(error)["vrc-field"] == "mac"


def test_a_7kb_interface_name_gets_the_real_status_and_a_cut_echo(agent: Agent) -> None:
    name = "x" * 7000
    error = agent.call("GetInterface", pb.GetInterfaceRequest(name=name))
    assert error is not None and error.code() is grpc.StatusCode.NOT_FOUND
    assert len(error.details()) < 1024
    assert "7000 characters, cut" in error.details()
    meta = trailers(error)
    assert meta["vrc-value"] == "x" * MAX_ECHO
    assert meta["vrc-value-length"] == "7000"


@pytest.mark.parametrize("address", ["10.9.9.1/²", "10.9.9.1/٢٤", "10.9.9.1/+24",
                                     "10.9.9.1/ 24", "10.9.9.1/2_4",
                                     pytest.param("10.9.9.1/" + "2" * 5000, id="5000-digits")])
def test_prefix_lengths_are_ascii_digits_only(agent: Agent, address: str) -> None:
    for rpc, request in (("AddAlias", pb.AddAliasRequest(ifname="eth1", address=address)),
                         ("AddRoute", pb.AddRouteRequest(prefix=address, ifname="eth1"))):
        error = agent.call(rpc, request)
        assert error is not None and error.code() is grpc.StatusCode.INVALID_ARGUMENT, rpc
        assert trailers(error)["vrc-field"] in ("address", "prefix")
        assert "prefix length" in error.details()


def test_a_prefix_length_with_a_leading_zero_is_still_a_length(agent: Agent) -> None:
    reply = agent.stub.AddAlias(pb.AddAliasRequest(ifname="eth1", address="10.8.0.1/024"),
                                timeout=TIMEOUT)
    assert reply.address.prefix_len == 24


@pytest.mark.parametrize("mac", ["٠٢:00:00:00:00:01", "+2:00:00:00:00:01", " 2:00:00:00:00:01",
                                 "02:00:00:00:00:0\uff11", "2_:00:00:00:00:01"])
def test_mac_digits_are_ascii_hex_only(agent: Agent, mac: str) -> None:
    error = agent.call("SetArp", pb.SetArpRequest(ifname="eth0", ip="10.0.0.9", mac=mac))
    assert error is not None and error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(error)["vrc-field"] == "mac"


# --- unknown enum values ----------------------------------------------------------------


def enum_fields(message: Message, prefix: str = "") -> list[str]:
    paths: list[str] = []
    for field in message.DESCRIPTOR.fields:
        if field.enum_type is not None:
            paths.append(prefix + field.name)
        elif field.message_type is not None and not field.is_repeated:
            paths.extend(enum_fields(getattr(message, field.name), f"{prefix}{field.name}."))
    return paths


ENUM_CASES = [(rpc, path) for rpc, request in VALID.items() for path in enum_fields(request)]


def test_the_requests_with_enums_are_the_ones_the_audit_named() -> None:
    assert {rpc for rpc, _ in ENUM_CASES} >= {"SetInterface", "GetAddress", "SetPolicy", "Query"}


@pytest.mark.parametrize(("rpc", "path"), ENUM_CASES)
@pytest.mark.parametrize("number", [99, -1, 5])
def test_an_unknown_enum_value_is_invalid_argument_naming_field_and_value(
    agent: Agent, rpc: str, path: str, number: int
) -> None:
    request = type(VALID[rpc])()
    request.CopyFrom(VALID[rpc])
    *parents, name = path.split(".")
    target: Any = request
    for parent in parents:
        target = getattr(target, parent)
    setattr(target, name, number)
    error = agent.call(rpc, request)
    assert error is not None and error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
    assert f"{path} {number}" in error.details()
    assert trailers(error)["vrc-field"] == path
    assert trailers(error)["vrc-value"] == str(number)

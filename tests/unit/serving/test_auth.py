"""Who is calling and what they may do: identities, method tables, and the Agent API's rule
(roles from certificates) through real TLS connections."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass

from agents.gate import Gate
from agents.server import AGENT_DESCRIPTOR, METHODS, READS, build_server
from serving.auth import (
    LOCAL,
    Access,
    Identity,
    Role,
    Transport,
    certificate_roles,
    method_table,
    peer_identity,
)
from serving.tls import TlsConfig
from tests.security import TestPki, channel_to, make_test_pki
from tests.unit.agents.support import sample_engine
from vrc.v1 import agent_pb2, agent_pb2_grpc, controller_pb2

TIMEOUT = 10


class FakeContext:
    def __init__(self, peer: str, auth: dict[str, list[bytes]]) -> None:
        self._peer, self._auth = peer, auth

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


TLS = {"transport_security_type": [b"ssl"]}


@pytest.mark.parametrize(("peer", "auth", "expected"), [
    ("unix:", {"transport_security_type": [b"insecure"]}, Identity(LOCAL, Transport.UNIX)),
    ("ipv4:127.0.0.1:5000", {}, Identity("peer:ipv4:127.0.0.1", Transport.PLAINTEXT)),
    ("ipv4:192.0.2.1:5000", {**TLS, "peer_spiffe_id": [b"spiffe://vrc/admin/a"],
                             "peer_uri": [b"spiffe://vrc/admin/a"]},
     Identity("spiffe://vrc/admin/a", Transport.TLS)),
    ("ipv4:192.0.2.1:5000", {**TLS, "peer_uri": [b"https://example.com/x"]},
     Identity("https://example.com/x", Transport.TLS)),
    ("ipv4:192.0.2.1:5000", {**TLS, "x509_common_name": [b"ops"]},
     Identity("cn:ops", Transport.TLS)),
    ("ipv6:[::1]:7", TLS, Identity("anonymous:ipv6:[::1]", Transport.ANONYMOUS_TLS)),
])
def test_a_peers_identity_comes_from_its_certificate_or_its_transport(
        peer: str, auth: dict[str, list[bytes]], expected: Identity) -> None:
    assert peer_identity(FakeContext(peer, auth)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("identity", "role"), [
    (Identity(LOCAL, Transport.UNIX), Role.ADMIN),
    (Identity("peer:ipv4:127.0.0.1", Transport.PLAINTEXT), Role.ADMIN),
    (Identity("anonymous:ipv4:10.0.0.1", Transport.ANONYMOUS_TLS), Role.ADMIN),
    (Identity("spiffe://vrc/admin/a", Transport.TLS), Role.ADMIN),
    (Identity("spiffe://vrc/reader/r", Transport.TLS), Role.READER),
    (Identity("spiffe://vrc/agent/h1", Transport.TLS), Role.AGENT),
    (Identity("spiffe://vrc/controller/c", Transport.TLS), Role.NONE),
    (Identity("spiffe://elsewhere/admin/a", Transport.TLS), Role.NONE),
    (Identity("cn:admin", Transport.TLS), Role.NONE),
])
def test_the_agents_rule_takes_the_role_the_certificate_names(identity: Identity,
                                                              role: Role) -> None:
    assert certificate_roles(identity).role is role


def test_every_method_of_a_service_is_in_its_table_and_the_unnamed_ones_write() -> None:
    service = controller_pb2.DESCRIPTOR.services_by_name["Controller"]
    table = method_table(service, reads=("ListHosts",), syncs=("Sync",), opens=("WhoAmI",))
    assert set(table) == {f"/vrc.v1.Controller/{m.name}" for m in service.methods}
    assert table["/vrc.v1.Controller/ListHosts"] is Access.READ
    assert table["/vrc.v1.Controller/Sync"] is Access.SYNC
    assert table["/vrc.v1.Controller/WhoAmI"] is Access.OPEN
    assert table["/vrc.v1.Controller/GetHost"] is Access.WRITE  # not named: admin only


def test_a_misspelt_method_name_in_a_table_is_an_error() -> None:
    with pytest.raises(ValueError, match="ListHost"):
        method_table(AGENT_DESCRIPTOR, reads=("ListHost",))


# --- the Agent API over mutual TLS --------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def agent(certs: TestPki) -> Iterator[str]:
    server, address = build_server(Gate(sample_engine()), "127.0.0.1:0",
                                   tls=certs.tls("agent-h1"))
    server.start()
    try:
        yield address
    finally:
        server.stop(None).wait()


def call(channel: grpc.Channel, method: Any) -> grpc.StatusCode:
    """Call ``method`` (a descriptor) with an empty request; the status it ends with."""
    request = GetMessageClass(method.input_type)()
    reply = GetMessageClass(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    options = {"request_serializer": type(request).SerializeToString,
               "response_deserializer": reply.FromString}
    try:
        if method.client_streaming:
            call = channel.stream_stream(path, **options)(iter([request]), timeout=TIMEOUT)
            next(call)
            call.cancel()
        elif method.server_streaming:
            call = channel.unary_stream(path, **options)(request, timeout=TIMEOUT)
            next(call)
            call.cancel()
        else:
            channel.unary_unary(path, **options)(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code()
    except StopIteration:
        pass
    return grpc.StatusCode.OK


WRITES = [m for m in AGENT_DESCRIPTOR.methods if METHODS[f"/vrc.v1.Agent/{m.name}"]
          is Access.WRITE]


def test_the_agents_reads_are_exactly_the_list_get_query_and_watch_methods() -> None:
    reads = {m.name for m in AGENT_DESCRIPTOR.methods
             if METHODS[f"/vrc.v1.Agent/{m.name}"] is Access.READ}
    assert reads == set(READS)
    assert {"Capture", "Hook"} <= {m.name for m in WRITES}  # traffic itself: admins only


@pytest.mark.parametrize("method", WRITES, ids=lambda m: m.name)
def test_a_reader_is_denied_every_write_method_of_the_agent(agent: str, certs: TestPki,
                                                            method: Any) -> None:
    with channel_to(agent, certs.tls("reader")) as channel:
        assert call(channel, method) is grpc.StatusCode.PERMISSION_DENIED


def test_the_denial_names_the_identity_and_the_method(agent: str, certs: TestPki) -> None:
    with channel_to(agent, certs.tls("reader")) as channel:
        stub = agent_pb2_grpc.AgentStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.AddAlias(agent_pb2.AddAliasRequest(ifname="eth0", address="10.0.0.1/24"),
                          timeout=TIMEOUT)
    error = info.value
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "spiffe://vrc/reader/bob" in error.details()
    assert "vrc.v1.Agent/AddAlias" in error.details()
    trailers = dict(error.trailing_metadata())
    assert trailers["vrc-identity"] == "spiffe://vrc/reader/bob"
    assert trailers["vrc-method"] == "vrc.v1.Agent/AddAlias"


def test_a_reader_may_read_and_an_admin_may_write(agent: str, certs: TestPki) -> None:
    with channel_to(agent, certs.tls("reader")) as channel:
        names = [i.name for i in agent_pb2_grpc.AgentStub(channel).ListInterfaces(
            agent_pb2.ListInterfacesRequest(), timeout=TIMEOUT).interfaces]
    assert names == ["eth0", "eth1"]
    with channel_to(agent, certs.tls("admin")) as channel:
        agent_pb2_grpc.AgentStub(channel).AddAlias(
            agent_pb2.AddAliasRequest(ifname="eth0", address="10.77.0.1/24"), timeout=TIMEOUT)


@pytest.mark.parametrize("who", ["agent-h2", "controller"])
def test_a_certificate_naming_no_reader_or_admin_reads_nothing(agent: str, certs: TestPki,
                                                               who: str) -> None:
    with channel_to(agent, certs.tls(who)) as channel:
        read = next(m for m in AGENT_DESCRIPTOR.methods if m.name == "ListInterfaces")
        assert call(channel, read) is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("who", ["expired", "stranger", None])
def test_a_client_with_no_valid_certificate_of_this_ca_is_refused(agent: str, certs: TestPki,
                                                                  who: str | None) -> None:
    tls = certs.tls(who) if who else TlsConfig(ca=certs.ca)
    with channel_to(agent, tls) as channel:
        read = next(m for m in AGENT_DESCRIPTOR.methods if m.name == "ListInterfaces")
        assert call(channel, read) is grpc.StatusCode.UNAVAILABLE  # the handshake fails


def test_a_unix_socket_peer_is_an_admin_without_a_certificate(certs: TestPki) -> None:
    directory = Path(tempfile.mkdtemp(prefix="vrc-auth-"))
    server, address = build_server(Gate(sample_engine()), f"unix:{directory}/a.sock",
                                   tls=certs.tls("agent-h1"))
    server.start()
    try:
        with grpc.insecure_channel(address) as channel:
            agent_pb2_grpc.AgentStub(channel).AddAlias(
                agent_pb2.AddAliasRequest(ifname="eth0", address="10.78.0.1/24"),
                timeout=TIMEOUT)
    finally:
        server.stop(None).wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_health_and_reflection_stay_open_to_any_certificate(agent: str,
                                                            certs: TestPki) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with channel_to(agent, certs.tls("controller")) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_unix_tls_socket_tells_its_peers_apart_by_certificate(certs: TestPki) -> None:
    """``unix+tls:PATH``: same-machine clients (agents in namespaces) still show a
    certificate, and its role applies; a plaintext client gets no answer."""
    directory = Path(tempfile.mkdtemp(prefix="vrc-ut-"))
    server, address = build_server(Gate(sample_engine()), f"unix+tls:{directory}/a.sock",
                                   tls=certs.tls("agent-h1"))
    server.start()
    try:
        assert address == f"unix+tls:{directory}/a.sock"
        assert oct(os.stat(directory / "a.sock").st_mode & 0o777) == "0o600"
        add = next(m for m in AGENT_DESCRIPTOR.methods if m.name == "AddAlias")
        read = next(m for m in AGENT_DESCRIPTOR.methods if m.name == "ListInterfaces")
        with channel_to(address, certs.tls("reader")) as channel:
            assert call(channel, read) is grpc.StatusCode.OK
            assert call(channel, add) is grpc.StatusCode.PERMISSION_DENIED
        with channel_to(address, certs.tls("admin")) as channel:
            assert call(channel, add) is not grpc.StatusCode.PERMISSION_DENIED
        with grpc.insecure_channel(f"unix:{directory}/a.sock") as plain:
            assert call(plain, read) is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(ValueError, match="unix\\+tls: target needs --tls-ca"):
            channel_to(address, None)
    finally:
        server.stop(None).wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_unix_tls_socket_needs_tls_files() -> None:
    directory = Path(tempfile.mkdtemp(prefix="vrc-ut-"))
    try:
        with pytest.raises(ValueError, match="TLS on a Unix socket needs"):
            build_server(Gate(sample_engine()), f"unix+tls:{directory}/a.sock")
    finally:
        shutil.rmtree(directory, ignore_errors=True)

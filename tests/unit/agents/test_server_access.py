"""Where the agent listens and who may reach it; health and reflection."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from agents.gate import Gate
from agents.server import ListenAddress, build_server, check_access, parse_listen
from tests.unit.agents.support import sample_engine

TIMEOUT = 10


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: a Unix socket path must fit in 108 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="vrc-srv-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize(("listen", "expected"), [
    ("unix:/run/vrc/agent.sock", ListenAddress(path="/run/vrc/agent.sock")),
    ("unix:///run/vrc/agent.sock", ListenAddress(path="/run/vrc/agent.sock")),
    ("127.0.0.1:50051", ListenAddress(host="127.0.0.1", port=50051)),
    ("[::1]:0", ListenAddress(host="::1", port=0)),
    ("localhost:7", ListenAddress(host="localhost", port=7)),
])
def test_listen_forms_parse(listen: str, expected: ListenAddress) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["unix:", "50051", ":50051", "127.0.0.1:http",
                                    "127.0.0.1:70000"])
def test_malformed_listen_is_value_error_naming_the_flag(listen: str) -> None:
    with pytest.raises(ValueError, match="--listen"):
        parse_listen(listen)


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "192.0.2.7:50051", "[::]:0", "agent.example:1"])
def test_non_loopback_without_tls_or_insecure_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match=r"--tls-cert.*--insecure"):
        build_server(Gate(sample_engine()), listen)


@pytest.mark.parametrize("listen", ["127.0.0.1:1", "127.3.4.5:1", "[::1]:1", "localhost:1",
                                    "unix:/x.sock"])
def test_loopback_and_unix_need_no_tls(listen: str) -> None:
    check_access(parse_listen(listen), None, insecure=False)  # does not raise


def test_non_loopback_is_allowed_with_tls_files() -> None:
    from agents.server import TlsConfig

    check_access(parse_listen("192.0.2.7:50051"), TlsConfig("c", "k", "ca"), insecure=False)


def test_insecure_non_loopback_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.vrc.insecure")
    with caplog.at_level(logging.WARNING, logger="test.vrc.insecure"):
        # Bound but never started: no connection is ever accepted.
        server, address = build_server(Gate(sample_engine()), "0.0.0.0:0", insecure=True,
                                       log=log)
    server.stop(None).wait()
    assert address.startswith("0.0.0.0:") and not address.endswith(":0")
    assert any("without TLS" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("flags", "missing"), [
    ({"cert": "c.pem"}, "--tls-cert needs --tls-key"),
    ({"key": "k.pem"}, "--tls-key needs --tls-cert"),
    ({"cert": "c.pem", "key": "k.pem"}, "without --tls-ca: clients could not be verified"),
    ({"client_auth": False}, "--tls-no-client-auth needs --tls-cert and --tls-key"),
])
def test_incomplete_tls_flags_are_value_errors(flags: dict[str, object], missing: str) -> None:
    from agents.server import TlsConfig

    with pytest.raises(ValueError, match=missing):
        build_server(Gate(sample_engine()), "127.0.0.1:0",
                     tls=TlsConfig(**flags))  # type: ignore[arg-type]


def test_unreadable_certificate_names_the_flag(short_dir: Path) -> None:
    from agents.server import TlsConfig

    key = short_dir / "k.pem"
    key.write_text("not really a key")
    with pytest.raises(ValueError, match=r"--tls-cert .*missing\.pem: cannot read"):
        build_server(Gate(sample_engine()), "127.0.0.1:0",
                     tls=TlsConfig(str(short_dir / "missing.pem"), str(key), str(key)))


def test_unix_socket_is_created_with_mode_0600(short_dir: Path) -> None:
    path = short_dir / "run" / "agent.sock"
    server, address = build_server(Gate(sample_engine()), f"unix:{path}")
    server.start()
    try:
        assert address == f"unix:{path}"
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
    finally:
        server.stop(None).wait()


def test_stale_socket_file_is_replaced(short_dir: Path) -> None:
    path = short_dir / "agent.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays behind, as after a crash
    server, address = build_server(Gate(sample_engine()), f"unix:{path}")
    server.start()
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(None).wait()


def test_non_socket_file_at_the_path_is_refused_and_kept(short_dir: Path) -> None:
    path = short_dir / "agent.sock"
    path.write_text("precious")
    with pytest.raises(ValueError, match="not a socket"):
        build_server(Gate(sample_engine()), f"unix:{path}")
    assert path.read_text() == "precious"


@pytest.fixture
def loopback_address() -> Iterator[str]:
    server, address = build_server(Gate(sample_engine()), "127.0.0.1:0")
    server.start()
    try:
        yield address
    finally:
        server.stop(None).wait()


def test_port_zero_returns_the_real_port(loopback_address: str) -> None:
    host, _, port = loopback_address.rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0


@pytest.mark.parametrize("service", ["", "vrc.v1.Agent"])
def test_health_is_serving(loopback_address: str, service: str) -> None:
    with grpc.insecure_channel(loopback_address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_agent_service(loopback_address: str) -> None:
    with grpc.insecure_channel(loopback_address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT)
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"vrc.v1.Agent", "grpc.health.v1.Health"} <= names


def test_reflection_serves_the_agent_descriptors(loopback_address: str) -> None:
    with grpc.insecure_channel(loopback_address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(stub.ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="vrc.v1.Agent")]),
            timeout=TIMEOUT))
    files = replies[0].file_descriptor_response.file_descriptor_proto
    assert files, replies[0]

"""--health-listen: a plaintext port with only grpc.health.v1, for kubelet's gRPC probes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agents.daemon import build_parser, check_options, options_from
from agents.health import build_health_server, set_not_serving
from vrc.v1 import agent_pb2, agent_pb2_grpc

TIMEOUT = 10


@pytest.fixture
def health_server() -> Iterator[tuple[Any, str]]:
    # 0.0.0.0 with no TLS and no --insecure: allowed, because nothing here reconfigures.
    server, checker, address = build_health_server("0.0.0.0:0")
    server.start()
    try:
        yield checker, "127.0.0.1:" + address.rpartition(":")[2]
    finally:
        server.stop(None).wait()


def check(address: str, service: str = "") -> Any:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT).status


@pytest.mark.parametrize("service", ["", "vrc.v1.Agent"])
def test_health_port_answers_serving_in_plaintext(health_server: tuple[Any, str],
                                                 service: str) -> None:
    _checker, address = health_server
    assert check(address, service) == health_pb2.HealthCheckResponse.SERVING


def test_health_port_serves_nothing_but_health(health_server: tuple[Any, str]) -> None:
    _checker, address = health_server
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as info:
        agent_pb2_grpc.AgentStub(channel).ListInterfaces(agent_pb2.ListInterfacesRequest(),
                                                          timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_stopping_turns_health_not_serving(health_server: tuple[Any, str]) -> None:
    checker, address = health_server
    set_not_serving(checker)
    assert check(address) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_bad_health_listen_names_its_flag() -> None:
    options = options_from(build_parser().parse_args(
        ["-i", "eth1", "--health-listen", "9641"]))
    with pytest.raises(ValueError, match="--health-listen '9641'"):
        check_options(options)


def test_bad_node_ip_is_refused_before_any_nic() -> None:
    options = options_from(build_parser().parse_args(["-i", "eth1", "--node-ip", "node-1"]))
    with pytest.raises(ValueError, match="--node-ip 'node-1'"):
        check_options(options)

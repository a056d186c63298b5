"""Open streams never lock out the API: unary calls and health are always served.

Issue 11 item 1: with 32 streams open the old server had no thread left for
anything else. Streams now have a budget of their own (per client and in
total, refused with RESOURCE_EXHAUSTED beyond it) and the server's pool keeps
threads that streams cannot take (serving/streams.py).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from agents.gate import Gate
from agents.server import MAX_STREAMS, MAX_STREAMS_PER_CLIENT, build_server, stream_budget
from serving.streams import BudgetExceeded, StreamBudget, budgeted_server, client_of
from tests.unit.agents.support import sample_engine
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import agent_pb2_grpc

DEADLINE = 10.0  # generous: a healthy server answers in milliseconds


class Streams:
    """Streams a test opened; each is confirmed open by its first message."""

    def __init__(self, stub: agent_pb2_grpc.AgentStub) -> None:
        self.stub = stub
        self.calls: list[Any] = []
        self.closed = threading.Event()

    def watch(self) -> Any:
        call = self.stub.WatchEvents(pb.WatchEventsRequest(), timeout=60)
        return self._first(call)

    def capture(self) -> Any:
        call = self.stub.Capture(pb.CaptureRequest(ifname="eth0"), timeout=60)
        return self._first(call)

    def hook(self) -> Any:
        name = self.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(),
                                                timeout=DEADLINE).name

        def requests() -> Iterator[pb.HookRequest]:
            yield pb.HookRequest(attach=pb.HookAttach(ifname=name, hook="inet"))
            self.closed.wait(60)  # the client side stays open until the test ends

        call = self.stub.Hook(requests(), timeout=60)
        return self._first(call)

    def _first(self, call: Any) -> Any:
        self.calls.append(call)
        return next(call)

    def cancel(self) -> None:
        self.closed.set()
        for call in self.calls:
            call.cancel()


@contextmanager
def agent_on(listen: str, **server_args: Any) -> Iterator[tuple[agent_pb2_grpc.AgentStub,
                                                                grpc.Channel, Any]]:
    gate = Gate(sample_engine())
    server, address = build_server(gate, listen, **server_args)
    server.start()
    channel = grpc.insecure_channel(address)
    streams = Streams(agent_pb2_grpc.AgentStub(channel))
    try:
        yield streams.stub, channel, streams
    finally:
        streams.cancel()
        channel.close()
        server.stop(None).wait()


@pytest.fixture
def socket_dir() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="vrc-sb-")  # short: sun_path holds 108 bytes
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def assert_api_answers(stub: agent_pb2_grpc.AgentStub, channel: grpc.Channel) -> None:
    """ListRoutes, AddAlias and the health check all succeed within the deadline."""
    stub.ListRoutes(pb.ListRoutesRequest(), timeout=DEADLINE)
    added = stub.AddAlias(pb.AddAliasRequest(ifname="eth1", address="10.9.0.1/24"),
                          timeout=DEADLINE)
    assert added.address.address == "10.9.0.1"
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="vrc.v1.Agent"), timeout=DEADLINE)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def refused(open_one: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        open_one()
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
    return info.value


def test_with_every_stream_of_the_default_budget_open_unary_calls_and_health_answer(
    socket_dir: str,
) -> None:
    """The default server on a Unix socket: more streams than the old 32 threads."""
    with agent_on(f"unix:{socket_dir}/agent.sock") as (stub, channel, streams):
        kinds = (streams.watch, streams.capture, streams.hook)
        for index in range(MAX_STREAMS_PER_CLIENT):
            kinds[index % 3]()
        assert_api_answers(stub, channel)
        error = refused(streams.watch)
        assert f"--max-streams-per-client {MAX_STREAMS_PER_CLIENT}" in error.details()
        refused(streams.capture)
        refused(streams.hook)
        assert_api_answers(stub, channel)


def test_with_the_total_budget_open_unary_calls_answer_and_one_more_is_refused() -> None:
    budget = stream_budget(40, 40)
    with agent_on("127.0.0.1:0", streams=budget, unary_threads=4) as (stub, channel, streams):
        kinds = (streams.watch, streams.capture, streams.hook)
        for index in range(budget.total):
            kinds[index % 3]()
        assert_api_answers(stub, channel)
        error = refused(streams.capture)
        assert "--max-streams 40" in error.details(), error.details()
        assert_api_answers(stub, channel)


def test_a_closed_stream_gives_its_slot_back(socket_dir: str) -> None:
    with agent_on(f"unix:{socket_dir}/agent.sock", streams=stream_budget(2, 2),
                  unary_threads=2) as (_, _, streams):
        streams.watch()
        streams.watch()
        refused(streams.watch)
        streams.calls[0].cancel()
        # the handler sees the cancellation and returns; retry until its slot is back
        for _ in range(100):
            try:
                streams.watch()
                break
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                time.sleep(0.05)
        else:
            pytest.fail("the cancelled stream's slot never came back")


def test_reflection_streams_are_budgeted_too(socket_dir: str) -> None:
    """grpcurl's reflection stream holds a thread like any other stream."""
    with agent_on(f"unix:{socket_dir}/agent.sock", streams=stream_budget(1, 1),
                  unary_threads=2) as (stub, channel, streams):
        streams.watch()
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        call = reflection.ServerReflectionInfo(iter([request]), timeout=DEADLINE)
        with pytest.raises(grpc.RpcError) as info:
            next(call)
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        stub.ListRoutes(pb.ListRoutesRequest(), timeout=DEADLINE)


# --- the budget itself ------------------------------------------------------------------


def test_budget_refuses_per_client_and_in_total_and_names_the_flags() -> None:
    budget = StreamBudget(3, 2, total_flag="--streams", per_client_flag="--streams-each")
    first = budget.acquire_for("ipv4:10.0.0.1")
    budget.acquire_for("ipv4:10.0.0.1")
    with pytest.raises(BudgetExceeded, match=r"ipv4:10\.0\.0\.1 .*--streams-each 2"):
        budget.acquire_for("ipv4:10.0.0.1")
    budget.acquire_for("ipv4:10.0.0.2")
    with pytest.raises(BudgetExceeded, match="the limit is --streams 3: raise it"):
        budget.acquire_for("ipv4:10.0.0.3")
    assert budget.refused == 2
    first()
    first()  # giving a slot back twice gives it back once
    budget.acquire_for("ipv4:10.0.0.3")
    assert budget.open_by_client() == {"ipv4:10.0.0.1": 1, "ipv4:10.0.0.2": 1,
                                       "ipv4:10.0.0.3": 1}


@pytest.mark.parametrize(("peer", "client"), [
    ("ipv4:10.0.0.5:41234", "ipv4:10.0.0.5"),
    ("ipv6:[fd00::1]:41234", "ipv6:[fd00::1]"),
    ("ipv6:%5B::1%5D:5000", "ipv6:%5B::1%5D"),
    ("unix:", "unix"),
    ("unix:/run/vrc/agent.sock", "unix"),
])
def test_a_client_is_its_host_not_its_connection(peer: str, client: str) -> None:
    assert client_of(peer) == client


@pytest.mark.parametrize(("total", "per_client"), [(0, 1), (1, 0), (-1, 5)])
def test_limits_below_one_are_refused(total: int, per_client: int) -> None:
    with pytest.raises(ValueError, match="must be 1 or more"):
        StreamBudget(total, per_client)


def test_the_pool_keeps_threads_streams_cannot_take() -> None:
    server = budgeted_server(StreamBudget(5, 5), unary_threads=3)
    pool = server._state.thread_pool  # type: ignore[attr-defined]
    assert pool._max_workers == 8
    server.stop(None)
    with pytest.raises(ValueError, match="unary threads"):
        budgeted_server(StreamBudget(5, 5), unary_threads=0)


def test_agent_flags_set_the_stream_limits() -> None:
    from agents.daemon import build_parser, options_from

    options = options_from(build_parser().parse_args(
        ["-i", "eth1", "--max-streams", "100", "--max-streams-per-client", "7"]))
    assert (options.max_streams, options.max_streams_per_client) == (100, 7)
    defaults = options_from(build_parser().parse_args(["-i", "eth1"]))
    assert (defaults.max_streams, defaults.max_streams_per_client) == (MAX_STREAMS,
                                                                       MAX_STREAMS_PER_CLIENT)


@pytest.mark.parametrize("bad", ["0", "-3", "٣", "²", "1_000", " 5"])
def test_agent_stream_flags_take_ascii_whole_numbers_from_one(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.daemon import main

    with pytest.raises(SystemExit) as leave:
        main(["-i", "eth1", "--max-streams", bad])
    assert leave.value.code == 2
    assert "--max-streams" in capsys.readouterr().err


def test_health_watch_holds_no_slot_and_works_with_the_budget_full(socket_dir: str) -> None:
    with agent_on(f"unix:{socket_dir}/agent.sock", streams=stream_budget(1, 1),
                  unary_threads=2) as (_, channel, streams):
        streams.watch()
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


class FreezingProxy:
    """TCP between a client and the server that can stop carrying bytes, sockets left open:
    to the server the client looks like a host that lost power."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket

        self.target = target
        self.frozen = threading.Event()
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: Any, sink: Any) -> None:
        source.settimeout(0.2)
        while not self.stopped.is_set():
            if self.frozen.is_set():
                time.sleep(0.05)
                continue
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if self.frozen.is_set():
                continue  # swallowed: nothing gets through any more
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()


def test_the_streams_of_a_peer_that_vanished_free_their_slots() -> None:
    """Keepalive pings go unanswered, the server drops the connection and its streams."""
    gate = Gate(sample_engine())
    server, address = build_server(gate, "127.0.0.1:0", streams=stream_budget(1, 1),
                                   unary_threads=2, keepalive=(1.0, 1.0))
    server.start()
    port = int(address.rsplit(":", 1)[1])
    proxy = FreezingProxy(("127.0.0.1", port))
    vanishing = grpc.insecure_channel(f"127.0.0.1:{proxy.port}")
    direct = grpc.insecure_channel(address)
    try:
        held = agent_pb2_grpc.AgentStub(vanishing).WatchEvents(pb.WatchEventsRequest(),
                                                               timeout=120)
        next(held)
        stub = agent_pb2_grpc.AgentStub(direct)
        refused(lambda: next(stub.WatchEvents(pb.WatchEventsRequest(), timeout=DEADLINE)))
        proxy.frozen.set()
        deadline = time.monotonic() + 60  # generous; keepalive needs about 2 s here
        while True:
            call = stub.WatchEvents(pb.WatchEventsRequest(), timeout=DEADLINE)
            try:
                next(call)
                call.cancel()
                break
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert time.monotonic() < deadline, "the vanished peer kept its slot"
                time.sleep(0.2)
    finally:
        proxy.close()
        vanishing.close()
        direct.close()
        server.stop(None).wait()

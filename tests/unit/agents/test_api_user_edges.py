"""Edges of the Agent API and of ``vrc-agent`` start-up that a user meets first.

Error trailers name the request field (``mac``, not the engine's ``lladdr``),
an unknown event kind lists the known ones, captured frames carry UNIX time
when the agent says how its clock relates to it, and ``vrc-agent`` checks its
options before touching any NIC and names the NIC it cannot use.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections.abc import Iterator

import grpc
import pytest

from agents.daemon import Agent, AgentOptions, StartError, build_parser, check_options, main
from agents.errors import message_of, status_for
from agents.gate import Gate
from agents.server import build_server
from router import Engine
from router.errors import EADDRNOTAVAIL, EINVAL, EPERM, RouterError
from serving.tls import TlsConfig
from tests.unit.agents.support import sample_engine
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import agent_pb2_grpc

TIMEOUT = 10


@pytest.fixture
def short_dir() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="vrc-u-")  # sun_path holds 108 bytes
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def serve(engine: object, directory: str, **extra: object) -> tuple[grpc.Server, str, Gate]:
    gate = Gate(engine)
    server, address = build_server(gate, f"unix:{directory}/a.sock", **extra)  # type: ignore[arg-type]
    server.start()
    return server, address, gate


def call_error(stub_call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub_call(request, timeout=TIMEOUT)  # type: ignore[operator]
    return info.value


# --- error text and trailers ------------------------------------------------------------


def test_engine_field_names_become_request_field_names_in_trailers(short_dir: str) -> None:
    engine = Engine()
    engine.add_ethernet("eth0", bytes.fromhex("020000000001"))
    engine.add_alias("eth0", "10.0.0.1/24")
    server, address, _ = serve(engine, short_dir)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = agent_pb2_grpc.AgentStub(channel)
            error = call_error(stub.SetArp, pb.SetArpRequest(
                ifname="eth0", ip="10.0.0.9", mac="01:00:5e:00:00:01"))
    finally:
        server.stop(None).wait()
    trailers = dict(error.trailing_metadata())  # type: ignore[attr-defined]
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert trailers["vrc-field"] == "mac" and trailers["vrc-value"] == "01:00:5e:00:00:01"
    assert "lladdr" not in error.details()


def test_unknown_event_kind_lists_the_known_kinds(short_dir: str) -> None:
    server, address, _ = serve(sample_engine(), short_dir)
    try:
        with grpc.insecure_channel(address) as channel:
            stream = agent_pb2_grpc.AgentStub(channel).WatchEvents(
                pb.WatchEventsRequest(kinds=["RTM_BOGUS"]), timeout=TIMEOUT)
            with pytest.raises(grpc.RpcError) as info:
                next(stream)
    finally:
        server.stop(None).wait()
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "kinds RTM_BOGUS" in info.value.details()
    assert "RTM_NEWADDR" in info.value.details() and "ARP_ADDED" in info.value.details()


def test_error_tail_is_dropped_when_the_subject_shows_the_value() -> None:
    error = RouterError(EINVAL, "name", "eth0", "destroy eth0", "not an ngN interface")
    assert message_of(error) == "destroy eth0: not an ngN interface (EINVAL)"


def test_error_tail_names_the_field_and_value_the_subject_lacks() -> None:
    error = RouterError(EADDRNOTAVAIL, "addr", "10.0.0.9", "alias on eth0")
    assert message_of(error) == "alias on eth0: address not available (EADDRNOTAVAIL) " \
                                "[address 10.0.0.9]"


def test_empty_required_field_reads_field_colon_reason() -> None:
    error = RouterError(EINVAL, "ifname", "", detail="is required")
    assert message_of(error) == "ifname: is required (EINVAL)"


def test_own_address_arp_entry_refusal_is_failed_precondition_not_unknown() -> None:
    assert status_for(EPERM) is grpc.StatusCode.FAILED_PRECONDITION


# --- captures carry UNIX time --------------------------------------------------------


def test_captured_frames_are_stamped_with_the_wall_offset(short_dir: str) -> None:
    engine = sample_engine()
    server, address, gate = serve(engine, short_dir, wall_offset=lambda: 1_000_000.0)
    try:
        with grpc.insecure_channel(address) as channel:
            stream = agent_pb2_grpc.AgentStub(channel).Capture(
                pb.CaptureRequest(ifname="eth0", count=1), timeout=TIMEOUT)
            next(stream)  # subscribed
            gate.call(lambda e: e.inject_frame("eth0", bytes(60)))
            frames = [f for batch in stream for f in batch.frames]
    finally:
        server.stop(None).wait()
    assert len(frames) == 1
    assert 1_000_000.0 <= frames[0].timestamp < 1_000_000.0 + 1e5


# --- vrc-agent start-up ---------------------------------------------------------------


def test_bad_listen_is_refused_before_any_nic_is_opened(short_dir: str) -> None:
    # the NIC does not exist either: the --listen error must come first
    agent = Agent(AgentOptions(interfaces=["vrcnosuch0"], listen="bogus"))
    with pytest.raises(ValueError, match="--listen 'bogus'"):
        agent.start()
    assert agent.links == {} and agent.isolation.applied == []


def test_unreadable_tls_file_is_refused_before_any_nic_is_opened() -> None:
    options = AgentOptions(interfaces=["vrcnosuch0"], listen="127.0.0.1:0",
                           tls=TlsConfig("/nonexistent/c.pem", "/nonexistent/k.pem",
                                         "/nonexistent/ca.pem"))
    with pytest.raises(ValueError, match="/nonexistent/"):
        check_options(options)


def test_missing_nic_names_the_interface(short_dir: str) -> None:
    agent = Agent(AgentOptions(interfaces=["vrcnosuch0"], listen=f"unix:{short_dir}/a.sock"))
    with pytest.raises(StartError, match="--interface vrcnosuch0: no such network interface"):
        agent.start()
    assert agent.isolation.applied == []


def test_missing_nic_exits_1_with_the_name_in_the_log(
        short_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-i", "vrcnosuch0", "--listen", f"unix:{short_dir}/a.sock",
                 "--log-format", "json"])
    err = capsys.readouterr().err
    assert code == 1
    assert "--interface vrcnosuch0: no such network interface" in err
    assert "Traceback" not in err


def test_agent_help_shows_defaults_and_every_flag_has_words() -> None:
    text = build_parser().format_help()
    words = " ".join(text.split())  # argparse wraps lines
    assert "default unix:/run/vrc/agent.sock" in words
    assert "needs root" in words.lower()
    for flag in ("--tls-cert FILE", "--tls-key FILE", "--tls-ca FILE"):
        line = next(li for li in text.splitlines() if flag in li)
        assert len(line.split(flag, 1)[1].strip()) > 0, f"{flag} has no help text"


def test_errno_of_a_permission_problem_reads_as_needing_root() -> None:
    from agents.daemon import nic_problem

    assert "needs root" in nic_problem("eth1", PermissionError(errno.EACCES, "denied"))


# --- an engine MTU the host NIC cannot carry ---------------------------------------------


def test_mtu_above_the_host_nic_mtu_is_refused_saying_what_to_raise(short_dir: str) -> None:
    engine = Engine()
    engine.add_ethernet("eth0", bytes.fromhex("020000000001"))
    engine.add_ethernet("eth1", bytes.fromhex("020000000002"))
    nic_mtus = {"eth0": 1500}
    server, address, _ = serve(engine, short_dir, nic_mtu=nic_mtus.get)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = agent_pb2_grpc.AgentStub(channel)
            error = call_error(stub.SetInterface, pb.SetInterfaceRequest(name="eth0", mtu=9000))
            lowered = stub.SetInterface(pb.SetInterfaceRequest(name="eth0", mtu=1400),
                                        timeout=TIMEOUT)
            no_nic = stub.SetInterface(pb.SetInterfaceRequest(name="eth1", mtu=9000),
                                       timeout=TIMEOUT)
    finally:
        server.stop(None).wait()
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "mtu of eth0: above the MTU 1500 of the host NIC" in error.details()
    assert "ip link set eth0 mtu 9000) and restart vrc-agent" in error.details()
    assert engine.interface("eth0").mtu == 1400 == lowered.mtu  # type: ignore[union-attr]
    assert no_nic.mtu == 9000  # no NIC behind it: only the engine's bounds apply


def test_capture_stream_ends_when_its_interface_goes_away(short_dir: str) -> None:
    engine = Engine()
    name = engine.create_ng()
    server, address, gate = serve(engine, short_dir)
    try:
        with grpc.insecure_channel(address) as channel:
            stream = agent_pb2_grpc.AgentStub(channel).Capture(
                pb.CaptureRequest(ifname=name), timeout=TIMEOUT)
            assert next(stream).linktype == 0  # subscribed
            gate.call(lambda e: e.destroy_ng(name))
            rest = list(stream)  # ends (no DEADLINE_EXCEEDED after TIMEOUT)
    finally:
        server.stop(None).wait()
    assert [f for batch in rest for f in batch.frames] == []


def test_hook_stream_ends_not_found_when_its_ngn_is_destroyed(short_dir: str) -> None:
    import queue

    engine = Engine()
    name = engine.create_ng()
    server, address, gate = serve(engine, short_dir)
    hold: queue.Queue[None] = queue.Queue()

    def requests() -> Iterator[pb.HookRequest]:
        yield pb.HookRequest(attach=pb.HookAttach(ifname=name, hook="inet"))
        hold.get(timeout=TIMEOUT)  # keep our side open

    try:
        with grpc.insecure_channel(address) as channel:
            stream = agent_pb2_grpc.AgentStub(channel).Hook(requests(), timeout=TIMEOUT)
            assert next(stream).attached
            gate.call(lambda e: e.destroy_ng(name))
            with pytest.raises(grpc.RpcError) as info:
                list(stream)
    finally:
        hold.put(None)
        server.stop(None).wait()
    assert info.value.code() is grpc.StatusCode.NOT_FOUND  # not DEADLINE_EXCEEDED
    assert f"attach.ifname {name}: the interface went away (ENXIO)" == info.value.details()

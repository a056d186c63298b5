"""The agent's Sync client against a scripted Sync server (tests/sync_peer.py).

The server is a real gRPC peer on a Unix socket that sends what each test
scripts and records what the agent answers; the agent side is the real
SyncClient driving a real engine through a real Gate. Waits are bounded and
wait for a protocol event (a hello, an ACK), never for time to pass.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from agents.gate import Gate
from agents.sync import NicInfo, SyncClient, SyncConfig
from agents.sync.client import Backoff
from router import ArpConfig, Engine, EngineConfig
from router.events import EventKind
from tests.netns import wait_until
from tests.sync_peer import (
    PeerServer,
    Stream,
    alias_item,
    policy_item,
    route_item,
    snapshot,
    update,
)


def new_engine() -> Engine:
    engine = Engine(EngineConfig(arp=ArpConfig(probe_num=0)))
    engine.add_ethernet("eth0", mac="02:00:00:00:00:01", up=True)
    engine.add_ethernet("eth1", mac="02:00:00:00:00:02", up=True)
    return engine


@dataclass
class World:
    directory: Path
    peer: PeerServer

    def client(self, engine: Engine | None = None, **overrides: Any) -> tuple[SyncClient, Gate]:
        gate = Gate(engine or new_engine())
        settings: dict[str, Any] = dict(
            target=self.peer.target, host_id="h1", agent_endpoint="unix:/run/vrc/h1.sock",
            nics=(NicInfo("eth0", "02:00:00:00:00:01", 1500),),
            backoff_initial=0.02, backoff_max=0.1, watch_interval=0.02, save_interval=0.0)
        settings.update(overrides)
        client = SyncClient(gate, SyncConfig(**settings))
        self.clients.append(client)
        return client, gate

    def __post_init__(self) -> None:
        self.clients: list[SyncClient] = []


@pytest.fixture
def world() -> Iterator[World]:
    directory = Path(tempfile.mkdtemp(prefix="vs", dir="/tmp"))
    peer = PeerServer(str(directory / "ctl.sock")).start()
    w = World(directory, peer)
    try:
        yield w
    finally:
        for client in w.clients:
            client.stop()
        peer.stop()
        shutil.rmtree(directory, ignore_errors=True)


def aliases(gate: Gate) -> dict[str, str]:
    """``ifname/address`` -> ``A/LEN`` of every alias in the engine."""
    def read(engine: Engine) -> dict[str, str]:
        return {f"{ifp.name}/{a['address']}": f"{a['address']}/{a['plen']}"
                for ifp in engine.interfaces()
                for a in [engine.get_address(ifp.name, ia.addr)
                          for ia in engine.inet.addresses(ifp)]}
    return gate.call(read)


def static_routes(gate: Gate) -> dict[str, str]:
    return gate.call(lambda e: {f"{r.describe()['dst']}/{r.plen}": r.describe()["gateway"]
                                for r in e.routes() if r.is_configured})


def started(world: World, **overrides: Any) -> tuple[SyncClient, Gate, Stream]:
    client, gate = world.client(**overrides)
    client.start()
    return client, gate, world.peer.controller.wait_stream()


# --- the hello ---------------------------------------------------------------------------


def test_the_hello_names_the_host_its_endpoint_nics_version_and_local_items(world: World) -> None:
    engine = new_engine()
    engine.add_alias("eth1", "10.5.0.1/24")  # configured locally before the controller
    client, _ = world.client(engine)
    client.start()
    hello = world.peer.controller.wait_stream().hello
    assert hello.host_id == "h1"
    assert hello.agent_endpoint == "unix:/run/vrc/h1.sock"
    assert [(n.name, n.mac, n.mtu) for n in hello.nics] == [("eth0", "02:00:00:00:00:01", 1500)]
    assert hello.software_version
    assert hello.applied_version == 0
    assert [(i.key, i.alias.address) for i in hello.local_items] == [
        ("alias/eth1/10.5.0.1", "10.5.0.1/24")]


# --- versions ----------------------------------------------------------------------------


def test_a_snapshot_then_updates_are_applied_and_each_version_acknowledged(world: World) -> None:
    client, gate, stream = started(world)
    stream.send(snapshot(7, alias_item("eth0", "10.0.0.1/24"), alias_item("eth1", "10.1.0.1/24"),
                         route_item("10.9.0.0/16", ("10.0.0.2", "eth0")),
                         policy_item("multipath")))
    ack = stream.wait_ack(7)
    assert not ack.errors and not ack.report
    assert aliases(gate) == {"eth0/10.0.0.1": "10.0.0.1/24", "eth1/10.1.0.1": "10.1.0.1/24"}
    assert static_routes(gate) == {"10.9.0.0/16": "10.0.0.2"}
    assert gate.call(lambda e: e.get_policy()) == "multipath"
    stream.send(update(8, alias_item("eth0", "10.0.0.1/16"), removals=("alias/eth1/10.1.0.1",
                                                                      "route/10.9.0.0/16")))
    assert not stream.wait_ack(8).errors
    assert aliases(gate) == {"eth0/10.0.0.1": "10.0.0.1/16"}
    assert static_routes(gate) == {}
    assert client.version == 8


def test_a_partial_nack_lists_only_the_failed_items_and_the_valid_ones_are_applied(
        world: World) -> None:
    engine = new_engine()
    engine.add_alias("eth1", "10.1.0.1/24")  # local
    client, gate = world.client(engine)
    client.start()
    stream = world.peer.controller.wait_stream()
    bad = alias_item("eth0", "10.0.0.300/24")
    bad.key = "alias/eth0/10.0.0.300"
    stream.send(snapshot(3, alias_item("eth0", "10.0.0.1/24"), alias_item("eth9", "10.2.0.1/24"),
                         alias_item("eth1", "10.1.0.1/16"), bad,
                         route_item("10.8.0.0/16", ("10.0.0.2", "eth7"))))
    ack = stream.wait_ack(3)
    failed = {e.key: e.code for e in ack.errors}
    assert failed == {"alias/eth9/10.2.0.1": "ENXIO", "alias/eth1/10.1.0.1": "EEXIST",
                      "alias/eth0/10.0.0.300": "EINVAL", "route/10.8.0.0/16": "ENXIO"}
    messages = {e.key: e.message for e in ack.errors}
    assert "eth9" in messages["alias/eth9/10.2.0.1"]
    assert "configured locally" in messages["alias/eth1/10.1.0.1"]
    assert "10.0.0.300" in messages["alias/eth0/10.0.0.300"]
    assert all(e.fingerprint for e in ack.errors if e.key != "alias/eth0/10.0.0.300")
    # the valid item is applied, the local one is untouched
    assert aliases(gate) == {"eth0/10.0.0.1": "10.0.0.1/24", "eth1/10.1.0.1": "10.1.0.1/24"}
    assert [i.key for i in ack.local_items] == ["alias/eth1/10.1.0.1"]


def test_a_chunked_snapshot_is_applied_once_as_one_version(world: World) -> None:
    _, gate, stream = started(world)
    stream.send(snapshot(4, alias_item("eth0", "10.0.0.1/24"), more=True),
                snapshot(4, alias_item("eth0", "10.0.0.2/24"), more=True),
                snapshot(4, alias_item("eth1", "10.1.0.1/24")))
    ack = stream.wait_ack(4)
    assert not ack.errors
    assert [a.version for a in stream.acks] == [4]
    assert set(aliases(gate)) == {"eth0/10.0.0.1", "eth0/10.0.0.2", "eth1/10.1.0.1"}


def test_a_version_interleaved_in_a_chunked_one_drops_the_stream_and_applies_neither(
        world: World) -> None:
    client, gate, stream = started(world)
    stream.send(snapshot(4, alias_item("eth0", "10.0.0.1/24"), more=True),
                update(5, alias_item("eth0", "10.0.0.2/24")))
    second = world.peer.controller.wait_stream(2)  # the agent redialled
    assert second.hello.applied_version == 0
    assert aliases(gate) == {} and client.version == 0
    assert "inside the chunked snapshot" in client.stats.last_error


# --- reconnect ---------------------------------------------------------------------------


def test_a_reconnect_keeps_every_alias_and_touches_only_what_changed(world: World) -> None:
    client, gate, stream = started(world)
    kept = [alias_item("eth0", f"10.0.0.{n}/24") for n in range(1, 6)]
    stream.send(snapshot(10, *kept, alias_item("eth1", "10.1.0.1/24")))
    stream.wait_ack(10)
    seq = gate.events.last_seq
    stream.abort(grpc.StatusCode.UNAVAILABLE, "controller restarting")
    second = world.peer.controller.wait_stream(2)
    assert second.hello.applied_version == 10
    # half of a new snapshot that no longer holds eth1's alias, then the stream breaks:
    second.send(snapshot(12, *kept[:2], more=True))
    second.end()
    third = world.peer.controller.wait_stream(3)
    assert len(aliases(gate)) == 6 and client.version == 10  # nothing removed meanwhile
    third.send(snapshot(12, *kept, more=True), snapshot(12, alias_item("eth0", "10.0.0.9/24")))
    third.wait_ack(12)
    assert set(aliases(gate)) == {f"eth0/10.0.0.{n}" for n in (1, 2, 3, 4, 5, 9)}
    events, _ = gate.events.read_after(seq, 10_000)
    touched = [(e.kind, e.data.get("addr")) for e in events
               if e.kind in (EventKind.RTM_NEWADDR, EventKind.RTM_DELADDR)]
    assert sorted(touched, key=str) == sorted([(EventKind.RTM_DELADDR, "10.1.0.1"),
                                               (EventKind.RTM_NEWADDR, "10.0.0.9")], key=str)


def test_a_stream_cut_off_for_falling_behind_is_redialled_and_resynced(world: World) -> None:
    client, gate, stream = started(world)
    stream.send(snapshot(2, alias_item("eth0", "10.0.0.1/24")))
    stream.wait_ack(2)
    stream.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "fell too far behind; resync")
    second = world.peer.controller.wait_stream(2)
    second.send(snapshot(9, alias_item("eth0", "10.0.0.2/24")))
    assert not second.wait_ack(9).errors
    assert set(aliases(gate)) == {"eth0/10.0.0.2"}
    assert "RESOURCE_EXHAUSTED" in client.stats.last_error


def test_the_agent_keeps_forwarding_state_and_redials_while_no_controller_is_there(
        world: World) -> None:
    client, gate, stream = started(world)
    stream.send(snapshot(2, alias_item("eth0", "10.0.0.1/24")))
    stream.wait_ack(2)
    world.peer.stop()
    sessions = client.stats.sessions
    wait_until(lambda: client.stats.sessions >= sessions + 3, 10, what="three redials")
    assert aliases(gate) == {"eth0/10.0.0.1": "10.0.0.1/24"}
    world.peer.start()
    again = world.peer.controller.wait_stream(2)
    assert again.hello.applied_version == 2


# --- --state-dir -------------------------------------------------------------------------


def test_an_agent_restarted_with_the_controller_down_comes_back_from_its_state_dir(
        world: World) -> None:
    state_dir = str(world.directory / "state")
    first, _, stream = started(world, state_dir=state_dir)
    stream.send(snapshot(21, alias_item("eth0", "10.0.0.1/24"), alias_item("eth1", "10.1.0.1/24"),
                         route_item("10.9.0.0/16", ("10.0.0.2", "eth0")),
                         policy_item("multipath")))
    stream.wait_ack(21)
    assert first.stop()
    world.peer.stop()  # the controller is down when the agent comes back
    second, gate = world.client(state_dir=state_dir)
    assert second.restore() == 4
    assert aliases(gate) == {"eth0/10.0.0.1": "10.0.0.1/24", "eth1/10.1.0.1": "10.1.0.1/24"}
    assert static_routes(gate) == {"10.9.0.0/16": "10.0.0.2"}
    assert gate.call(lambda e: e.get_policy()) == "multipath"
    second.start()
    wait_until(lambda: second.stats.sessions >= 2, 10, what="redials")
    world.peer.start()
    stream = world.peer.controller.wait_stream(2)
    assert stream.hello.applied_version == 21
    assert not stream.hello.local_items  # the restored items are the controller's
    stream.send(snapshot(30, alias_item("eth0", "10.0.0.1/24")))
    stream.wait_ack(30)
    assert aliases(gate) == {"eth0/10.0.0.1": "10.0.0.1/24"}
    assert static_routes(gate) == {}


# --- drift and local items ---------------------------------------------------------------


def test_drift_is_reported_and_repaired_with_the_next_version(world: World) -> None:
    _, gate, stream = started(world)
    stream.send(snapshot(5, alias_item("eth0", "10.0.0.1/24"),
                         route_item("10.9.0.0/16", ("10.0.0.2", "eth0"))))
    stream.wait_ack(5)
    gate.call(lambda e: e.delete_route("10.9.0.0/16"))  # through the Agent API
    gate.call(lambda e: e.add_alias("eth1", "10.5.0.1/24"))
    report = stream.wait_ack(5, report=True)
    assert [(d.key, d.code) for d in report.drift] == [("route/10.9.0.0/16", "REMOVED")]
    assert "re-applied with the next version" in report.drift[0].message
    assert [i.key for i in report.local_items] == ["alias/eth1/10.5.0.1"]
    assert static_routes(gate) == {}  # not repaired before the next version
    stream.send(update(6, alias_item("eth0", "10.0.0.3/24")))
    ack = stream.wait_ack(6, report=False)
    assert not ack.drift and not ack.errors
    assert static_routes(gate) == {"10.9.0.0/16": "10.0.0.2"}
    assert "eth1/10.5.0.1" in aliases(gate)  # the local alias stays


def test_items_removed_by_the_controller_never_include_local_ones(world: World) -> None:
    engine = new_engine()
    engine.add_alias("eth1", "10.5.0.1/24")
    engine.add_route("10.7.0.0/16", gateway="10.5.0.9", ifname="eth1")
    client, gate = world.client(engine)
    client.start()
    stream = world.peer.controller.wait_stream()
    stream.send(snapshot(1, alias_item("eth0", "10.0.0.1/24")))
    stream.wait_ack(1)
    stream.send(snapshot(2))
    stream.wait_ack(2)
    assert aliases(gate) == {"eth1/10.5.0.1": "10.5.0.1/24"}
    assert static_routes(gate) == {"10.7.0.0/16": "10.5.0.9"}


# --- pieces ------------------------------------------------------------------------------


def test_backoff_grows_with_jitter_to_its_cap_and_resets() -> None:
    import random

    backoff = Backoff(0.1, 2.0, random.Random(7))
    delays = [backoff.next() for _ in range(8)]
    caps = [min(2.0, 0.1 * 2 ** n) for n in range(8)]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays)
    backoff.reset()
    assert backoff.next() <= 0.1


def test_a_controller_address_reachable_from_elsewhere_needs_tls_or_insecure() -> None:
    gate = Gate(new_engine())
    with pytest.raises(ValueError, match=r"--controller 10\.1\.2\.3:7000 is not on this host"):
        SyncClient(gate, SyncConfig(target="10.1.2.3:7000", host_id="h1"))
    with pytest.raises(ValueError, match="--controller 'nonsense'"):
        SyncClient(gate, SyncConfig(target="nonsense", host_id="h1"))
    SyncClient(gate, SyncConfig(target="10.1.2.3:7000", host_id="h1", insecure=True))
    SyncClient(gate, SyncConfig(target="127.0.0.1:7000", host_id="h1"))


def test_a_redial_takes_the_next_controller_of_the_list(world: World) -> None:
    other = PeerServer(str(world.directory / "ctl2.sock")).start()
    try:
        client, gate = world.client(target=f"{world.peer.target},{other.target}")
        client.start()
        stream = world.peer.controller.wait_stream()
        stream.send(snapshot(3, alias_item("eth0", "10.0.0.1/24")))
        stream.wait_ack(3)
        world.peer.stop()  # that replica goes away; the next redial reaches the other
        second = other.controller.wait_stream()
        assert second.hello.applied_version == 3
        second.send(snapshot(4, alias_item("eth0", "10.0.0.2/24")))
        second.wait_ack(4)
        assert set(aliases(gate)) == {"eth0/10.0.0.2"}
    finally:
        other.stop()

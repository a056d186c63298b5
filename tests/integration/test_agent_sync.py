"""vrc-agent --controller as a real process in namespace R, fed by a scripted Sync server.

The scripted server (tests/sync_peer.py) runs in the test process on a Unix
socket; the agent in its namespace dials it (Unix sockets are file system
objects, not bound to a network namespace). The kernel in A and B is the
peer: pings from A to B go through R only once the slice's aliases are on
R's interfaces.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    B_ADDR,
    R_A_ADDR,
    R_B_ADDR,
    AgentProc,
    Topology,
    ping,
)
from tests.sync_peer import PeerServer, alias_item, snapshot

pytestmark = pytest.mark.integration


@pytest.fixture
def peer() -> Iterator[PeerServer]:
    directory = Path(tempfile.mkdtemp(prefix="vrcp", dir="/tmp"))
    server = PeerServer(str(directory / "ctl.sock")).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def slice_for(topo: Topology, version: int) -> object:
    return snapshot(version, alias_item(topo.ra, f"{R_A_ADDR}/24", host="r"),
                    alias_item(topo.rb, f"{R_B_ADDR}/24", host="r"))


def test_the_agent_forwards_with_what_the_controller_sent_and_again_after_a_restart_without_it(
        topo: Topology, peer: PeerServer) -> None:
    state_dir = Path(tempfile.mkdtemp(prefix="vrcs", dir="/tmp"))
    agent = AgentProc(topo, "--controller", peer.target, "--state-dir", str(state_dir))
    try:
        stream = peer.controller.wait_stream(timeout=20)
        assert stream.hello.host_id == "r"
        assert stream.hello.agent_endpoint == agent.target
        assert sorted(n.name for n in stream.hello.nics) == sorted([topo.ra, topo.rb])
        assert all(n.mac and n.mtu == 1500 for n in stream.hello.nics)
        assert ping(topo.a, B_ADDR, count=1, timeout=3).returncode != 0  # no aliases yet
        stream.send(slice_for(topo, 40))
        assert not stream.wait_ack(40, timeout=20).errors
        result = ping(topo.a, B_ADDR)
        assert result.returncode == 0, result.stdout + result.stderr
        assert agent.stop() == 0
        assert (state_dir / "sync-state.pb").exists()
    finally:
        agent.cleanup()
    peer.stop()  # no controller when the agent comes back
    again = AgentProc(topo, "--controller", peer.target, "--state-dir", str(state_dir))
    try:
        result = ping(topo.a, B_ADDR)
        assert result.returncode == 0, result.stdout + result.stderr
        restored = [r for r in again.log_records() if r.get("event") == "state restored"]
        assert restored and restored[0]["version"] == 40 and restored[0]["items"] == 2
        peer.start()
        stream = peer.controller.wait_stream(2, timeout=20)
        assert stream.hello.applied_version == 40
    finally:
        again.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)

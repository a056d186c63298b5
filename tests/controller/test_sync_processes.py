"""Liveness with real vrc-controller processes: a replica that dies takes its leases with it.

Two ``vrc-controller`` processes on one etcd and one store root; an agent in
this process (a real Sync client and engine) dials them. SIGKILL is sent
only to controller processes this test started, by PID.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

from agents.sync.sim import InProcessAgent
from tests.controller.processes import controllers, start_controller
from tests.controller.sync_support import host_up, wait_for
from tests.etcd import TestEtcd
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

TTL = 2


def _args(root: str) -> list[str]:
    return ["--store-root", root, "--lease-ttl", str(TTL)]


def _stub(target: str) -> controller_pb2_grpc.ControllerStub:
    import grpc

    return controller_pb2_grpc.ControllerStub(grpc.insecure_channel(target))


def test_a_killed_replicas_hosts_go_down_and_come_back_when_their_agent_redials(
        etcd: TestEtcd, tmp_path: Path) -> None:
    root = f"/t{uuid.uuid4().hex[:12]}/v1/"
    with controllers(2, etcd.url, _args(root)) as (first, second):
        watcher = _stub(second.target)  # the surviving replica's view
        agent = InProcessAgent("h1", first.target, interfaces=("eth1",),
                               backoff_initial=0.05, backoff_max=0.5,
                               state_dir=str(tmp_path / "state"))
        agent.start()
        try:
            wait_for(lambda: host_up(watcher, "h1"), "h1 up (seen from the other replica)")
            revision = watcher.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
                host="h1", ifname="eth1", address="10.0.1.1/24")), timeout=10).revision
            assert agent.client.wait_applied(revision, 20)  # written on one, sent by the other
            first.stop(signal.SIGKILL)  # its lease keeper dies with it: nobody revokes
            wait_for(lambda: not host_up(watcher, "h1"), "h1 down once its lease lapsed",
                     timeout=TTL * 5 + 10)
            assert agent.aliases() == {"eth1/10.0.1.1": "10.0.1.1/24"}  # still forwarding
            again = start_controller(first.directory, etcd=etcd.url, args=_args(root))
            try:
                wait_for(lambda: host_up(watcher, "h1"), "h1 up again after the redial")
                host = watcher.GetHost(pb.GetHostRequest(id="h1"), timeout=10)
                assert host.controller and host.agent_endpoint == "sim:h1"
                assert agent.aliases() == {"eth1/10.0.1.1": "10.0.1.1/24"}
            finally:
                again.stop()
        finally:
            agent.stop()


def test_an_agent_that_loses_its_replica_lands_on_the_other_and_stays_up(
        etcd: TestEtcd) -> None:
    root = f"/t{uuid.uuid4().hex[:12]}/v1/"
    with controllers(2, etcd.url, _args(root)) as (first, second):
        watcher = _stub(second.target)
        agent = InProcessAgent("h1", f"{first.target},{second.target}", interfaces=("eth1",),
                               backoff_initial=0.05, backoff_max=0.5)
        agent.start()
        try:
            wait_for(lambda: host_up(watcher, "h1"), "h1 up")
            held_by = watcher.GetHost(pb.GetHostRequest(id="h1"), timeout=10).controller
            first.stop(signal.SIGKILL)
            wait_for(lambda: watcher.GetHost(pb.GetHostRequest(id="h1"), timeout=10).controller
                     not in ("", held_by), "h1 registered by the other replica")
            assert host_up(watcher, "h1")
            revision = watcher.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
                host="h1", ifname="eth1", address="10.0.2.1/24")), timeout=10).revision
            assert agent.client.wait_applied(revision, 20)
        finally:
            agent.stop()

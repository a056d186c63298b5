"""Sync over mutual TLS: an agent certificate Syncs as its own host only, readers and strangers
are refused, and rotating certificates keeps agents connected while new connections use the
new pair. A real etcd, a real controller in this process, real Sync clients driving engines."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from agents.sync.sim import InProcessAgent
from controller.etcd import Endpoint
from serving import pki
from serving.tls import TlsConfig
from tests.controller.sync_support import Running, agent_log, host_up, sync_controller, wait_for
from tests.etcd import TcpProxy, TestEtcd
from tests.security import TestPki, channel_to, make_test_pki, server_certificate
from tests.unit.serving.test_auth import call
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

TIMEOUT = 10
SYNC = pb.DESCRIPTOR.services_by_name["Controller"].methods_by_name["Sync"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"), agents=("h1", "h2"))


@contextlib.contextmanager
def secure(etcd: TestEtcd, certs: TestPki) -> Iterator[Running]:
    """The controller on a plaintext Unix socket (the test's own admin), a unix+tls socket
    and loopback TCP, both with mutual TLS; its server pair in files of its own."""
    directory = Path(tempfile.mkdtemp(prefix="vrc-ss-", dir="/tmp"))
    cert, key = directory / "server.crt", directory / "server.key"
    shutil.copy(certs.files("controller").cert, cert)
    shutil.copy(certs.files("controller").key, key)
    try:
        with sync_controller(etcd, directory=directory, tls=TlsConfig(
                str(cert), str(key), certs.ca), also_listen=(
                f"unix+tls:{directory}/tls.sock", "127.0.0.1:0")) as running:
            yield running
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def unix_tls(running: Running) -> str:
    return running.controller.addresses[1]


def tcp(running: Running) -> str:
    return running.controller.addresses[2]


def agent(running: Running, host: str, target: str, tls: TlsConfig) -> InProcessAgent:
    made = InProcessAgent(host, target, log=agent_log(host), tls=tls, backoff_initial=0.05,
                          backoff_max=0.3, watch_interval=0.05)
    running.agents.append(made)
    return made.start()


def test_an_agent_certificate_for_host_a_cannot_sync_as_host_b(etcd: TestEtcd,
                                                               certs: TestPki) -> None:
    with secure(etcd, certs) as running:
        local = running.stub()
        impostor = agent(running, "h2", unix_tls(running), certs.tls("agent-h1"))
        wait_for(lambda: "PERMISSION_DENIED" in impostor.client.stats.last_error,
                 "the impostor's refusal")
        error = impostor.client.stats.last_error
        assert "spiffe://vrc/agent/h1" in error and "vrc.v1.Controller/Sync" in error
        assert "as host h2" in error and "names host h1" in error
        assert not impostor.client.connected
        # nothing was registered for h2: no host record, no lease, no audit record
        with pytest.raises(grpc.RpcError) as info:
            local.GetHost(pb.GetHostRequest(id="h2"), timeout=TIMEOUT)
        assert info.value.code() is grpc.StatusCode.NOT_FOUND
        store = running.controller.store
        assert store is not None
        assert store.etcd.get(store.keys.live("h2"))[0] is None
        assert all("h2" not in s.record.hosts for s in store.list_history().items)


def test_an_agent_syncs_as_its_own_host_over_unix_tls_and_tcp(etcd: TestEtcd,
                                                              certs: TestPki) -> None:
    with secure(etcd, certs) as running:
        local = running.stub()
        one = agent(running, "h1", unix_tls(running), certs.tls("agent-h1"))
        two = agent(running, "h2", tcp(running), certs.tls("agent-h2"))
        wait_for(lambda: host_up(local, "h1") and host_up(local, "h2"), "both hosts up")
        revision = local.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
            host="h1", ifname="eth1", address="10.0.0.1/24")), timeout=TIMEOUT).revision
        assert one.client.wait_applied(revision, timeout=20)
        assert one.aliases() == {"eth1/10.0.0.1": "10.0.0.1/24"}
        assert two.client.connected
        registered = [e for e in local_history(running) if e.operation == "report_host"]
        assert {(e.identity, tuple(e.hosts)) for e in registered} == {
            ("spiffe://vrc/agent/h1", ("h1",)), ("spiffe://vrc/agent/h2", ("h2",))}


def local_history(running: Running) -> list[pb.HistoryEntry]:
    reply = running.stub().ListHistory(pb.ListHistoryRequest(limit=1000), timeout=TIMEOUT)
    return list(reply.entries)


@pytest.mark.parametrize(("who", "code"), [("reader", grpc.StatusCode.PERMISSION_DENIED),
                                            ("controller", grpc.StatusCode.PERMISSION_DENIED),
                                            ("stranger", grpc.StatusCode.UNAVAILABLE),
                                            ("expired", grpc.StatusCode.UNAVAILABLE)])
def test_only_agents_and_admins_may_open_sync(etcd: TestEtcd, certs: TestPki, who: str,
                                              code: grpc.StatusCode) -> None:
    with secure(etcd, certs) as running, channel_to(tcp(running), certs.tls(who)) as channel:
        assert call(channel, SYNC) is code


def test_rotating_certificates_keeps_agents_connected_and_new_connections_use_them(
        etcd: TestEtcd, certs: TestPki, tmp_path: Path) -> None:
    """The controller's pair is rewritten under an open Sync stream: the stream goes on,
    a new connection is shown the new certificate. Then the agent's own files are
    rewritten: its stream goes on too, and its next connection presents the new pair —
    first one naming another host (refused), then one naming its own (accepted)."""
    with secure(etcd, certs) as running:
        local = running.stub()
        directory = running.directory
        host, _, port = tcp(running).rpartition(":")
        proxy = TcpProxy(Endpoint(host, int(port)))
        mine_cert, mine_key = tmp_path / "agent.crt", tmp_path / "agent.key"
        shutil.copy(certs.files("agent-h1").cert, mine_cert)
        shutil.copy(certs.files("agent-h1").key, mine_key)
        mine = TlsConfig(str(mine_cert), str(mine_key), certs.ca)
        try:
            h1 = agent(running, "h1", f"127.0.0.1:{proxy.port}", mine)
            wait_for(lambda: host_up(local, "h1") and h1.client.connected, "h1 up")
            sessions = h1.client.stats.sessions

            # the controller's certificate, rewritten under the open stream
            before = server_certificate(host, int(port), certs.tls("admin"))
            new = certs.authority.issue(pki.CertRole.CONTROLLER, "controller-2",
                                        ips=["127.0.0.1"])
            pki.write_atomic(directory / "server.key", new.key, 0o600)
            pki.write_atomic(directory / "server.crt", new.cert, 0o644)
            after = server_certificate(host, int(port), certs.tls("admin"))
            assert after != before
            assert hashlib.sha256(after).hexdigest() == pki.describe(new.cert).fingerprint
            applied = put_alias(local, "10.0.0.1/24")
            assert h1.client.wait_applied(applied, timeout=20)
            assert h1.client.stats.sessions == sessions  # the same stream carried it

            # the agent's own files: a pair for another host first
            other = certs.authority.issue(pki.CertRole.AGENT, "h9")
            pki.write_atomic(mine_key, other.key, 0o600)
            pki.write_atomic(mine_cert, other.cert, 0o644)
            applied = put_alias(local, "10.0.0.2/24")
            assert h1.client.wait_applied(applied, timeout=20)  # still the old connection
            assert h1.client.stats.sessions == sessions
            proxy.cut()
            proxy.restore()
            wait_for(lambda: "names host h9" in h1.client.stats.last_error,
                     "the next connection to present the new (wrong) pair")
            # then its own again, renewed: the next redial is accepted
            renewed = certs.authority.issue(pki.CertRole.AGENT, "h1")
            pki.write_atomic(mine_key, renewed.key, 0o600)
            pki.write_atomic(mine_cert, renewed.cert, 0o644)
            wait_for(lambda: h1.client.connected and host_up(local, "h1"), "h1 back")
            applied = put_alias(local, "10.0.0.3/24")
            assert h1.client.wait_applied(applied, timeout=20)
            assert "eth1/10.0.0.3" in h1.aliases()
        finally:
            proxy.close()


def put_alias(stub: controller_pb2_grpc.ControllerStub, address: str) -> int:
    return int(stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
        host="h1", ifname="eth1", address=address)), timeout=TIMEOUT).revision)

"""The controller with mutual TLS on: who may call what, access records, Sync's host rule,
write budgets and stream budgets per identity. A real etcd and a real controller (in this
process, on a Unix socket and a loopback TCP address with mutual TLS)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from controller.access import METHODS, READS, authorize_sync
from controller.daemon import Controller, ControllerOptions
from controller.etcd import EtcdConfig
from controller.store import PermissionDenied
from serving.auth import Access, Grant, Identity, Role, Transport, acting_as
from serving.logs import get_logger
from serving.pki import CertRole
from serving.tls import TlsConfig
from tests.etcd import TestEtcd
from tests.security import TestPki, channel_to, make_test_pki
from tests.unit.serving.test_auth import call
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

TIMEOUT = 10
CONTROLLER = pb.DESCRIPTOR.services_by_name["Controller"]
ROOT_ADMIN = "spiffe://vrc/admin/root"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def secure_controller(etcd: TestEtcd, certs: TestPki, **options: Any) -> Iterator[Controller]:
    directory = Path(tempfile.mkdtemp(prefix="vrc-sec-"))
    settings: dict[str, Any] = {
        "listen": f"unix:{directory}/c.sock", "also_listen": ("127.0.0.1:0",),
        "data_dir": str(directory), "etcd": EtcdConfig((etcd.endpoint,)), "replica_id": "sec",
        "store_root": f"/t{uuid.uuid4().hex[:12]}/v1/", "max_watch_streams": 8,
        "max_watch_streams_per_client": 2, "tls": certs.tls("controller").server_side(),
        "bootstrap_admins": (ROOT_ADMIN,), **options}
    running = Controller(ControllerOptions(**settings), log=get_logger("test.security"))
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def controller(etcd: TestEtcd, certs: TestPki) -> Iterator[Controller]:
    with secure_controller(etcd, certs) as running:
        yield running


def tcp(controller: Controller) -> str:
    return controller.addresses[1]


@contextlib.contextmanager
def stub_for(controller: Controller, tls: TlsConfig | None
             ) -> Iterator[controller_pb2_grpc.ControllerStub]:
    target = controller.addresses[0] if tls is None else tcp(controller)
    with channel_to(target, tls) as channel:
        yield controller_pb2_grpc.ControllerStub(channel)


def methods(access: Access) -> list[Any]:
    return [m for m in CONTROLLER.methods
            if METHODS[f"/{CONTROLLER.full_name}/{m.name}"] is access]


def test_every_controller_method_is_classified_and_the_writes_are_the_ones_expected() -> None:
    assert {m.name for m in methods(Access.READ)} == set(READS)
    assert {m.name for m in methods(Access.SYNC)} == {"Sync"}
    assert {m.name for m in methods(Access.OPEN)} == {"WhoAmI"}
    writes = {m.name for m in methods(Access.WRITE)}
    assert {"AddHost", "RemoveHost", "PutAlias", "DeleteAlias", "PutPrefix", "DeletePrefix",
            "SetPolicy", "GrantAccess", "RevokeAccess"} <= writes
    assert len(writes) + len(READS) + 2 == len(CONTROLLER.methods)


@pytest.mark.parametrize("method", methods(Access.WRITE), ids=lambda m: m.name)
def test_a_reader_gets_permission_denied_on_every_write_method(
        controller: Controller, certs: TestPki, method: Any) -> None:
    with channel_to(tcp(controller), certs.tls("reader")) as channel:
        assert call(channel, method) is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("method", methods(Access.READ), ids=lambda m: m.name)
def test_a_reader_may_call_every_read_method(controller: Controller, certs: TestPki,
                                             method: Any) -> None:
    with channel_to(tcp(controller), certs.tls("reader")) as channel:
        assert call(channel, method) is not grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("method", methods(Access.READ), ids=lambda m: m.name)
def test_an_agent_certificate_reads_nothing(controller: Controller, certs: TestPki,
                                            method: Any) -> None:
    with channel_to(tcp(controller), certs.tls("agent-h1")) as channel:
        assert call(channel, method) is grpc.StatusCode.PERMISSION_DENIED


def test_the_denial_names_the_identity_and_the_method(controller: Controller,
                                                      certs: TestPki) -> None:
    with stub_for(controller, certs.tls("reader")) as stub, \
            pytest.raises(grpc.RpcError) as info:
        stub.AddHost(pb.AddHostRequest(id="h9"), timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "spiffe://vrc/reader/bob" in info.value.details()
    assert "vrc.v1.Controller/AddHost" in info.value.details()
    trailers = dict(info.value.trailing_metadata())
    assert trailers["vrc-reason"] == "permission-denied"
    assert trailers["vrc-method"] == "vrc.v1.Controller/AddHost"


def test_an_admin_certificate_writes_and_a_unix_peer_is_an_admin(controller: Controller,
                                                                 certs: TestPki) -> None:
    with stub_for(controller, certs.tls("admin")) as stub:
        assert stub.AddHost(pb.AddHostRequest(id="admin-made"), timeout=TIMEOUT).revision
    with stub_for(controller, None) as local:
        local.RemoveHost(pb.RemoveHostRequest(id="admin-made"), timeout=TIMEOUT)
        me = local.WhoAmI(pb.WhoAmIRequest(), timeout=TIMEOUT)
    assert (me.identity, me.role) == ("local", pb.ACCESS_ROLE_ADMIN)


@pytest.mark.parametrize("who", ["expired", "stranger", None])
def test_a_client_without_a_valid_certificate_of_the_ca_is_refused(
        controller: Controller, certs: TestPki, who: str | None) -> None:
    tls = certs.tls(who) if who else TlsConfig(ca=certs.ca)
    with stub_for(controller, tls) as stub, pytest.raises(grpc.RpcError) as info:
        stub.WhoAmI(pb.WhoAmIRequest(), timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE  # the handshake fails


def test_a_plaintext_client_cannot_reach_the_tls_port(controller: Controller) -> None:
    with grpc.insecure_channel(tcp(controller)) as channel, \
            pytest.raises(grpc.RpcError) as info:
        controller_pb2_grpc.ControllerStub(channel).WhoAmI(pb.WhoAmIRequest(), timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


# --- access records -----------------------------------------------------------------------


def whoami(controller: Controller, tls: TlsConfig) -> tuple[int, str]:
    with stub_for(controller, tls) as stub:
        entry = stub.WhoAmI(pb.WhoAmIRequest(), timeout=TIMEOUT)
    return entry.role, entry.source


def test_a_grant_changes_a_role_and_a_revoke_denies_what_the_certificate_names(
        etcd: TestEtcd, certs: TestPki) -> None:
    with secure_controller(etcd, certs) as running, \
            stub_for(running, certs.tls("admin")) as admin:
        reader = certs.tls("reader")
        assert whoami(running, reader) == (pb.ACCESS_ROLE_READER, "certificate")
        admin.GrantAccess(pb.GrantAccessRequest(identity="spiffe://vrc/reader/bob",
                                                role=pb.ACCESS_ROLE_ADMIN), timeout=TIMEOUT)
        assert whoami(running, reader) == (pb.ACCESS_ROLE_ADMIN, "access record")
        with stub_for(running, reader) as bob:
            bob.AddHost(pb.AddHostRequest(id="by-bob"), timeout=TIMEOUT)
        admin.RevokeAccess(pb.RevokeAccessRequest(identity="spiffe://vrc/reader/bob"),
                           timeout=TIMEOUT)
        assert whoami(running, reader) == (pb.ACCESS_ROLE_NONE, "access record")
        with stub_for(running, reader) as bob, pytest.raises(grpc.RpcError) as info:
            bob.ListHosts(pb.ListHostsRequest(), timeout=TIMEOUT)
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        entries = admin.ListAccess(pb.ListAccessRequest(), timeout=TIMEOUT).entries
        assert [(e.identity, e.role, e.source) for e in entries] == [
            (ROOT_ADMIN, pb.ACCESS_ROLE_ADMIN, "--bootstrap-admin"),
            ("spiffe://vrc/reader/bob", pb.ACCESS_ROLE_NONE, "access record")]
        assert entries[1].granted_by == "spiffe://vrc/admin/admin"
        # a grant back restores it
        admin.GrantAccess(pb.GrantAccessRequest(identity="spiffe://vrc/reader/bob",
                                                role=pb.ACCESS_ROLE_READER), timeout=TIMEOUT)
        assert whoami(running, reader) == (pb.ACCESS_ROLE_READER, "access record")


def test_revoking_an_identity_without_a_certificate_role_removes_its_grant(
        etcd: TestEtcd, certs: TestPki) -> None:
    with secure_controller(etcd, certs) as running, stub_for(running, None) as local:
        controller_identity = "spiffe://vrc/controller/controller"
        controller_tls = certs.tls("controller")
        assert whoami(running, controller_tls)[0] == pb.ACCESS_ROLE_NONE
        local.GrantAccess(pb.GrantAccessRequest(identity=controller_identity,
                                                role=pb.ACCESS_ROLE_READER), timeout=TIMEOUT)
        assert whoami(running, controller_tls)[0] == pb.ACCESS_ROLE_READER
        local.RevokeAccess(pb.RevokeAccessRequest(identity=controller_identity),
                           timeout=TIMEOUT)
        assert local.ListAccess(pb.ListAccessRequest(), timeout=TIMEOUT).entries[1:] == []
        with pytest.raises(grpc.RpcError) as info:
            local.RevokeAccess(pb.RevokeAccessRequest(identity=controller_identity),
                               timeout=TIMEOUT)
        assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_bootstrap_admin_is_an_admin_and_cannot_be_changed_through_the_api(
        etcd: TestEtcd, certs: TestPki) -> None:
    root = certs.issue(CertRole.READER, "root-as-reader")
    identity = "spiffe://vrc/reader/root-as-reader"
    with secure_controller(etcd, certs, bootstrap_admins=(identity,)) as running, \
            stub_for(running, None) as local:
        tls = TlsConfig(str(root.cert), str(root.key), certs.ca)
        assert whoami(running, tls) == (pb.ACCESS_ROLE_ADMIN, "--bootstrap-admin")
        for request in (lambda: local.GrantAccess(pb.GrantAccessRequest(
                identity=identity, role=pb.ACCESS_ROLE_NONE), timeout=TIMEOUT),
                lambda: local.RevokeAccess(pb.RevokeAccessRequest(identity=identity),
                                           timeout=TIMEOUT)):
            with pytest.raises(grpc.RpcError) as info:
                request()
            assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "--bootstrap-admin" in info.value.details()


@pytest.mark.parametrize(("identity", "role", "field"), [
    ("", pb.ACCESS_ROLE_ADMIN, "identity"),
    ("local", pb.ACCESS_ROLE_ADMIN, "identity"),
    ("spiffe://vrc/admin/a b", pb.ACCESS_ROLE_ADMIN, "identity"),
    ("spiffe://vrc/admin/é", pb.ACCESS_ROLE_ADMIN, "identity"),
    ("x" * 600, pb.ACCESS_ROLE_ADMIN, "identity"),
    ("spiffe://vrc/reader/r", pb.ACCESS_ROLE_AGENT, "role"),
    ("spiffe://vrc/reader/r", pb.ACCESS_ROLE_UNSPECIFIED, "role"),
])
def test_a_bad_grant_is_refused_naming_the_field(controller: Controller, identity: str,
                                                 role: int, field: str) -> None:
    with stub_for(controller, None) as local, pytest.raises(grpc.RpcError) as info:
        local.GrantAccess(pb.GrantAccessRequest(identity=identity, role=role), timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata())["vrc-field"] == field


def test_an_open_stream_ends_when_its_caller_loses_the_right(etcd: TestEtcd,
                                                             certs: TestPki) -> None:
    with secure_controller(etcd, certs, reauthorize_every=0.0) as running, \
            stub_for(running, None) as local, stub_for(running, certs.tls("reader")) as bob:
        stream = bob.WatchConfig(pb.WatchConfigRequest(), timeout=60)
        next(stream)  # the snapshot
        local.GrantAccess(pb.GrantAccessRequest(identity="spiffe://vrc/reader/bob",
                                                role=pb.ACCESS_ROLE_NONE), timeout=TIMEOUT)
        local.AddHost(pb.AddHostRequest(id="after-revoke"), timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError) as info:
            for _ in range(5):
                next(stream)
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "access changed while the stream was open" in info.value.details()


# --- Sync: an agent only as the host its certificate names ----------------------------------


def agent_identity(host: str) -> Identity:
    return Identity(f"spiffe://vrc/agent/{host}", Transport.TLS)


class NoPeer:
    def peer(self) -> str:
        raise AssertionError("authorize_sync should use the identity of the call")


def test_an_agent_certificate_for_host_a_cannot_sync_as_host_b() -> None:
    with acting_as(agent_identity("a"), Grant(Role.AGENT, "certificate")), \
            pytest.raises(PermissionDenied) as info:
        authorize_sync(NoPeer(), "b")  # type: ignore[arg-type]
    text = str(info.value)
    assert "spiffe://vrc/agent/a" in text and "vrc.v1.Controller/Sync" in text
    assert "as host b" in text and "names host a" in text
    assert info.value.field == "hello.host_id"


def test_an_agent_may_sync_as_its_own_host_and_an_admin_as_any() -> None:
    with acting_as(agent_identity("a"), Grant(Role.AGENT, "certificate")):
        assert authorize_sync(NoPeer(), "a") == agent_identity("a")  # type: ignore[arg-type]
    admin = Identity("spiffe://vrc/admin/ops", Transport.TLS)
    with acting_as(admin, Grant(Role.ADMIN, "certificate")):
        assert authorize_sync(NoPeer(), "anything") == admin  # type: ignore[arg-type]
    local = Identity("local", Transport.UNIX)
    with acting_as(local, Grant(Role.ADMIN, "unix socket (mode 0600)")):
        assert authorize_sync(NoPeer(), "b") == local  # type: ignore[arg-type]


def test_a_non_agent_certificate_that_reached_sync_is_refused() -> None:
    odd = Identity("spiffe://vrc/controller/c", Transport.TLS)
    with acting_as(odd, Grant(Role.AGENT, "access record")), \
            pytest.raises(PermissionDenied, match="only an agent certificate"):
        authorize_sync(NoPeer(), "h1")  # type: ignore[arg-type]


def test_readers_are_refused_sync_at_the_door_and_agents_let_through(
        controller: Controller, certs: TestPki) -> None:
    sync = next(m for m in CONTROLLER.methods if m.name == "Sync")
    with channel_to(tcp(controller), certs.tls("reader")) as channel:
        assert call(channel, sync) is grpc.StatusCode.PERMISSION_DENIED
    with channel_to(tcp(controller), certs.tls("agent-h1")) as channel:
        assert call(channel, sync) is not grpc.StatusCode.PERMISSION_DENIED


# --- budgets per identity ------------------------------------------------------------------


def test_writes_beyond_an_identitys_budget_are_resource_exhausted_with_a_retry_hint(
        etcd: TestEtcd, certs: TestPki) -> None:
    with secure_controller(etcd, certs, write_rate=0.5, write_burst=2) as running, \
            stub_for(running, certs.tls("admin")) as admin, stub_for(running, None) as local:
        admin.AddHost(pb.AddHostRequest(id="r1"), timeout=TIMEOUT)
        admin.AddHost(pb.AddHostRequest(id="r2"), timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError) as info:
            admin.AddHost(pb.AddHostRequest(id="r3"), timeout=TIMEOUT)
        error = info.value
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "spiffe://vrc/admin/admin" in error.details() and "retry in" in error.details()
        retry = float(dict(error.trailing_metadata())["vrc-retry-after"])
        assert 0 < retry <= 2.0
        # reads are not budgeted, nor is another identity, nor the local socket
        admin.ListHosts(pb.ListHostsRequest(), timeout=TIMEOUT)
        for index in range(5):
            local.AddHost(pb.AddHostRequest(id=f"l{index}"), timeout=TIMEOUT)
        with stub_for(running, TlsConfig(ca=certs.ca, cert=str(certs.files("admin").cert),
                                         key=str(certs.files("admin").key))) as same:
            with pytest.raises(grpc.RpcError) as again:
                same.AddHost(pb.AddHostRequest(id="r4"), timeout=TIMEOUT)
            assert again.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # same identity


def test_stream_budgets_count_per_identity_not_per_address(etcd: TestEtcd,
                                                           certs: TestPki) -> None:
    with secure_controller(etcd, certs, max_watch_streams_per_client=1) as running, \
            stub_for(running, certs.tls("admin")) as admin, \
            stub_for(running, certs.tls("reader")) as reader:
        first = admin.WatchConfig(pb.WatchConfigRequest(), timeout=60)
        next(first)
        with pytest.raises(grpc.RpcError) as info:
            next(admin.WatchConfig(pb.WatchConfigRequest(), timeout=60))
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "spiffe://vrc/admin/admin already has 1" in info.value.details()
        other = reader.WatchConfig(pb.WatchConfigRequest(), timeout=60)  # same address
        next(other)
        first.cancel()
        other.cancel()


def test_denials_and_rate_limited_writes_are_counted_in_the_metrics(
        etcd: TestEtcd, certs: TestPki) -> None:
    import urllib.request

    with secure_controller(etcd, certs, metrics="127.0.0.1:0", write_rate=0.1,
                           write_burst=1) as running, \
            stub_for(running, certs.tls("reader")) as reader, \
            stub_for(running, certs.tls("admin")) as admin:
        for _ in range(2):
            with pytest.raises(grpc.RpcError):
                reader.AddHost(pb.AddHostRequest(id="m1"), timeout=TIMEOUT)
        admin.AddHost(pb.AddHostRequest(id="m2"), timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError):
            admin.AddHost(pb.AddHostRequest(id="m3"), timeout=TIMEOUT)
        assert running.metrics is not None
        with urllib.request.urlopen(f"http://{running.metrics.address}/metrics",
                                    timeout=TIMEOUT) as reply:
            text = reply.read().decode()
    assert 'vrc_controller_access_denied_total{method="AddHost"} 2.0' in text
    assert "vrc_controller_writes_rate_limited_total 1.0" in text
    assert "vrc_controller_history_pruned_total" in text

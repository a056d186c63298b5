"""The Controller API through a real gRPC channel to a real controller (Unix socket, real etcd)."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from controller.daemon import Controller
from controller.etcd import Txn
from controller.store import LiveRecord, Nic, encode
from tests.controller.processes import serving
from tests.etcd import TestEtcd
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc
from vrc.v1 import types_pb2 as tpb

T = 10  # seconds: a bound on every call, never what a test measures
Stub = controller_pb2_grpc.ControllerStub


def alias(host: str, ifname: str, address: str, **extra: str) -> pb.PutAliasRequest:
    return pb.PutAliasRequest(alias=pb.Alias(host=host, ifname=ifname, address=address,
                                             **extra))


def code_of(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_every_write_returns_the_revision_it_created(stub: Stub) -> None:
    added = stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T).revision
    assert stub.GetHost(pb.GetHostRequest(id="h1"), timeout=T).revision == added
    put = stub.PutAlias(alias("h1", "eth1", "10.0.0.1/24", broadcast="10.0.0.255"),
                        timeout=T).revision
    listed = stub.ListAliases(pb.ListAliasesRequest(host="h1"), timeout=T)
    assert put > added and listed.revision >= put
    assert [(a.ifname, a.address, a.broadcast, a.revision) for a in listed.aliases] == [
        ("eth1", "10.0.0.1/24", "10.0.0.255", put)]
    claimed = stub.PutPrefix(pb.PutPrefixRequest(prefix="10.9.0.0/16", host="h1",
                                                 ifname="eth1"), timeout=T).revision
    claims = stub.ListPrefixes(pb.ListPrefixesRequest(), timeout=T).claims
    assert [(c.prefix, c.host, c.role, c.revision) for c in claims] == [
        ("10.9.0.0/16", "h1", pb.CLAIM_ROLE_DOWN, claimed)]
    deleted = stub.DeleteAlias(pb.DeleteClusterAliasRequest(host="h1", ifname="eth1",
                                                            address="10.0.0.1/24"),
                               timeout=T).revision
    assert deleted > claimed
    assert not stub.ListAliases(pb.ListAliasesRequest(), timeout=T).aliases
    removed = stub.RemoveHost(pb.RemoveHostRequest(id="h1", cascade=True), timeout=T).revision
    assert removed > deleted
    assert not stub.ListHosts(pb.ListHostsRequest(), timeout=T).hosts


def test_a_stale_expected_revision_is_aborted_with_the_current_one(stub: Stub) -> None:
    first = stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T).revision
    put = stub.PutAlias(alias("h1", "eth1", "10.0.0.1/24"), timeout=T).revision
    request = alias("h1", "eth1", "10.0.0.1/16")
    request.expected_revision = first
    with pytest.raises(grpc.RpcError) as caught:
        stub.PutAlias(request, timeout=T)
    error = caught.value
    assert error.code() == grpc.StatusCode.ABORTED
    assert f"revision {put}" in error.details()
    assert dict(error.trailing_metadata())["vrc-revision"] == str(put)
    request.expected_revision = put
    assert stub.PutAlias(request, timeout=T).revision > put


def test_policy_cluster_wide_and_per_host(stub: Stub, controller: Controller) -> None:
    stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T)
    assert stub.GetPolicy(pb.GetClusterPolicyRequest(), timeout=T).same_prefix == \
        tpb.POLICY_ALLOW
    stub.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=tpb.POLICY_REFUSE), timeout=T)
    set_at = stub.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=tpb.POLICY_MULTIPATH,
                                                       host="h1"), timeout=T).revision
    policy = stub.GetPolicy(pb.GetClusterPolicyRequest(host="h1"), timeout=T)
    assert (policy.same_prefix, dict(policy.host_overrides), policy.effective,
            policy.revision) == (tpb.POLICY_REFUSE, {"h1": tpb.POLICY_MULTIPATH},
                                 tpb.POLICY_MULTIPATH, set_at)
    stub.SetPolicy(pb.SetClusterPolicyRequest(host="h1", clear=True), timeout=T)
    assert stub.GetPolicy(pb.GetClusterPolicyRequest(host="h1"), timeout=T).effective == \
        tpb.POLICY_REFUSE


def test_status_answers_from_the_store(stub: Stub, controller: Controller) -> None:
    stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T)
    stub.AddHost(pb.AddHostRequest(id="h2"), timeout=T)
    status = stub.GetHostStatus(pb.GetHostStatusRequest(host="h1"), timeout=T)
    # nothing applied yet: its slice (the policy, no alias) is pending
    assert (status.host, status.up, status.applied_version) == ("h1", False, 0)
    assert [(i.key, i.state) for i in status.items] == [("policy", pb.ITEM_STATE_PENDING)]
    assert code_of(lambda: stub.GetHostStatus(pb.GetHostStatusRequest(host="h9"),
                                              timeout=T)) == grpc.StatusCode.NOT_FOUND
    assert controller.store is not None
    controller.store.etcd.txn(Txn().put(controller.store.keys.live("h2"), encode(
        LiveRecord("h2", "replica-a", "unix:/run/vrc/agent.sock", 1.5e9))))
    status = stub.GetHostStatus(pb.GetHostStatusRequest(host="h2"), timeout=T)
    assert (status.up, status.controller, status.agent_endpoint) == (
        True, "replica-a", "unix:/run/vrc/agent.sock")
    fleet = stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=T)
    assert (fleet.hosts_up, fleet.hosts_down, list(fleet.lagging)) == (1, 1, ["h2"])
    host = stub.GetHost(pb.GetHostRequest(id="h2"), timeout=T)
    assert host.up and host.registered_at == 1.5e9


def test_a_registered_host_lists_its_nics(stub: Stub, controller: Controller) -> None:
    assert controller.store is not None
    controller.store.report_host("h1", [Nic("eth0", "02:00:00:00:00:01", 1500)], "unix:/a",
                                 "0.1.0")
    host = stub.GetHost(pb.GetHostRequest(id="h1"), timeout=T)
    assert [(n.name, n.mac, n.mtu) for n in host.nics] == [("eth0", "02:00:00:00:00:01", 1500)]
    with pytest.raises(grpc.RpcError) as caught:
        stub.PutAlias(alias("h1", "eth7", "10.0.0.1/24"), timeout=T)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "reported: eth0" in caught.value.details()


def test_a_sync_stream_must_start_with_a_valid_hello(stub: Stub) -> None:
    call = stub.Sync(iter([pb.SyncRequest(ack=pb.SyncAck(version=1))]), timeout=T)
    with pytest.raises(grpc.RpcError) as caught:
        list(call)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hello" in (caught.value.details() or "")
    call = stub.Sync(iter([pb.SyncRequest(hello=pb.SyncHello(host_id="Not A Host"))]),
                     timeout=T)
    with pytest.raises(grpc.RpcError) as caught:
        list(call)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hello.host_id" in (caught.value.details() or "")


def test_health_and_reflection(controller: Controller) -> None:
    assert serving(controller.address)
    with grpc.insecure_channel(controller.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="vrc.v1.Controller"), timeout=T)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=T)
        names = {s.name for a in answers for s in a.list_services_response.service}
    assert "vrc.v1.Controller" in names


def test_a_request_over_the_size_limit_is_refused(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddHost(pb.AddHostRequest(id="h" * 100_000), timeout=T)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- WatchConfig -------------------------------------------------------------------------


def test_watch_from_zero_sends_a_snapshot_then_changes(stub: Stub) -> None:
    stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T)
    stub.PutAlias(alias("h1", "eth1", "10.0.0.1/24"), timeout=T)
    call = stub.WatchConfig(pb.WatchConfigRequest(), timeout=T)
    snapshot = next(call)
    assert snapshot.snapshot and not snapshot.more
    assert [c.WhichOneof("record") for c in snapshot.changes] == ["host", "alias"]
    deleted = stub.DeleteAlias(pb.DeleteClusterAliasRequest(
        host="h1", ifname="eth1", address="10.0.0.1"), timeout=T).revision
    batch = next(call)
    call.cancel()
    assert batch.revision == deleted and not batch.snapshot
    (change,) = batch.changes
    assert change.action == pb.ConfigChange.ACTION_DELETE
    assert (change.alias.host, change.alias.ifname, change.alias.address) == (
        "h1", "eth1", "10.0.0.1/24")


def test_watch_after_a_revision_sends_only_later_changes(stub: Stub) -> None:
    after = stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T).revision
    later = stub.AddHost(pb.AddHostRequest(id="h2"), timeout=T).revision
    call = stub.WatchConfig(pb.WatchConfigRequest(after_revision=after), timeout=T)
    assert next(call) == pb.ConfigBatch(revision=after)  # subscribed
    batch = next(call)
    call.cancel()
    assert [(c.revision, c.host.id) for c in batch.changes] == [(later, "h2")]


def test_watch_from_a_compacted_or_future_revision_is_out_of_range(
        stub: Stub, controller: Controller) -> None:
    old = stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T).revision
    latest = stub.AddHost(pb.AddHostRequest(id="h2"), timeout=T).revision
    assert controller.store is not None
    controller.store.etcd.compact(latest)
    for after, text in ((old, "compacted"), (latest + 1000, "ahead of the store")):
        with pytest.raises(grpc.RpcError) as caught:
            next(stub.WatchConfig(pb.WatchConfigRequest(after_revision=after), timeout=T))
        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert text in caught.value.details()


def test_streams_beyond_the_budget_are_refused_and_unary_calls_still_served(
        stub: Stub) -> None:
    open_calls = [stub.WatchConfig(pb.WatchConfigRequest()) for _ in range(2)]  # per client: 2
    try:
        for call in open_calls:
            assert next(call).snapshot
        third = stub.WatchConfig(pb.WatchConfigRequest(), timeout=T)
        with pytest.raises(grpc.RpcError) as caught:
            next(third)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-watch-streams" in caught.value.details()
        assert stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T).revision > 0
    finally:
        for call in open_calls:
            call.cancel()
    deadline = time.monotonic() + T
    while True:  # the slots come back once the server has seen the cancels
        fresh = stub.WatchConfig(pb.WatchConfigRequest(), timeout=T)
        try:
            assert next(fresh).snapshot
            fresh.cancel()
            break
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() < deadline, "stream slots never came back"
            time.sleep(0.05)


def test_etcd_gone_makes_calls_unavailable_and_health_not_serving(
        private_etcd: TestEtcd) -> None:
    from tests.controller.conftest import make_controller

    with make_controller(private_etcd) as running, grpc.insecure_channel(
            running.address) as channel:
        stub = Stub(channel)
        stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T)
        private_etcd.kill()
        with pytest.raises(grpc.RpcError) as caught:
            stub.AddHost(pb.AddHostRequest(id="h2"), timeout=T)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "etcd is unreachable" in caught.value.details()
        wait_for(lambda: not serving(running.address), "health NOT_SERVING")
        private_etcd.start()
        wait_for(lambda: serving(running.address), "health SERVING again")
        assert stub.AddHost(pb.AddHostRequest(id="h2"), timeout=T).revision > 0
        assert [h.id for h in stub.ListHosts(pb.ListHostsRequest(), timeout=T).hosts] == [
            "h1", "h2"]


def wait_for(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_watch_keeps_going_through_concurrent_writers(stub: Stub) -> None:
    stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T)
    call = stub.WatchConfig(pb.WatchConfigRequest(), timeout=30)
    next(call)
    revisions: list[int] = []

    def writer(offset: int) -> None:
        for index in range(20):
            revisions.append(stub.PutAlias(alias("h1", f"eth{offset}",
                                                 f"10.{offset}.0.{index + 1}/24"),
                                           timeout=T).revision)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(T * 3)
    seen: list[int] = []
    while len(seen) < len(revisions):
        seen.extend(c.revision for c in next(call).changes)
    call.cancel()
    assert seen == sorted(revisions)

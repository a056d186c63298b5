"""The audit trail: every accepted write recorded with its author and what it replaced, in
the write's own transaction; read, watched, bounded. A real etcd (never a mock)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from controller.audit import AuditTrail, HistoryPruner, HistoryWatcher
from controller.etcd import Backoff, Txn
from controller.store import HistoryRecord, Keys, Mode, Store, decode, encode
from controller.store.spec import AliasSpec
from controller.validate import alias as alias_spec
from serving.auth import Grant, Identity, Role, Transport, acting_as
from tests.controller.test_security import secure_controller, stub_for
from tests.etcd import TcpProxy, TestEtcd
from tests.security import TestPki, make_test_pki
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import types_pb2 as tpb

TIMEOUT = 10
ALICE = Identity("spiffe://vrc/admin/alice", Transport.TLS)
ADMIN = Grant(Role.ADMIN, "certificate")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def audited_store(etcd: TestEtcd, clock: Any = time.time) -> Store:
    root = f"/t{uuid.uuid4().hex[:12]}/v1/"
    return Store(etcd.client(), root=root, hooks=[AuditTrail(Keys(root), "r1", clock=clock)])


def trail(store: Store) -> list[tuple[int, HistoryRecord]]:
    result = store.etcd.get_prefix(store.keys.history())
    entries = [(kv.mod_revision, decode(HistoryRecord, kv.key, kv.value)) for kv in result.kvs]
    return sorted(entries, key=lambda item: item[0])


def spec(host: str, address: str) -> AliasSpec:
    return alias_spec(host, "eth1", address, "", "")


def test_every_write_is_recorded_with_its_author_its_revision_and_what_it_replaced(
        etcd: TestEtcd) -> None:
    store = audited_store(etcd)
    with acting_as(ALICE, ADMIN):
        revisions = [store.add_host("h1"),
                     store.put_alias(spec("h1", "10.0.0.1/24")),
                     store.put_alias(spec("h1", "10.0.0.1/16")),
                     store.put_claim("10.9.0.0/16", "h1", "eth1"),
                     store.set_policy(Mode.REFUSE),
                     store.delete_claims("10.9.0.0/16"),
                     store.delete_alias("h1", "eth1", 0x0A000001, 16),
                     store.put_access("spiffe://vrc/reader/bob", "reader", granted_by="alice"),
                     store.remove_host("h1")]
    entries = trail(store)
    assert [revision for revision, _ in entries] == revisions  # one record per write, same rev
    assert {record.identity for _, record in entries} == {ALICE.name}
    assert [record.operation for _, record in entries] == [
        "add_host", "put_alias", "put_alias", "put_claim", "set_policy", "delete_claims",
        "delete_alias", "grant_access", "remove_host"]
    replaced = entries[2][1]
    (change,) = replaced.changes
    assert change.key == "aliases/h1/10.0.0.1"
    assert change.previous["address"] == "10.0.0.1/24"
    assert change.value["address"] == "10.0.0.1/16"
    deleted = entries[6][1]
    assert [c.key for c in deleted.changes] == ["aliases/h1/10.0.0.1"]
    assert deleted.changes[0].previous["address"] == "10.0.0.1/16"
    assert deleted.changes[0].value is None
    assert all(not c.key.startswith("guards/") for _, r in entries for c in r.changes)
    assert entries[0][1].hosts == ("h1",) and entries[7][1].hosts == ()
    assert all(record.replica == "r1" for _, record in entries)


def test_a_cascade_records_every_record_it_deleted(etcd: TestEtcd) -> None:
    store = audited_store(etcd)
    with acting_as(ALICE, ADMIN):
        store.add_host("h2")
        for index in range(3):
            store.put_alias(spec("h2", f"10.1.{index}.1/24"))
        store.remove_host("h2", cascade=True)
    record = trail(store)[-1][1]
    deleted = {c.key: c.previous for c in record.changes if c.value is None}
    assert {f"aliases/h2/10.1.{i}.1" for i in range(3)} <= set(deleted)
    assert deleted["hosts/h2"]["id"] == "h2"


def test_a_refused_or_unchanged_write_leaves_no_record(etcd: TestEtcd) -> None:
    store = audited_store(etcd)
    with acting_as(ALICE, ADMIN):
        store.add_host("h3")
        with pytest.raises(Exception, match="already exists"):
            store.add_host("h3")
        store.put_alias(spec("h3", "10.2.0.1/24"))
        store.put_alias(spec("h3", "10.2.0.1/24"))  # the same: nothing written
    assert [r.operation for _, r in trail(store)] == ["add_host", "put_alias"]


def test_a_write_whose_record_cannot_commit_does_not_commit_either(etcd: TestEtcd) -> None:
    """The record is in the write's transaction: a write too large with it fails whole."""
    store = audited_store(etcd)

    def bloat(txn: Txn, context: object) -> None:
        txn.put(store.keys.history() + "bloat", b"x" * (2 * 1024 * 1024))

    store.hooks.append(bloat)
    with pytest.raises(Exception, match="request limit"):
        store.add_host("h4")
    assert store.etcd.get(store.keys.host("h4"))[0] is None
    assert trail(store) == []


def test_history_lives_beside_the_root_and_configuration_snapshots_never_see_it(
        etcd: TestEtcd) -> None:
    store = audited_store(etcd)
    with acting_as(ALICE, ADMIN):
        store.add_host("h5")
    assert not store.keys.history().startswith(store.keys.root)
    assert [kv.key for kv in store.etcd.get_prefix(store.keys.root).kvs] == [
        store.keys.host("h5")]


# --- reading: by host, since, newest first ----------------------------------------------


def test_listing_filters_by_host_and_time_and_keeps_the_newest(etcd: TestEtcd) -> None:
    now = [1_000_000.0]
    store = audited_store(etcd, clock=lambda: now[0])
    with acting_as(ALICE, ADMIN):
        for host in ("a", "b"):
            store.add_host(host)
            now[0] += 10
        for index in range(6):
            store.put_alias(spec("a" if index % 2 == 0 else "b", f"10.3.{index}.1/24"))
            now[0] += 10
    everything = store.list_history(limit=100).items
    assert len(everything) == 8
    assert [s.mod_revision for s in everything] == sorted(s.mod_revision for s in everything)
    only_a = store.list_history(host="a").items
    assert only_a[0].record.subject == "host a"
    assert all("a" in s.record.hosts for s in only_a) and len(only_a) == 4
    recent = store.list_history(since=1_000_050.0).items
    assert [s.record.at for s in recent] == [1_000_050.0, 1_000_060.0, 1_000_070.0]
    newest = store.list_history(limit=2).items
    assert [s.record.at for s in newest] == [1_000_060.0, 1_000_070.0]
    assert len(store.list_history(host="a", limit=1).items) == 1


# --- pruning -------------------------------------------------------------------------------


def fill(store: Store, count: int, start: float = 1_000_000.0) -> None:
    """``count`` records at one a second from ``start`` (direct puts: only the trail)."""
    keys = store.keys
    for index in range(count):
        at = start + index
        record = HistoryRecord(at=at, identity="t", operation="op", subject=str(index))
        store.etcd.txn(Txn().put(keys.history_at(int(at * 1e9), f"{index:08x}"),
                                 encode(record)))


def subjects(store: Store) -> list[str]:
    return [r.subject for _, r in trail(store)]


def test_pruning_by_count_keeps_the_newest(etcd: TestEtcd) -> None:
    store = audited_store(etcd)
    fill(store, 30)
    pruned = store.prune_history(now=2_000_000.0, max_records=10)
    assert (pruned.by_count, pruned.by_age) == (20, 0)
    assert subjects(store) == [str(i) for i in range(20, 30)]
    assert store.prune_history(now=2_000_000.0, max_records=10).total == 0


def test_pruning_by_age_drops_what_is_older(etcd: TestEtcd) -> None:
    store = audited_store(etcd)
    fill(store, 30)
    pruned = store.prune_history(now=1_000_029.0, max_age=9.5)  # keep 20..29
    assert pruned.by_age == 20
    assert subjects(store) == [str(i) for i in range(20, 30)]


def test_pruning_in_batches_deletes_everything_asked(etcd: TestEtcd,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import controller.store.history as history

    monkeypatch.setattr(history, "PRUNE_BATCH", 7)
    store = audited_store(etcd)
    fill(store, 40)
    assert store.prune_history(now=0.0, max_records=5).by_count == 35
    assert subjects(store) == [str(i) for i in range(35, 40)]


def test_pruning_while_writers_write_never_loses_a_record_it_should_keep(
        etcd: TestEtcd) -> None:
    """Writers commit audited writes while a pruner keeps the trail at 25 records: after a
    last round, 25 records are left, the newest by the writers' clocks (within the writers
    in flight of the newest by revision), and nothing older than what was pruned came back."""
    store = audited_store(etcd)
    keep = 25
    committed: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(name: str) -> None:
        with acting_as(Identity(f"spiffe://vrc/admin/{name}", Transport.TLS), ADMIN):
            for index in range(40):
                revision = store.add_host(f"{name}-{index}")
                with lock:
                    committed.append(revision)

    def pruner() -> None:
        while not stop.is_set():
            store.prune_history(now=time.time(), max_records=keep)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("w1", "w2", "w3")]
    prune = threading.Thread(target=pruner)
    prune.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stop.set()
    prune.join(60)
    store.prune_history(now=time.time(), max_records=keep)
    present = [revision for revision, _ in trail(store)]
    newest = sorted(committed)
    assert len(present) == keep and set(present) <= set(committed)
    # Records sort by their writer's clock, read before the commit: with 3 writers one
    # record can sort behind at most the 2 others in flight with it, so the count bound
    # keeps the newest 25 by that order: at most 2 places from the newest by revision.
    writers = len(threads)
    assert min(present) >= newest[-keep - (writers - 1)]
    assert set(newest[-keep + writers - 1:]) <= set(present)


def test_the_pruner_thread_prunes_at_start_and_stops(etcd: TestEtcd) -> None:
    store = audited_store(etcd)
    fill(store, 12)
    pruner = HistoryPruner(store, max_age=None, max_records=4, interval=3600)
    pruner.start()
    deadline = time.monotonic() + 10
    while pruner.pruned < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    pruner.stop()
    assert subjects(store) == ["8", "9", "10", "11"]


# --- through the API: ListHistory, WatchHistory, the author seen by the controller ---------


@contextlib.contextmanager
def running(etcd: TestEtcd, certs: TestPki) -> Iterator[Any]:
    with secure_controller(etcd, certs) as controller:
        yield controller


def test_the_api_records_the_callers_identity(etcd: TestEtcd, certs: TestPki) -> None:
    with running(etcd, certs) as controller, stub_for(controller, certs.tls("admin")) as admin, \
            stub_for(controller, None) as local:
        admin.AddHost(pb.AddHostRequest(id="h1"), timeout=TIMEOUT)
        local.PutAlias(pb.PutAliasRequest(alias=pb.Alias(host="h1", ifname="eth1",
                                                         address="10.0.0.1/24")),
                       timeout=TIMEOUT)
        admin.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=tpb.POLICY_REFUSE),
                        timeout=TIMEOUT)
        entries = admin.ListHistory(pb.ListHistoryRequest(), timeout=TIMEOUT).entries
        assert [(e.identity, e.operation) for e in entries] == [
            ("spiffe://vrc/admin/admin", "add_host"), ("local", "put_alias"),
            ("spiffe://vrc/admin/admin", "set_policy")]
        assert json.loads(entries[1].changes[0].value)["address"] == "10.0.0.1/24"
        assert entries[1].changes[0].previous == ""
        assert [e.hosts for e in entries[:2]] == [["h1"], ["h1"]]
        with stub_for(controller, certs.tls("reader")) as reader:  # readers may audit
            assert len(reader.ListHistory(pb.ListHistoryRequest(host="h1"),
                                          timeout=TIMEOUT).entries) == 2


def test_watch_history_sends_what_exists_since_then_what_is_written(
        etcd: TestEtcd, certs: TestPki) -> None:
    with running(etcd, certs) as controller, stub_for(controller, None) as local:
        local.AddHost(pb.AddHostRequest(id="w1"), timeout=TIMEOUT)
        local.AddHost(pb.AddHostRequest(id="w2"), timeout=TIMEOUT)
        stream = local.WatchHistory(pb.WatchHistoryRequest(since=1.0, host="w2"), timeout=60)
        first = next(stream)
        assert first.snapshot and [e.subject for e in first.entries] == ["host w2"]
        local.AddHost(pb.AddHostRequest(id="w3"), timeout=TIMEOUT)  # not about w2
        local.PutAlias(pb.PutAliasRequest(alias=pb.Alias(host="w2", ifname="eth1",
                                                         address="10.4.0.1/24")),
                       timeout=TIMEOUT)
        batch = next(stream)
        assert [e.operation for e in batch.entries] == ["put_alias"]
        assert not batch.snapshot
        stream.cancel()
        after = local.WatchHistory(pb.WatchHistoryRequest(after_revision=first.revision),
                                   timeout=60)
        assert next(after).entries == []
        got = [e.subject for e in next(after).entries]
        while len(got) < 2:
            got += [e.subject for e in next(after).entries]
        assert got == ["host w3", "alias 10.4.0.1/24 on w2/eth1"]
        after.cancel()


def test_the_history_watcher_survives_a_compaction_with_nothing_lost_or_repeated(
        private_etcd: TestEtcd) -> None:
    """Cut off by a proxy while records are written and etcd compacts, the watcher re-lists
    the trail and passes on exactly the records it had not delivered."""
    root = f"/t{uuid.uuid4().hex[:12]}/v1/"
    store = Store(private_etcd.client(), root=root, hooks=[AuditTrail(Keys(root), "r1")])
    proxy = TcpProxy(private_etcd.endpoint)
    watcher = HistoryWatcher(private_etcd.client(proxy.endpoint), store.keys, store.revision())
    watcher.backoff = Backoff(0.01, 0.05)
    delivered: list[str] = []
    seen = threading.Condition()

    def follow() -> None:
        for batch in watcher:
            with seen:
                delivered.extend(decode(HistoryRecord, key, value).subject
                                 for key, value, _ in watcher.new_entries(batch))
                seen.notify_all()

    def wait_for(count: int) -> None:
        with seen:
            assert seen.wait_for(lambda: len(delivered) >= count, 30), delivered

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        with acting_as(ALICE, ADMIN):
            store.add_host("c1")
            wait_for(1)
            proxy.cut()
            for index in range(2, 5):
                store.add_host(f"c{index}")
            private_etcd.client().compact(store.revision())
            proxy.restore()
            wait_for(4)
            store.add_host("c5")
            wait_for(5)
    finally:
        watcher.close()
        thread.join(30)
        proxy.close()
    assert delivered == [f"host c{i}" for i in range(1, 6)]
    assert watcher.stats.resyncs == 1
    assert len(watcher.known) == 0  # it keeps nothing it delivered


@pytest.mark.parametrize(("request_", "field"), [
    (pb.ListHistoryRequest(host="bad host"), "host"),
    (pb.ListHistoryRequest(since=-1.0), "since"),
    (pb.ListHistoryRequest(since=float("nan")), "since"),
    (pb.ListHistoryRequest(limit=10_001), "limit"),
])
def test_bad_history_requests_name_the_field(etcd: TestEtcd, certs: TestPki,
                                             request_: Any, field: str) -> None:
    with running(etcd, certs) as controller, stub_for(controller, None) as local, \
            pytest.raises(grpc.RpcError) as info:
        local.ListHistory(request_, timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata())["vrc-field"] == field

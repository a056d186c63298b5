"""Registrations in batches (controller/sync/registrar.py), on a real etcd.

The controller's etcd client is wrapped to count every request it sends (and,
for some tests, to hold them at a gate, lose a reply or refuse a kind of
transaction); etcd itself is real. Batching is made deterministic by
queueing registrations while the writer is held (not started, or blocked at
the gate in a request), never by timing.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from pyetcd import etcdrpc

from controller.audit import AuditTrail
from controller.etcd import EtcdClient, EtcdConfig, EtcdUnavailable, Txn, TxnResult
from controller.store import HostRecord, Keys, LiveRecord, Nic, Store, Unavailable, decode
from controller.sync.liveness import Liveness
from controller.sync.registrar import MAX_BATCH, Registration
from tests.controller.sync_support import RawAgent, host_up, sync_controller, wait_for
from tests.etcd import TcpProxy, TestEtcd
from vrc.v1 import controller_pb2 as pb


class CountingEtcd(EtcdClient):
    """The controller's own client, counting requests; a closed ``gate`` holds them."""

    def __init__(self, config: EtcdConfig) -> None:
        super().__init__(config)
        self.requests = 0  # every request: grants, reads, transactions, revokes, keep-alives
        self.txns = 0
        self.waiting = 0  # requests held at the gate now
        self.gate = threading.Event()
        self.gate.set()
        self.lose_replies = 0  # transactions applied whose reply is then "lost"
        self.refuse_nested = False  # refuse transactions with nested ones (the releases)
        self.before_txn: Callable[[], None] | None = None  # once, before the next one
        self._lock = threading.Lock()

    def call(self, request: Callable[[Any], Any], *, wait: float | None = None) -> Any:
        with self._lock:
            self.waiting += 1
        self.gate.wait(30)
        with self._lock:
            self.waiting -= 1
            self.requests += 1
        return super().call(request, wait=wait)

    def txn(self, txn: Txn) -> TxnResult:
        if self.refuse_nested and any(op.WhichOneof("request") == "request_txn"
                                      for op in txn.request().success):
            raise EtcdUnavailable("etcd: refused by the test")
        hook, self.before_txn = self.before_txn, None
        if hook is not None:
            hook()
        self.txns += 1
        result = super().txn(txn)
        if self.lose_replies:
            self.lose_replies -= 1
            raise EtcdUnavailable("etcd: DEADLINE_EXCEEDED: the reply was lost (the test)")
        return result


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def liveness_on(etcd: TestEtcd, *, endpoint: Any = None, audited: bool = False,
                started: bool = True) -> Iterator[tuple[Liveness, CountingEtcd, Store]]:
    """A Liveness on a counting client under a root of its own (its keeper rounds are
    the test's: :meth:`Liveness.keep_alive_round`), and a store on the same root (a
    client of its own) to look with."""
    client = CountingEtcd(EtcdConfig((endpoint or etcd.endpoint,)))
    root = f"/t{uuid.uuid4().hex[:12]}/v1/"
    keys = Keys(root)
    hooks = [AuditTrail(keys, "r1")] if audited else []
    live = Liveness(client, keys, ttl=5, replica="r1", hooks=hooks)
    live.registrar.clock = Clock()
    if started:
        live.registrar.start()
    try:
        yield live, client, Store(etcd.client(), root=root)
    finally:
        client.gate.set()
        live.registrar.stop()
        client.close()


def report(host: str) -> HostRecord:
    return HostRecord(host, (Nic("eth1", "02:00:00:00:00:01", 1500),), f"raw:{host}", "t")


def register_all(live: Liveness, hosts: Sequence[str]) -> tuple[list[threading.Thread],
                                                               dict[str, Any]]:
    """Register each host from a thread of its own (as Sync streams do); host ->
    its Registration or the error."""
    outcome: dict[str, Any] = {}

    def one(host: str) -> None:
        try:
            outcome[host] = live.register(host, f"raw:{host}", report(host))
        except Exception as error:  # the test looks at it
            outcome[host] = error

    threads = [threading.Thread(target=one, args=(h,), daemon=True) for h in hosts]
    for thread in threads:
        thread.start()
    return threads, outcome


def joined(threads: Sequence[threading.Thread]) -> None:
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)


def live_keys(store: Store) -> dict[str, int]:
    """host -> the lease its live key is on."""
    found = store.etcd.get_prefix(store.keys.lives()).kvs
    return {decode(LiveRecord, kv.key, kv.value).host: kv.lease for kv in found}


def lease_ttl(store: Store, lease: int) -> int:
    """The TTL etcd has left for ``lease`` (-1: it does not know it: revoked or lapsed)."""
    return int(store.etcd.call(lambda c: etcdrpc.LeaseStub(c.channel).LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=lease), timeout=10, metadata=c.metadata)).TTL)


def queue_while_held(live: Liveness, hosts: Sequence[str]) -> tuple[list[threading.Thread],
                                                                   dict[str, Any]]:
    """Queue registrations of ``hosts`` while the writer is not started, then start it."""
    threads, outcome = register_all(live, hosts)
    wait_for(lambda: live.registrar.queued() == len(hosts), f"{len(hosts)} queued")
    live.registrar.start()
    joined(threads)
    return threads, outcome


def redial(live: Liveness, host: str, attempts: int = 50) -> Registration:
    """Register as an agent redials: again after UNAVAILABLE (the client fails fast for
    a moment after etcd was away), a bounded number of times."""
    for _ in range(attempts - 1):
        try:
            return live.register(host, f"raw:{host}", report(host))
        except Unavailable:
            threading.Event().wait(0.1)
    return live.register(host, f"raw:{host}", report(host))


# --- a burst -----------------------------------------------------------------------------


def test_a_burst_of_registrations_arriving_during_a_write_is_written_in_few_transactions(
        etcd: TestEtcd) -> None:
    total = 121
    with liveness_on(etcd, audited=True) as (live, client, store):
        client.gate.clear()  # the first registration's grant waits at the gate...
        first, outcome = register_all(live, ["h000"])
        wait_for(lambda: client.waiting == 1, "the first registration's write in flight")
        hosts = [f"h{i:03d}" for i in range(1, total)]
        rest, more = register_all(live, hosts)  # ...while the other 120 arrive
        wait_for(lambda: live.registrar.queued() == total - 1, "120 queued behind it")
        before = client.requests
        client.gate.set()
        joined(first + rest)
        outcome.update(more)

        assert all(isinstance(r, Registration) for r in outcome.values()), outcome
        batches = 1 + -(-(total - 1) // MAX_BATCH)  # the first alone, then full batches
        assert live.registrar.stats.batches == batches == 4
        assert client.txns == batches  # one transaction each: hosts, audit, live keys
        # each batch: one lease grant, one read of its host records, one transaction
        assert client.requests - before == 3 * batches < total / 10
        leased = live_keys(store)
        assert set(leased) == {f"h{i:03d}" for i in range(total)}
        assert len(set(leased.values())) == batches  # one lease a batch
        assert all(r.lease == leased[h] for h, r in outcome.items())
        assert store.get_host("h077").record == report("h077")
        audited = [s.record for s in store.list_history(limit=1000).items]
        assert sorted(r.subject for r in audited if r.operation == "report_host") == [
            f"host h{i:03d}" for i in range(total)]


def test_every_registration_of_a_burst_is_released_when_its_stream_closes(
        etcd: TestEtcd) -> None:
    total = 100
    with liveness_on(etcd, started=False) as (live, client, store):
        _, outcome = queue_while_held(live, [f"h{i:03d}" for i in range(total)])
        registrations = list(outcome.values())
        leases = {r.lease for r in registrations}
        assert len(leases) == 3 and len(live_keys(store)) == total

        client.gate.clear()  # the first release's delete waits at the gate...
        live.release(registrations[0])
        wait_for(lambda: client.waiting == 1, "the first release in flight")
        for registration in registrations[1:]:  # ...while the other 99 streams end
            live.release(registration)
        before = client.requests
        client.gate.set()
        wait_for(lambda: not live_keys(store), "every live key gone")

        assert all(lease_ttl(store, lease) == -1 for lease in leases)  # all revoked
        wait_for(lambda: client.requests - before == 4, "the writer done")
        # the first key alone (its lease still carried others), then each lease revoked
        assert live.registrar.stats.releases == total
        assert live.registrar.held() == {}


# --- one lease for several hosts -----------------------------------------------------------


def test_a_shared_lease_outlives_each_stream_but_the_last(etcd: TestEtcd) -> None:
    with liveness_on(etcd, started=False) as (live, _client, store):
        _, outcome = queue_while_held(live, ["a", "b"])
        a, b = outcome["a"], outcome["b"]
        assert a.lease == b.lease != 0
        live.release(a)
        wait_for(lambda: "a" not in live_keys(store), "a down")
        assert live_keys(store) == {"b": b.lease}
        assert lease_ttl(store, b.lease) > 0  # b's lease is not revoked under it
        live.release(b)
        wait_for(lambda: not live_keys(store), "b down")
        assert lease_ttl(store, b.lease) == -1


def test_a_redial_while_the_old_stream_is_open_keeps_the_host_live_when_the_old_one_ends(
        etcd: TestEtcd) -> None:
    with liveness_on(etcd) as (live, _client, store):
        old = live.register("h1", "raw:h1", report("h1"))
        new = live.register("h1", "raw:h1", report("h1"))
        assert new.revision > old.revision
        live.release(old)
        wait_for(lambda: old.lease not in live.registrar.held(), "the old one released")
        assert live_keys(store) == {"h1": new.lease}
        live.release(new)
        wait_for(lambda: not live_keys(store), "h1 down")


def test_a_host_twice_in_one_burst_ends_on_the_newer_registration(etcd: TestEtcd) -> None:
    with liveness_on(etcd, started=False) as (live, _client, store):
        first, outcome = register_all(live, ["h1"])
        wait_for(lambda: live.registrar.queued() == 1, "the first queued")
        second, again = register_all(live, ["h1"])
        wait_for(lambda: live.registrar.queued() == 2, "both queued")
        live.registrar.start()
        joined(first + second)
        older, newer = outcome["h1"], again["h1"]
        assert older.lease != newer.lease and newer.revision > older.revision
        assert live_keys(store) == {"h1": newer.lease}
        live.release(older)
        wait_for(lambda: older.lease not in live.registrar.held(), "the older released")
        assert live_keys(store) == {"h1": newer.lease}


# --- etcd hiccups --------------------------------------------------------------------------


def test_a_registration_while_etcd_is_unreachable_is_refused_and_nothing_stays(
        private_etcd: TestEtcd) -> None:
    proxy = TcpProxy(private_etcd.endpoint)
    try:
        with liveness_on(private_etcd, endpoint=proxy.endpoint) as (live, _client, store):
            assert live.register("h0", "raw:h0", report("h0")).lease
            proxy.cut()
            with pytest.raises(Unavailable, match="etcd is unreachable, retry"):
                live.register("h1", "raw:h1", report("h1"))
            assert live.registrar.stats.failed == 1
            proxy.restore()
            assert set(live_keys(store)) == {"h0"}
            assert {h.record.id for h in store.list_hosts().items} == {"h0"}
            again = redial(live, "h1")
            assert live_keys(store)["h1"] == again.lease
    finally:
        proxy.close()


def test_a_batch_whose_reply_is_lost_takes_its_lease_and_keys_down(etcd: TestEtcd) -> None:
    with liveness_on(etcd, started=False) as (live, client, store):
        client.lose_replies = 1  # the transaction applies; its answer never comes back
        _, outcome = queue_while_held(live, ["a", "b", "c"])
        assert all(isinstance(e, Unavailable) for e in outcome.values()), outcome
        assert live_keys(store) == {}  # the batch's own lease went, and its keys with it
        assert live.registrar.held() == {}
        # what did apply is whole: the host records (with their audit), never a live key
        assert {h.record.id for h in store.list_hosts().items} == {"a", "b", "c"}
        again = live.register("a", "raw:a", report("a"))
        assert live_keys(store) == {"a": again.lease}


def test_a_host_record_changed_under_a_batch_is_read_again_and_the_batch_retried(
        etcd: TestEtcd) -> None:
    with liveness_on(etcd, started=False) as (live, client, store):
        client.before_txn = lambda: store.add_host("b")  # an API write wins the race
        _, outcome = queue_while_held(live, ["a", "b"])
        assert all(isinstance(r, Registration) for r in outcome.values()), outcome
        assert live.registrar.stats.lost_races == 1
        assert store.get_host("b").record == report("b")  # the report replanned on it
        assert set(live_keys(store)) == {"a", "b"}


def test_a_release_etcd_keeps_refusing_gives_up_the_lease_not_the_other_hosts(
        etcd: TestEtcd) -> None:
    with liveness_on(etcd, started=False) as (live, client, store):
        _, outcome = queue_while_held(live, ["a", "b"])
        a, b = outcome["a"], outcome["b"]
        shared = a.lease
        client.refuse_nested = True  # deleting a's key alone fails, again and again
        live.release(a)
        wait_for(lambda: shared in live.registrar.failing(longer_than=-1), "a's release failing")
        live.keep_alive_round()
        assert shared in live.registrar.held()  # one failure: the lease is still kept
        live.registrar.clock.now += live.interval + 1  # type: ignore[attr-defined]
        live.keep_alive_round()  # failing for a round: b moves, the lease is given up
        wait_for(lambda: b.lease != shared, "b on a new lease")
        wait_for(lambda: "a" not in live_keys(store), "a down with its lease")
        assert live_keys(store) == {"b": b.lease}
        assert lease_ttl(store, shared) == -1
        assert live.regrants == 1


def test_a_lapsed_shared_lease_is_replaced_for_every_host_on_it(etcd: TestEtcd) -> None:
    with liveness_on(etcd, started=False) as (live, _client, store):
        _, outcome = queue_while_held(live, ["a", "b", "c"])
        lost = outcome["a"].lease
        store.etcd.call(lambda c: etcdrpc.LeaseStub(c.channel).LeaseRevoke(
            etcdrpc.LeaseRevokeRequest(ID=lost), timeout=10, metadata=c.metadata))
        assert live_keys(store) == {}  # as if it had lapsed while etcd was away
        live.keep_alive_round()
        wait_for(lambda: set(live_keys(store)) == {"a", "b", "c"}, "all three back")
        assert live.regrants == 3
        assert len({r.lease for r in outcome.values()} | {lost}) == 2
        assert live.registrar.stats.batches == 2  # put again together


# --- through the Sync service --------------------------------------------------------------


def test_agents_connecting_at_once_all_show_up_and_all_go_down_when_they_leave(
        etcd: TestEtcd) -> None:
    total = 60
    with sync_controller(etcd, lease_ttl=5, metrics="127.0.0.1:0") as ctl:
        stub = ctl.stub()
        agents = [RawAgent(ctl.target, f"s{i:02d}") for i in range(total)]
        try:
            for agent in agents:
                agent.wait_version(1)
            hosts = stub.ListHosts(pb.ListHostsRequest(), timeout=10).hosts
            assert sorted(h.id for h in hosts if h.up) == [a.host for a in agents]
        finally:
            for agent in agents:
                agent.close()
        wait_for(lambda: not any(host_up(stub, a.host) for a in agents), "every host down")
        store = ctl.controller.store
        assert store is not None
        assert live_keys(store) == {}
        sync = ctl.controller.sync
        assert sync is not None
        stats = sync.liveness.registrar.stats
        assert stats.registered == total and stats.failed == 0
        assert stats.batches <= total
        assert ctl.controller.metrics is not None
        text = urllib.request.urlopen(f"http://{ctl.controller.metrics.address}/metrics",
                                      timeout=10).read().decode()
        assert f"vrc_controller_sync_registrations_total {total}.0" in text
        assert f"vrc_controller_sync_registration_batches_total {stats.batches}.0" in text
        assert "vrc_controller_sync_registrations_refused_total 0.0" in text

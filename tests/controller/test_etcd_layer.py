"""controller/etcd against a real etcd: health waits, client rebuilds, transactions, watches.

The compaction test cuts the watcher off etcd with a proxy, changes keys and
compacts while it is away, and checks that what the watcher then delivers
turns its old view into exactly etcd's state: nothing lost, nothing invented.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import grpc
import pytest
from pyetcd import etcdrpc

from controller.etcd import (
    Backoff,
    Batch,
    ChangeKind,
    Endpoint,
    EtcdClient,
    EtcdCompacted,
    EtcdConfig,
    EtcdRequestTooLarge,
    EtcdUnavailable,
    Txn,
    Watcher,
    parse_endpoints,
    prefix_end,
    snapshot,
)
from controller.etcd.embedded import free_port
from tests.etcd import TcpProxy, TestEtcd

WAIT = 30.0  # bound on any wait for an outcome; never what a test asserts


def dead_endpoint() -> Endpoint:
    return Endpoint("127.0.0.1", free_port())  # nothing listens there


class Collector:
    """Runs a watcher on a thread and keeps every batch; waits for a revision."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.batches: list[Batch] = []
        self._cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for batch in self.watcher:
            with self._cond:
                self.batches.append(batch)
                self._cond.notify_all()

    def wait_for(self, revision: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.watcher.revision >= revision, WAIT):
                raise AssertionError(f"watcher stuck at {self.watcher.revision} < {revision}")

    def stop(self) -> None:
        self.watcher.close()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "watcher did not stop after close()"


def apply(view: dict[str, bytes], batches: list[Batch]) -> dict[str, bytes]:
    state = dict(view)
    for batch in batches:
        for change in batch.changes:
            if change.kind is ChangeKind.PUT:
                state[change.key] = change.value
            else:
                assert change.key in state, f"DELETE of {change.key}, which never existed"
                del state[change.key]
    return state


def etcd_state(client: EtcdClient, prefix: str) -> dict[str, bytes]:
    return {kv.key: kv.value for kv in client.get_prefix(prefix).kvs}


def put(client: EtcdClient, key: str, value: bytes) -> int:
    return client.txn(Txn().put(key, value)).revision


def delete(client: EtcdClient, key: str) -> int:
    return client.txn(Txn().delete(key)).revision


# --- configuration -----------------------------------------------------------------------


def test_endpoints_parse_urls_and_bare_host_ports() -> None:
    assert parse_endpoints("http://127.0.0.1:2379,https://etcd.example:2380,[::1]:7") == (
        Endpoint("127.0.0.1", 2379), Endpoint("etcd.example", 2380, secure=True),
        Endpoint("::1", 7))


@pytest.mark.parametrize("bad", ["", "http://h", "ftp://h:1", "h:²", "h:0", "http://h:1/x",
                                 "a:1,,b:2"])
def test_bad_endpoint_is_value_error_naming_the_flag(bad: str) -> None:
    with pytest.raises(ValueError, match="--etcd"):
        parse_endpoints(bad)


def test_prefix_end_covers_exactly_the_prefix() -> None:
    assert prefix_end("/a/") == b"/a0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff") == b"\0"


# --- health and rebuild -------------------------------------------------------------------


def test_health_wait_returns_the_first_healthy_endpoint(etcd: TestEtcd) -> None:
    client = EtcdClient(EtcdConfig((dead_endpoint(), etcd.endpoint)))
    try:
        assert client.wait_healthy(timeout=WAIT) == etcd.endpoint
    finally:
        client.close()


def test_health_wait_gives_up_naming_the_endpoint() -> None:
    endpoint = dead_endpoint()
    client = EtcdClient(EtcdConfig((endpoint,)))
    sleeps: list[float] = []
    try:
        with pytest.raises(EtcdUnavailable, match=f"127.0.0.1:{endpoint.port}"):
            client.wait_healthy(timeout=0.5, sleep=sleeps.append)
    finally:
        client.close()
    assert sleeps, "gave up without backing off once"
    assert all(0 < delay <= 2.0 for delay in sleeps)


def test_no_request_is_sent_before_etcd_is_healthy() -> None:
    client = EtcdClient(EtcdConfig((dead_endpoint(),), timeout=1.0))
    try:
        with pytest.raises(EtcdUnavailable):
            client.get("/x")
        assert client.rebuilds == 0, "a client was built on an unhealthy endpoint"
    finally:
        client.close()


def test_client_is_rebuilt_after_etcd_restarts(private_etcd: TestEtcd) -> None:
    client = private_etcd.client(connect_timeout=WAIT)
    put(client, "/r/a", b"1")
    assert client.rebuilds == 1
    private_etcd.kill()
    with pytest.raises(EtcdUnavailable):
        client.get("/r/a")
    assert client.endpoint is None, "a failed client was kept"
    private_etcd.start()
    kv, _revision = client.get("/r/a")  # the next request builds a new client
    assert kv is not None and kv.value == b"1"
    assert client.rebuilds == 2


class DeadlineExceeded(grpc.RpcError):
    """What grpc raises for a request that ran out of time (a loaded etcd)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "Deadline Exceeded"


def test_one_request_timing_out_does_not_fail_the_others_running_beside_it(
        etcd: TestEtcd) -> None:
    client = etcd.client()
    put(client, "/drop/k", b"1")
    holding = threading.Event()
    go_on = threading.Event()
    outcome: list[object] = []

    def slow(pyetcd: object) -> object:  # a request in flight on the current channel
        holding.set()
        go_on.wait(WAIT)
        return pyetcd.kvstub.Range(etcdrpc.RangeRequest(key=b"/drop/k"),  # type: ignore[attr-defined]
                                   timeout=10)

    def run() -> None:
        try:
            outcome.append(client.call(slow))
        except Exception as error:  # the outcome is what the test checks
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    assert holding.wait(WAIT)

    def times_out(_pyetcd: object) -> object:
        raise DeadlineExceeded()

    with pytest.raises(EtcdUnavailable):
        client.call(times_out)  # drops the client the slow request is on
    assert client.endpoint is None
    go_on.set()
    thread.join(WAIT)
    [answer] = outcome
    assert not isinstance(answer, Exception), f"the request beside it failed: {answer!r}"
    assert answer.kvs[0].value == b"1"  # type: ignore[attr-defined]
    kv, _ = client.get("/drop/k")  # and the next request runs on a new client
    assert kv is not None and client.rebuilds == 2


def test_a_request_that_meets_a_closed_channel_is_sent_once_more_on_a_new_client(
        etcd: TestEtcd) -> None:
    client = etcd.client()
    put(client, "/drop/c", b"2")
    tries: list[object] = []

    def request(pyetcd: object) -> object:
        tries.append(pyetcd)
        if len(tries) == 1:
            pyetcd.close()  # type: ignore[attr-defined]  # closed under the request
        return pyetcd.kvstub.Range(etcdrpc.RangeRequest(key=b"/drop/c"),  # type: ignore[attr-defined]
                                   timeout=10)

    reply = client.call(request)
    assert reply.kvs[0].value == b"2"
    assert len(tries) == 2 and tries[0] is not tries[1]


# --- transactions ------------------------------------------------------------------------


def test_a_stale_revision_compare_fails_and_reads_the_current_value(etcd: TestEtcd) -> None:
    client = etcd.client()
    first = put(client, "/txn/k", b"1")
    second = put(client, "/txn/k", b"2")
    stale = client.txn(Txn().require_revision("/txn/k", first).put("/txn/k", b"3")
                       .read_on_failure("/txn/k"))
    assert not stale.succeeded
    assert stale.failure_reads[0][0].value == b"2"
    assert stale.failure_reads[0][0].mod_revision == second
    fresh = client.txn(Txn().require_revision("/txn/k", second).put("/txn/k", b"3"))
    assert fresh.succeeded and fresh.revision == second + 1


def test_require_absent_holds_only_while_the_key_is_missing(etcd: TestEtcd) -> None:
    client = etcd.client()
    assert client.txn(Txn().require_absent("/txn/new").put("/txn/new", b"x")).succeeded
    assert not client.txn(Txn().require_absent("/txn/new").put("/txn/new", b"y")).succeeded


def test_range_compare_sees_new_and_changed_keys_not_deletions(etcd: TestEtcd) -> None:
    client = etcd.client()
    put(client, "/rng/a", b"1")
    read_at = put(client, "/rng/b", b"1")
    delete(client, "/rng/a")
    assert client.txn(Txn().require_unchanged_since("/rng/", read_at)).succeeded
    put(client, "/rng/c", b"1")
    assert not client.txn(Txn().require_unchanged_since("/rng/", read_at)).succeeded


def test_a_transaction_over_etcd_limits_is_refused_before_it_is_sent(etcd: TestEtcd) -> None:
    client = etcd.client()
    before = client.revision()
    too_many = Txn()
    for index in range(129):
        too_many.put(f"/big/{index}", b"x")
    with pytest.raises(EtcdRequestTooLarge, match="128"):
        client.txn(too_many)
    with pytest.raises(EtcdRequestTooLarge, match="bytes"):
        client.txn(Txn().put("/big/one", b"x" * (1536 * 1024)))
    assert client.revision() == before


# --- watch -------------------------------------------------------------------------------


def test_watch_delivers_every_change_in_revision_order(etcd: TestEtcd) -> None:
    client = etcd.client()
    start = snapshot(client, "/w1/")
    collector = Collector(Watcher(client, "/w1/", start))
    try:
        revisions = [put(client, f"/w1/{i % 3}", str(i).encode()) for i in range(20)]
        revisions.append(delete(client, "/w1/0"))
        collector.wait_for(revisions[-1])
    finally:
        collector.stop()
    seen = [c.revision for b in collector.batches for c in b.changes]
    assert seen == revisions
    assert apply({}, collector.batches) == etcd_state(client, "/w1/")


def test_watch_from_a_compacted_revision_fails_at_once(private_etcd: TestEtcd) -> None:
    client = private_etcd.client()
    old = put(client, "/wc/a", b"1")
    latest = put(client, "/wc/a", b"2")
    client.compact(latest)
    with pytest.raises(EtcdCompacted):
        Watcher.after(client, "/wc/", old)


@pytest.fixture
def proxy(etcd: TestEtcd) -> Iterator[TcpProxy]:
    tcp = TcpProxy(etcd.endpoint)
    try:
        yield tcp
    finally:
        tcp.close()


def test_watch_resumes_after_a_cut_with_nothing_lost_or_repeated(
        etcd: TestEtcd, proxy: TcpProxy) -> None:
    direct = etcd.client()
    watcher = Watcher(etcd.client(proxy.endpoint), "/w2/", snapshot(direct, "/w2/"),
                      backoff=Backoff(0.01, 0.05))
    collector = Collector(watcher)
    try:
        collector.wait_for(put(direct, "/w2/before", b"1"))
        proxy.cut()
        during = [put(direct, f"/w2/during{i}", b"2") for i in range(5)]
        proxy.restore()
        collector.wait_for(during[-1])
    finally:
        collector.stop()
    seen = [c.revision for b in collector.batches for c in b.changes]
    assert seen == sorted(set(seen)), "a change was delivered twice or out of order"
    assert set(during) <= set(seen)
    assert watcher.stats.failures >= 1 and watcher.stats.resyncs == 0


def test_compaction_under_a_running_watcher_loses_and_invents_nothing(
        private_etcd: TestEtcd) -> None:
    direct = private_etcd.client()
    for name in ("keep", "change", "remove", "same"):
        put(direct, f"/wk/{name}", b"old")
    start = snapshot(direct, "/wk/")
    proxy = TcpProxy(private_etcd.endpoint)
    watcher = Watcher(private_etcd.client(proxy.endpoint), "/wk/", start,
                      backoff=Backoff(0.01, 0.05))
    collector = Collector(watcher)
    try:
        collector.wait_for(put(direct, "/wk/seen", b"1"))
        view = apply({kv.key: kv.value for kv in start.kvs.values()}, collector.batches)
        delivered = len(collector.batches)
        proxy.cut()
        put(direct, "/wk/change", b"new")
        delete(direct, "/wk/remove")
        put(direct, "/wk/same", b"old")  # rewritten with its own value: a real change
        put(direct, "/wk/brief", b"x")
        delete(direct, "/wk/brief")  # born and gone inside the gap: never seen
        put(direct, "/wk/added", b"a")
        compacted_at = put(direct, "/wk/last", b"z")
        direct.compact(compacted_at)
        proxy.restore()
        collector.wait_for(compacted_at)
        after_gap = collector.batches[delivered:]
        final = put(direct, "/wk/afterwards", b"ok")
        collector.wait_for(final)
    finally:
        collector.stop()
        proxy.close()
    assert watcher.stats.resyncs == 1
    resync = [b for b in after_gap if b.resync]
    assert len(resync) == 1 and resync[0].revision >= compacted_at
    changed = {(c.kind, c.key) for c in resync[0].changes}
    assert changed == {(ChangeKind.PUT, "/wk/change"), (ChangeKind.DELETE, "/wk/remove"),
                       (ChangeKind.PUT, "/wk/same"), (ChangeKind.PUT, "/wk/added"),
                       (ChangeKind.PUT, "/wk/last")}, "lost or invented a change"
    assert apply(view, collector.batches[delivered:]) == etcd_state(direct, "/wk/")
    # re-watched from the list's revision + 1, never from the compact revision
    assert watcher.stats.starts[-1] == resync[0].revision + 1
    assert all(start != compacted_at for start in watcher.stats.starts)


def test_a_watcher_that_cannot_reach_etcd_backs_off_instead_of_spinning(
        etcd: TestEtcd, proxy: TcpProxy) -> None:
    proxy.cut()
    attempts = 12
    client = etcd.client(proxy.endpoint)
    watcher: Watcher

    def sleep(delay: float) -> None:
        if len(watcher.stats.delays) >= attempts:
            watcher.close()

    watcher = Watcher(client, "/w3/", snapshot(etcd.client(), "/w3/"),
                      backoff=Backoff(0.1, 5.0), sleep=sleep)
    collector = Collector(watcher)
    collector.thread.join(WAIT)
    assert not collector.thread.is_alive()
    delays = watcher.stats.delays
    assert len(delays) == attempts == watcher.stats.failures
    bounds = [min(5.0, 0.1 * 2 ** i) for i in range(attempts)]
    assert all(bound / 2 <= delay <= bound for delay, bound in zip(delays, bounds, strict=True))
    assert bounds[-1] == 5.0


def test_close_ends_a_blocked_watcher(etcd: TestEtcd) -> None:
    client = etcd.client()
    collector = Collector(Watcher(client, "/w4/", snapshot(client, "/w4/")))
    collector.stop()  # asserts the thread ended


def test_embedded_etcd_keeps_its_data_across_a_restart(private_etcd: TestEtcd) -> None:
    client = private_etcd.client(connect_timeout=WAIT)
    put(client, "/keep/me", b"1")
    pid = private_etcd.pid
    private_etcd.etcd.stop()
    assert pid is not None and (not os.path.exists(f"/proc/{pid}/stat") or _zombie(pid))
    private_etcd.start()
    kv, _ = client.get("/keep/me")
    assert kv is not None and kv.value == b"1"


def _zombie(pid: int | None) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] == "Z"
    except OSError:
        return True

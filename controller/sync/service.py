"""The Sync side of a controller replica: the pipeline, the streams, liveness and status.

```
 etcd ──one watch──▶ DesiredState ──▶ Slices (per-host deltas, once per batch)
                                        │ under Fanout.lock
                                        ▼
                      Fanout: one bounded queue per open stream ──▶ Sync streams
 agents' ACKs ──▶ status records (coalesced writes) ──▶ etcd ──watch──▶ every replica
 each stream ──▶ Liveness: live/{host} on a lease kept alive by this replica
```

:class:`SyncService` owns the threads (the pipeline, the lease keeper, the
status writer) and answers the ``Sync``, ``GetHostStatus`` and
``GetFleetStatus`` calls for :class:`controller.api.ControllerService`. The
store's pieces are used as they are: the agent's registration writes its host
record as ``report_host`` plans it (created the first time, rewritten only
when it changed, with the store's write hooks: the audit record), batched
with other registrations and their ``live/`` keys
(:mod:`controller.sync.registrar`); the etcd layer's ``snapshot``/``Watcher``
for the one watch.

Stopping the replica leaves the leases to lapse rather than revoking them:
the agents redial (another replica, or this one restarted) within their
backoff, well inside the TTL, so a controller restart does not make every
host flap down and up — only a stream that ends while the replica keeps
running revokes its lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc

from controller import validate
from controller.access import authorize_sync
from controller.etcd import Backoff, EtcdClient, EtcdError, Snapshot, Watcher, snapshot
from controller.store import (
    Corrupt,
    HostRecord,
    InvalidArgument,
    Nic,
    ResourceExhausted,
    Store,
    Unavailable,
)
from controller.sync import status as st
from controller.sync.catchup import coalesced
from controller.sync.desired import DesiredState, Touched
from controller.sync.fanout import QUEUE_LIMIT, Fanout, Subscriber, snapshot_messages
from controller.sync.liveness import Liveness
from controller.sync.slices import Slices
from controller.sync.status_writer import StatusWriter
from serving.streams import BudgetExceeded, StreamBudget
from vrc.v1 import controller_pb2 as pb

_log = logging.getLogger("vrc.controller.sync")

MAX_ENDPOINT = 512
MAX_NICS = 256
# The server pings agents this often (and waits this long for the answer), so a
# dead peer is noticed well inside the default lease TTL (DESIGN.md 4, Typha #291).
SERVER_KEEPALIVE = (2.0, 2.0)


def server_options() -> list[tuple[str, int]]:
    """Channel options for the controller's server: keepalive pings to agents, and
    agents' own pings permitted (every 10 s, also on idle streams)."""
    ping, timeout = SERVER_KEEPALIVE
    return [
        ("grpc.keepalive_time_ms", int(ping * 1000)),
        ("grpc.keepalive_timeout_ms", int(timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 1000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


@dataclass(slots=True)
class SyncSettings:
    replica: str
    lease_ttl: float = 5.0
    queue_limit: int = QUEUE_LIMIT
    status_interval: float = 0.1
    ready_timeout: float = 10.0  # how long a new stream waits for the first load
    poll: float = 0.5  # how often an idle stream checks that its agent is still there


@dataclass(slots=True)
class SyncStats:
    streams_opened: int = 0
    streams_open: int = 0
    cut_off: int = 0  # streams ended for falling behind
    acks: int = 0
    nacks: int = 0
    reports: int = 0
    batches: int = 0
    deltas: int = 0
    last_batch_seconds: float = 0.0
    by_code: dict[str, int] = field(default_factory=dict)


class SyncService:
    """See the module docstring."""

    def __init__(self, store: Store, settings: SyncSettings, *, budget: StreamBudget,
                 etcd: EtcdClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``etcd``: the client of the background work (the watch, leases, status writes);
        a client of its own keeps their failures — etcd restarting under a watch — from
        closing the channel the API's requests are on. Default: the store's."""
        self.store = store
        self.etcd = etcd if etcd is not None else store.etcd
        self.settings = settings
        self.budget = budget
        self.clock = clock
        self.keys = store.keys
        self.fanout = Fanout(settings.replica, settings.queue_limit)
        self.liveness = Liveness(self.etcd, store.keys, ttl=settings.lease_ttl,
                                 replica=settings.replica, hooks=store.hooks)
        self.writer = StatusWriter(self.etcd, store.keys, interval=settings.status_interval,
                                   wanted=self._host_known)
        self.stats = SyncStats()
        self.slices: Slices | None = None
        self._records: dict[str, st.StatusRecord] = {}
        self._records_lock = threading.Lock()
        self._ready = threading.Event()
        self._progress = threading.Condition()  # notified after each batch
        self._stopping = threading.Event()
        self._watcher: Watcher | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self.liveness.start()
        self.writer.start()
        self._thread = threading.Thread(target=self._pipeline, name="vrc-sync-pipeline",
                                        daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        self.fanout.close_all("the controller is stopping")
        watcher = self._watcher
        if watcher is not None:
            watcher.close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.liveness.stop()
        self.writer.stop()

    # --- the pipeline -----------------------------------------------------------------

    def _pipeline(self) -> None:
        """Run the pipeline; should it ever fail (a bug, never an etcd outage: the watcher
        rides those out), every stream is closed — their agents redial and get snapshots —
        and the pipeline starts again from a fresh list, after a backoff."""
        backoff = Backoff(initial=0.5, maximum=10.0)
        while not self._stopping.is_set():
            try:
                self._run_pipeline()
                return
            except Exception:
                _log.exception("the sync pipeline failed; restarting it from a fresh list")
                self._ready.clear()
                self.fanout.close_all("the controller's sync pipeline restarted; redial")
                self._stopping.wait(backoff.next())

    def _run_pipeline(self) -> None:
        start = self._first_snapshot()
        if start is None:
            return
        state = DesiredState.load(start.kvs.values(), start.revision, self.keys)
        with self.fanout.lock:
            self.slices = Slices(state)
        self._take_statuses(state, set(state.statuses))
        self._ready.set()
        _log.info("sync pipeline ready at revision %d (%d hosts)", start.revision,
                  len(state.hosts))
        watcher = Watcher(self.etcd, self.keys.root, start,
                          on_state=lambda s, d: _log.info("watch %s: %s", s, d))
        self._watcher = watcher
        if self._stopping.is_set():
            watcher.close()
        for batch in coalesced(watcher):  # what piled up meanwhile is stepped as one
            began = time.perf_counter()
            with self.fanout.lock:
                deltas, touched = self.slices.step(batch.changes, batch.revision)
                self.fanout.publish(deltas)
            self.stats.batches += 1
            self.stats.deltas += len(deltas)
            self.stats.last_batch_seconds = time.perf_counter() - began
            self._after(state, touched)
            with self._progress:
                self._progress.notify_all()

    def _first_snapshot(self) -> Snapshot | None:
        backoff = Backoff(initial=0.1, maximum=5.0)
        while not self._stopping.is_set():
            try:
                return snapshot(self.etcd, self.keys.root)
            except EtcdError as error:
                delay = backoff.next()
                _log.warning("loading the cluster state failed (retrying in %.1f s): %s",
                             delay, error)
                self._stopping.wait(delay)
        return None

    def _after(self, state: DesiredState, touched: Touched) -> None:
        if touched.status:
            self._take_statuses(state, touched.status)
        for host in touched.live:
            if host not in state.live and self.fanout.holds(host):
                self.liveness.ensure(host)  # our stream is open: it is alive

    def _take_statuses(self, state: DesiredState, hosts: set[str]) -> None:
        with self._records_lock:
            for host in hosts:
                raw = state.statuses.get(host)
                if raw is None:
                    continue
                try:
                    record = st.decode(self.keys.status(host), raw)
                except Corrupt as error:
                    _log.error("%s", error)
                    continue
                if not self.fanout.holds(host):  # ours is the newest for a host we hold
                    self._records[host] = record
                else:
                    self._records[host] = st.newer(self._records.get(host), record) or record

    def _host_known(self, host: str) -> bool:
        slices = self.slices
        return slices is not None and host in slices.state.hosts

    # --- the Sync stream --------------------------------------------------------------

    def sync(self, requests: Iterator[pb.SyncRequest],
             context: grpc.ServicerContext) -> Iterator[pb.SyncResponse]:
        try:
            release = self.budget.acquire(context.peer())
        except BudgetExceeded as error:
            raise ResourceExhausted("", "", str(error)) from None
        try:
            yield from self._serve(requests, context)
        finally:
            release()

    def _serve(self, requests: Iterator[pb.SyncRequest],
               context: grpc.ServicerContext) -> Iterator[pb.SyncResponse]:
        hello = _first_hello(requests)
        host = validate.host_id("hello.host_id", hello.host_id)
        authorize_sync(context, host)  # an agent certificate Syncs as its own host only
        endpoint = hello.agent_endpoint
        if len(endpoint) > MAX_ENDPOINT:
            raise InvalidArgument("hello.agent_endpoint", endpoint,
                                  f"longer than {MAX_ENDPOINT} characters")
        nics = _nics(hello)
        if not self._ready.wait(self.settings.ready_timeout):
            raise Unavailable("", "", "the controller has not loaded the cluster state from "
                                      "etcd yet; retry")
        registration = self.liveness.register(
            host, endpoint, HostRecord(host, tuple(nics), endpoint, hello.software_version))
        stream: Subscriber | None = None
        try:
            assert self.slices is not None
            with self.fanout.lock:
                stream, items, version = self.fanout.subscribe(
                    host, self.slices.slice_of(host), self.slices.revision)
            first = list(snapshot_messages(items, version, self.settings.replica))
            self.stats.streams_opened += 1
            self.stats.streams_open += 1
            self._note_hello(host, hello)
            _log.info("agent %s connected (endpoint %s, applied %d, snapshot at %d)", host,
                      endpoint, hello.applied_version, first[0].version)
            context.add_callback(stream.wake)
            threading.Thread(target=self._read_acks, args=(host, stream, requests),
                             name=f"vrc-sync-acks-{host}", daemon=True).start()
            yield from first
            yield from self._follow(host, stream, context)
        finally:
            if stream is not None:
                self.fanout.unsubscribe(stream)
                self.stats.streams_open -= 1
            if not self._stopping.is_set():
                self.liveness.release(registration)
            _log.info("agent %s stream ended", host)

    def _follow(self, host: str, stream: Subscriber,
                context: grpc.ServicerContext) -> Iterator[pb.SyncResponse]:
        while True:
            messages = stream.take(self.settings.poll)
            if stream.behind:
                self.stats.cut_off += 1
                raise ResourceExhausted(
                    "", "", f"host {host} fell more than {self.settings.queue_limit} versions "
                            "behind; redial for a snapshot")
            if stream.closed:
                context.abort(grpc.StatusCode.UNAVAILABLE, stream.closed)
            if not context.is_active():
                return
            yield from messages

    def _read_acks(self, host: str, stream: Subscriber,
                   requests: Iterator[pb.SyncRequest]) -> None:
        try:
            for request in requests:
                if request.HasField("ack"):
                    self._record_ack(host, request.ack)
        except grpc.RpcError:
            pass
        except Exception as error:  # a malformed stream must not kill the replica
            _log.error("reading %s's stream failed: %r", host, error)
        stream.close(f"agent {host} closed its side of the stream")

    def _record_ack(self, host: str, ack: pb.SyncAck) -> None:
        with self._records_lock:
            record = st.from_ack(host, self.settings.replica, ack, self._records.get(host),
                                 self.clock())
            self._records[host] = record
        self.writer.put(record)
        if ack.report:
            self.stats.reports += 1
        elif ack.errors:
            self.stats.nacks += 1
        else:
            self.stats.acks += 1

    def _note_hello(self, host: str, hello: pb.SyncHello) -> None:
        """Before its first ACK, a host's status shows the local items its hello named."""
        with self._records_lock:
            previous = self._records.get(host)
            record = st.StatusRecord(
                host, self.settings.replica,
                previous.applied_version if previous else hello.applied_version,
                previous.applied_at if previous else 0.0,
                previous.failed if previous else (), previous.drift if previous else (),
                tuple(hello.local_items))
            self._records[host] = record
        self.writer.put(record)

    # --- status -----------------------------------------------------------------------

    def caught_up(self, revision: int, timeout: float) -> bool:
        """Wait until the pipeline has taken in ``revision`` (of a key under the root)."""
        slices = self._loaded()
        with self._progress:
            return self._progress.wait_for(lambda: slices.revision >= revision, timeout)

    def host_status(self, host: str) -> pb.HostStatus:
        host = validate.host_id("host", host)
        view = self.store.get_host(host)
        slices = self._loaded()
        # read your writes: the host record just read is in the slice the answer shows
        self.caught_up(view.revision, self.settings.ready_timeout)
        with self.fanout.lock:
            items = dict(slices.slice_of(host))
            desired = slices.changed_at.get(host, 0)
        with self._records_lock:
            record = self._records.get(host)
        live = view.live
        return st.host_status(
            host, up=view.up, record=record, items=items, desired_version=desired,
            controller=live.controller if live else "",
            agent_endpoint=(live.agent_endpoint if live else "") or view.record.agent_endpoint)

    def fleet_status(self) -> pb.FleetStatus:
        slices = self._loaded()
        with self.fanout.lock:
            state = slices.state
            hosts, live = list(state.hosts), set(state.live)
            changed_at, revision = dict(slices.changed_at), slices.revision
        with self._records_lock:
            records = dict(self._records)
        return st.fleet(hosts, live, records, changed_at, revision).to_pb()

    def _loaded(self) -> Slices:
        if not self._ready.wait(self.settings.ready_timeout) or self.slices is None:
            raise Unavailable("", "", "the controller has not loaded the cluster state from "
                                      "etcd yet; retry")
        return self.slices


def _first_hello(requests: Iterator[pb.SyncRequest]) -> pb.SyncHello:
    first = next(requests, None)
    if first is None or not first.HasField("hello"):
        raise InvalidArgument("hello", "", "the first message of a Sync stream must be the "
                                           "agent's hello")
    return first.hello


def _nics(hello: pb.SyncHello) -> list[Nic]:
    if len(hello.nics) > MAX_NICS:
        raise InvalidArgument("hello.nics", len(hello.nics), f"more than {MAX_NICS} NICs")
    return [Nic(validate.ifname("hello.nics.name", n.name), n.mac, n.mtu, n.point_to_point)
            for n in hello.nics]



"""Watching a key prefix without ever losing, inventing or hot-looping on a change.

A :class:`Watcher` starts from a :class:`Snapshot` (every key under the prefix
at one revision) and yields :class:`Batch` es of changes after it, in
revision order, for as long as it is iterated:

* the etcd watch is opened at ``revision + 1`` of what was delivered last;
* a broken stream (etcd restarted, a network cut) is re-opened from there,
  after a backoff (100 ms doubling to 5 s, reset once a watch delivers);
* when etcd answers that the revision was **compacted**, the watcher lists
  the prefix at the current revision R, compares it with what it knows
  (mark and sweep: a key it knows that is gone is a DELETE, a key that is new
  or has another mod revision is a PUT), delivers that as one ``resync``
  batch at R and watches from R + 1. It never resumes at the compact
  revision (the changes between it and R would be lost) and every resync
  waits its backoff first, so repeated compactions cannot make it spin.

The watch itself runs on pyetcd's generated ``Watch`` stub (pyetcd's own
``Watcher`` drops a server-side cancel that carries no compact revision, so a
cancelled watch would go silent, and its create call can wait forever).
A batch's ``revision`` is the highest revision it covers: for events the
highest event revision, not the response header (an unsynced etcd watcher
sends headers ahead of its events), and for a progress notification the
header (etcd sends those only to synced watchers).
"""

from __future__ import annotations

import enum
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from pyetcd import etcdrpc

from controller.etcd.backoff import Backoff
from controller.etcd.client import EtcdClient, KeyValue
from controller.etcd.errors import EtcdCompacted, EtcdError, EtcdUnavailable
from controller.etcd.txn import prefix_end, to_bytes

_PUT = 0  # mvccpb.Event.EventType
_DELETE = 1


class ChangeKind(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One key that changed. A DELETE carries the value the key had, when known."""

    kind: ChangeKind
    key: str
    value: bytes
    revision: int  # the put's mod revision, or the revision of the delete
    create_revision: int = 0
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Batch:
    changes: tuple[Change, ...]
    revision: int  # every change up to and including this revision has been delivered
    resync: bool = False  # made by a re-list after a compaction, not by etcd's watch


@dataclass(slots=True)
class Snapshot:
    """Every key under a prefix at one revision."""

    revision: int
    kvs: dict[str, KeyValue] = field(default_factory=dict)


def snapshot(client: EtcdClient, prefix: str, revision: int = 0) -> Snapshot:
    """The prefix at ``revision`` (0: now); EtcdCompacted if that revision is gone."""
    result = client.get_prefix(prefix, revision=revision)
    return Snapshot(revision or result.revision, {kv.key: kv for kv in result.kvs})


def sweep(known: dict[str, KeyValue], listed: dict[str, KeyValue], revision: int) -> list[Change]:
    """The changes that turn ``known`` into ``listed`` (read at ``revision``): mark and sweep."""
    changes = [Change(ChangeKind.DELETE, key, kv.value, revision)
               for key, kv in sorted(known.items()) if key not in listed]
    puts = [kv for key, kv in listed.items()
            if key not in known or known[key].mod_revision != kv.mod_revision]
    changes.extend(Change(ChangeKind.PUT, kv.key, kv.value, kv.mod_revision, kv.create_revision,
                          kv.lease)
                   for kv in sorted(puts, key=lambda kv: (kv.mod_revision, kv.key)))
    return changes


@dataclass(slots=True)
class WatchStats:
    """What happened so far (metrics and tests)."""

    streams: int = 0  # etcd watch streams opened (created)
    failures: int = 0  # streams that broke or could not be opened
    resyncs: int = 0  # re-lists after a compaction
    delays: list[float] = field(default_factory=list)  # every backoff wait, in order
    starts: list[int] = field(default_factory=list)  # start revision of every watch


class Watcher:
    """Iterate for batches; :meth:`close` (any thread) ends the iteration."""

    def __init__(self, client: EtcdClient, prefix: str, start: Snapshot, *,
                 backoff: Backoff | None = None,
                 sleep: Callable[[float], object] | None = None,
                 progress_notify: bool = True,
                 on_state: Callable[[str, str], None] | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.known: dict[str, KeyValue] = dict(start.kvs)
        self.revision = start.revision
        self.backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self.progress_notify = progress_notify
        self.stats = WatchStats()
        self._closed = threading.Event()
        self._sleep = sleep if sleep is not None else self._closed.wait
        self._on_state = on_state
        self._lock = threading.Lock()
        self._call: Any = None
        self._requests: queue.Queue[Any] | None = None

    @classmethod
    def after(cls, client: EtcdClient, prefix: str, revision: int,
              **options: Any) -> Watcher:
        """A watcher for the changes after ``revision`` (lists the prefix at it first);
        EtcdCompacted at once if that revision is gone."""
        return cls(client, prefix, snapshot(client, prefix, revision), **options)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            call, requests = self._call, self._requests
        if requests is not None:
            requests.put(None)
        if call is not None:
            call.cancel()

    def __iter__(self) -> Iterator[Batch]:
        compacted = False
        while not self.closed:
            try:
                if compacted:
                    self._wait()
                    if self.closed:
                        return
                    yield self._resync()
                    compacted = False
                yield from self._watch(self.revision + 1)
            except EtcdCompacted:
                compacted = True
                self._state("compacted", f"revision {self.revision + 1} compacted: re-listing")
            except EtcdError as error:
                self.stats.failures += 1
                self._state("retrying", str(error))
                self._wait()

    def _wait(self) -> None:
        delay = self.backoff.next()
        self.stats.delays.append(delay)
        self._sleep(delay)

    def _state(self, state: str, detail: str) -> None:
        if self._on_state is not None:
            self._on_state(state, detail)

    def _resync(self) -> Batch:
        listed = snapshot(self.client, self.prefix)
        changes = sweep(self.known, listed.kvs, listed.revision)
        self.known = listed.kvs
        self.revision = listed.revision
        self.stats.resyncs += 1
        return Batch(tuple(changes), listed.revision, resync=True)

    def _create_request(self, start: int) -> Any:
        create = etcdrpc.WatchCreateRequest(
            key=to_bytes(self.prefix), range_end=prefix_end(self.prefix),
            start_revision=start, prev_kv=True, progress_notify=self.progress_notify)
        return etcdrpc.WatchRequest(create_request=create)

    def _watch(self, start: int) -> Iterator[Batch]:
        requests: queue.Queue[Any] = queue.Queue()
        requests.put(self._create_request(start))
        self.stats.starts.append(start)
        client, call = self.client.watch_call(_drain(requests))
        with self._lock:
            self._call, self._requests = call, requests
        if self.closed:  # closed while opening: close() saw no call to cancel
            call.cancel()
        try:
            yield from self._responses(call, start)
        except grpc.RpcError as error:
            if self.closed:
                return
            raise self.client.failed(client, error) from None
        finally:
            requests.put(None)
            call.cancel()
            with self._lock:
                self._call = self._requests = None
        if not self.closed:
            raise EtcdUnavailable("etcd ended the watch stream")

    def _responses(self, call: Any, start: int) -> Iterator[Batch]:
        for response in call:
            if response.compact_revision:
                raise EtcdCompacted(start, int(response.compact_revision))
            if response.canceled:
                reason = response.cancel_reason or "no reason given"
                raise EtcdUnavailable(f"etcd cancelled the watch: {reason}")
            if response.created:
                self.stats.streams += 1
                self._state("watching", f"from revision {start}")
                continue
            batch = self._apply(response)
            if batch is not None:
                self.backoff.reset()
                yield batch

    def _apply(self, response: Any) -> Batch | None:
        if not response.events:
            progress = int(response.header.revision)
            if progress <= self.revision:
                return None
            self.revision = progress
            return Batch((), progress)
        changes = []
        for event in response.events:
            kv = event.kv
            key = kv.key.decode()
            if event.type == _DELETE:
                old = self.known.pop(key, None)
                value = bytes(event.prev_kv.value) if event.HasField("prev_kv") else (
                    old.value if old is not None else b"")
                changes.append(Change(ChangeKind.DELETE, key, value, int(kv.mod_revision)))
            else:
                stored = KeyValue.of(kv)
                self.known[key] = stored
                changes.append(Change(ChangeKind.PUT, key, stored.value, stored.mod_revision,
                                      stored.create_revision, stored.lease))
        self.revision = max(self.revision, max(c.revision for c in changes))
        return Batch(tuple(changes), self.revision)


def _drain(requests: queue.Queue[Any]) -> Iterator[Any]:
    """The request stream of one watch: the create request, then open until None."""
    while True:
        item = requests.get()
        if item is None:
            return
        yield item

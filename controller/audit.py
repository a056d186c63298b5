"""The audit trail: a record of every accepted write, in the write's own transaction.

:class:`AuditTrail` is the store's write hook (``Store(hooks=[...])``): before
a write's transaction is sent it adds one put of a
:class:`~controller.store.records.HistoryRecord` — who (the caller's identity,
:func:`serving.auth.current_identity`), when, the operation, and for every
record the write changes its value before and after. So a write and its
record commit together or not at all, and a lost race's retry records its
own attempt only. Guard keys (internal bookkeeping) are left out; a range
delete (a cascade) lists every record it read under the range.

:class:`HistoryPruner` keeps the trail bounded (``--history-max-age``,
``--history-max-records``) in a thread of each replica;
:mod:`controller.store.history` explains why pruning never races a writer.
:class:`HistoryWatcher` follows the trail for ``WatchHistory`` without
keeping what it delivered (the trail only grows at its newest end).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from pyetcd import etcdrpc

from controller.etcd import Batch, ChangeKind, EtcdClient, Snapshot, Txn, Watcher, prefix_end
from controller.store import HistoryChange, HistoryRecord, Keys, Store, StoreError, encode
from controller.store.core import WriteContext
from serving.auth import current_identity

MAX_CHANGES = 512  # changes quoted in one record; the rest are counted in `omitted`
UNAUDITED_KINDS = frozenset({"guards", "status", "live", ""})
HOST_OF = {"hosts": 0, "aliases": 0, "overrides": 0, "prefixes": 2}  # part naming the host


def _json(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return value.decode("utf-8", "replace")


class AuditTrail:
    """The write hook of the module docstring."""

    def __init__(self, keys: Keys, replica: str, *, clock: Callable[[], float] = time.time,
                 max_changes: int = MAX_CHANGES) -> None:
        self.keys = keys
        self.replica = replica
        self.clock = clock
        self.max_changes = max_changes

    def __call__(self, txn: Txn, context: WriteContext) -> None:
        changes, hosts = self._changes(txn, context)
        identity = current_identity()
        at = self.clock()
        record = HistoryRecord(
            at=at, identity=identity.name if identity else f"internal:{self.replica}",
            operation=context.operation, subject=context.subject, hosts=tuple(sorted(hosts)),
            replica=self.replica, changes=tuple(changes[:self.max_changes]),
            omitted=max(0, len(changes) - self.max_changes))
        txn.put(self.keys.history_at(int(at * 1e9), secrets.token_hex(4)), encode(record))

    def _changes(self, txn: Txn, context: WriteContext) -> tuple[list[HistoryChange], set[str]]:
        changes: list[HistoryChange] = []
        hosts: set[str] = set()
        root = len(self.keys.root)
        for raw, value, is_range in txn.writes():
            key = raw.decode()
            kind = self.keys.kind_of(key)
            if kind in UNAUDITED_KINDS:
                continue
            self._note_host(key, kind, hosts)
            if is_range:
                read = context.reads.ranges.get(key) if context.reads is not None else None
                if read is None:
                    changes.append(HistoryChange(f"{key[root:]}*"))
                    continue
                for kv in read[0]:
                    self._note_host(kv.key, kind, hosts)
                    changes.append(HistoryChange(kv.key[root:], _json(kv.value), None))
                continue
            changes.append(HistoryChange(key[root:], _json(context.previous.get(key)),
                                         _json(value)))
        return changes, hosts

    def _note_host(self, key: str, kind: str, hosts: set[str]) -> None:
        index = HOST_OF.get(kind)
        parts = self.keys.parts(key)
        if index is not None and len(parts) > index:
            hosts.add(parts[index])


class HistoryPruner:
    """Prunes the trail every ``interval`` seconds in a thread (also once at start)."""

    def __init__(self, store: Store, *, max_age: float | None, max_records: int | None,
                 interval: float = 60.0, clock: Callable[[], float] = time.time,
                 log: Any = None) -> None:
        self.store = store
        self.max_age = max_age
        self.max_records = max_records
        self.interval = interval
        self.clock = clock
        self.log = log
        self.pruned = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prune_once(self) -> int:
        pruned = self.store.prune_history(now=self.clock(), max_age=self.max_age,
                                          max_records=self.max_records)
        self.pruned += pruned.total
        if pruned.total and self.log is not None:
            self.log.info("history pruned", by_age=pruned.by_age, by_count=pruned.by_count)
        return pruned.total

    def start(self) -> None:
        if self.max_age is None and self.max_records is None:
            return
        self._thread = threading.Thread(target=self._run, daemon=True, name="vrc-history-prune")
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.prune_once()
            except StoreError as error:  # etcd away: the next round tries again
                if self.log is not None:
                    self.log.warning("history pruning failed, retrying later", error=str(error))
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


class HistoryWatcher(Watcher):
    """A watcher of the trail's prefix that sees only puts and forgets what it delivered
    (records are written once and only pruned). After a compaction it re-lists the
    trail and passes on the records of revisions after the last one delivered: nothing
    is lost, nothing repeated."""

    def __init__(self, client: EtcdClient, keys: Keys, revision: int) -> None:
        super().__init__(client, keys.history(), Snapshot(revision))
        self.delivered = revision

    def _create_request(self, start: int) -> Any:
        create = etcdrpc.WatchCreateRequest(
            key=self.prefix.encode(), range_end=prefix_end(self.prefix), start_revision=start,
            progress_notify=self.progress_notify,
            filters=[etcdrpc.WatchCreateRequest.NODELETE])
        return etcdrpc.WatchRequest(create_request=create)

    def new_entries(self, batch: Batch) -> list[tuple[str, bytes, int]]:
        """(key, value, revision) of the records in ``batch`` not delivered before, in
        revision order."""
        self.known.clear()  # nothing to sweep against: a resync filters by revision
        fresh = [(c.key, c.value, c.revision) for c in batch.changes
                 if c.kind is ChangeKind.PUT and c.revision > self.delivered]
        self.delivered = max(self.delivered, batch.revision)
        return sorted(fresh, key=lambda item: item[2])

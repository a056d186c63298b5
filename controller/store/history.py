"""The audit trail in etcd: reading it, and keeping it bounded.

Each accepted write puts one :class:`~controller.store.records.HistoryRecord`
in the **same transaction** as the write (:mod:`controller.audit` is the
write hook), under ``{root}-history/{time in ns, 20 digits}-{random}``: keys
sort by the writing replica's clock, and a record's mod revision is the
revision of the write it describes (the true order, whatever the clocks).

Pruning (:meth:`HistoryStore.prune_history`) deletes only the *oldest* keys:
everything before a cut-off time (``max_age``), and the oldest beyond
``max_records``. It never races a writer into losing a record: a writer only
ever adds a key newer than any cut-off a pruner computed (its clock reads
later; replicas' clocks are assumed within ``max_age`` of each other), a
delete of a range of old keys cannot touch a record committed after it, and
two replicas pruning at once delete overlapping ranges of old keys (the
second finds less). With ``max_records`` the trail never drops below that
many records by count pruning, because the cut-off is computed so that the
newest ``max_records`` remain and new writes only add newer ones. Between
rounds (every ``--history-prune-interval``) the trail may exceed the bound by
the writes of one interval. etcd keeps the deleted keys' old revisions until
it compacts (the private etcd does hourly; give an external one
``--auto-compaction-retention``).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.etcd import Txn, prefix_end
from controller.store.core import StoreCore, etcd_errors
from controller.store.reads import Listing
from controller.store.records import HistoryRecord, Stored, decode

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
PAGE = 500  # records read per round trip when filtering by host
PRUNE_BATCH = 5_000  # keys deleted per transaction while pruning


@dataclass(frozen=True, slots=True)
class Pruned:
    by_age: int
    by_count: int

    @property
    def total(self) -> int:
        return self.by_age + self.by_count


class HistoryStore(StoreCore):
    def list_history(self, *, host: str = "", since: float = 0.0,
                     limit: int = DEFAULT_LIMIT) -> Listing[Stored[HistoryRecord]]:
        """The newest ``limit`` records written at or after ``since`` (unix time) about
        ``host`` (empty: any), oldest first, and the revision they were read at."""
        limit = min(max(limit, 1), MAX_LIMIT)
        start = self.keys.history_at(int(since * 1e9)) if since > 0 else self.keys.history()
        end = prefix_end(self.keys.history())
        found: list[Stored[HistoryRecord]] = []
        revision = 0
        with etcd_errors():
            while len(found) < limit:
                page = self.etcd.range(start, end, revision=revision, newest_first=True,
                                       limit=PAGE if host else limit - len(found))
                revision = revision or page.revision
                for kv in page.kvs:
                    record = decode(HistoryRecord, kv.key, kv.value)
                    if not host or host in record.hosts:
                        found.append(Stored(record, kv.key, kv.create_revision,
                                            kv.mod_revision))
                if not page.more or not page.kvs:
                    break
                end = page.kvs[-1].key.encode()  # the next page: keys below the last one
        found = found[:limit]
        found.sort(key=lambda s: s.mod_revision)
        return Listing(found, revision or self.revision())

    def history_count(self) -> int:
        with etcd_errors():
            return self.etcd.range(self.keys.history(), prefix_end(self.keys.history()),
                                   limit=1, keys_only=True).count

    def prune_history(self, *, now: float, max_age: float | None = None,
                      max_records: int | None = None) -> Pruned:
        """Delete records older than ``max_age`` seconds and the oldest beyond
        ``max_records``; how many went (module docstring: why this never loses a
        record a writer is adding)."""
        by_age = 0
        if max_age is not None:
            cutoff = self.keys.history_at(int((now - max_age) * 1e9)).encode()
            by_age = self._delete_oldest(cutoff, None)
        by_count = 0
        if max_records is not None:
            excess = self.history_count() - max_records
            if excess > 0:
                by_count = self._delete_oldest(prefix_end(self.keys.history()), excess)
        return Pruned(by_age, by_count)

    def _delete_oldest(self, below: bytes, count: int | None) -> int:
        """Delete the oldest keys below ``below`` (at most ``count``), in batches."""
        prefix = self.keys.history()
        deleted = 0
        with etcd_errors():
            while count is None or deleted < count:
                want = PRUNE_BATCH if count is None else min(PRUNE_BATCH, count - deleted)
                page = self.etcd.range(prefix, below, limit=want, keys_only=True)
                if not page.kvs:
                    break
                last = page.kvs[-1].key.encode()
                self.etcd.txn(Txn().delete_range(prefix, last + b"\0"))
                deleted += len(page.kvs)
                if not page.more:
                    break
        return deleted

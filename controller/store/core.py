"""How every store write happens: read, plan, compare-and-commit, retry a lost race.

A write reads the keys it depends on into a :class:`ReadSet`, plans a
transaction from them (or decides nothing needs writing, or refuses), and
commits it with a compare for **everything it read**: each key's mod
revision (0: still absent) and, for ranges it depended on, "nothing under
this prefix changed since I read it". So a plan made on stale reads never
applies: the transaction fails, the write reads again and re-plans, up to
``max_attempts`` times, then answers ABORTED. Because the compares are
derived from the reads, a write cannot forget one.

Write hooks (:data:`WriteHook`) see the planned transaction before it is
sent and may add writes to it — the audit record (:mod:`controller.audit`)
goes in the same transaction as the change it records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from controller.etcd import (
    Backoff,
    EtcdClient,
    EtcdCompacted,
    EtcdError,
    EtcdRefused,
    EtcdRequestTooLarge,
    EtcdUnavailable,
    KeyValue,
    Read,
    Txn,
)
from controller.store.errors import (
    Aborted,
    Corrupt,
    OutOfRange,
    ResourceExhausted,
    StoreError,
    Unavailable,
)
from controller.store.keys import DEFAULT_ROOT, Keys
from controller.store.records import Stored, decode

R = TypeVar("R")
MAX_ATTEMPTS = 10


@dataclass(slots=True)
class ReadSet:
    """What one attempt of a write read, and at which revisions."""

    revision: int = 0
    keys: dict[str, KeyValue | None] = field(default_factory=dict)
    ranges: dict[str, tuple[list[KeyValue], int, bool]] = field(default_factory=dict)

    def kv(self, key: str) -> KeyValue | None:
        return self.keys[key]

    def record(self, cls: type[R], key: str) -> Stored[R] | None:
        kv = self.keys[key]
        if kv is None:
            return None
        return Stored(decode(cls, key, kv.value), key, kv.create_revision, kv.mod_revision)

    def records(self, cls: type[R], prefix: str) -> list[Stored[R]]:
        return [Stored(decode(cls, kv.key, kv.value), kv.key, kv.create_revision,
                       kv.mod_revision) for kv in self.ranges[prefix][0]]

    def mod_revision(self, key: str) -> int:
        kv = self.keys[key]
        return kv.mod_revision if kv is not None else 0

    def guard(self, txn: Txn) -> None:
        """Add a compare for everything read (guarded ranges only)."""
        for key, kv in self.keys.items():
            txn.require_revision(key, kv.mod_revision if kv is not None else 0)
        for prefix, (_kvs, revision, guarded) in self.ranges.items():
            if guarded:
                txn.require_unchanged_since(prefix, revision)

    def previous(self, keys: Sequence[bytes]) -> dict[str, bytes | None]:
        """The values the written keys had when read (None: absent or not read)."""
        seen = {}
        for raw in keys:
            key = raw.decode()
            kv = self.keys.get(key)
            seen[key] = kv.value if kv is not None else None
        return seen


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A plan's answer when the store already holds what was asked: nothing is written."""

    revision: int


@dataclass(frozen=True, slots=True)
class WriteContext:
    """What a write hook is told about the write it may add to."""

    operation: str  # "put_alias", "remove_host", ...
    subject: str  # what it is about, for people ("alias 10.0.0.1/24 on h1/eth1")
    previous: dict[str, bytes | None]  # the written keys' values as read
    reads: ReadSet | None = None  # everything the write read (a range delete's contents)


WriteHook = Callable[[Txn, WriteContext], None]
Attempt = Callable[[], "tuple[ReadSet, Txn | Unchanged]"]


@dataclass(slots=True)
class WriteStats:
    commits: int = 0
    unchanged: int = 0
    lost_races: int = 0
    aborted: int = 0


class StoreCore:
    """The etcd client, the key layout, reads and the write loop; the record families add
    their writes on top (:mod:`controller.store.store`)."""

    def __init__(self, etcd: EtcdClient, *, root: str = DEFAULT_ROOT,
                 hooks: Sequence[WriteHook] = (), max_attempts: int = MAX_ATTEMPTS,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.etcd = etcd
        self.keys = Keys(root)
        self.hooks = list(hooks)
        self.max_attempts = max_attempts
        self.stats = WriteStats()
        self._sleep = sleep

    # -- reads ------------------------------------------------------------------------

    def read(self, into: ReadSet | None = None, *, keys: Sequence[str] = (),
             ranges: Sequence[str] = (), unguarded: Sequence[str] = ()) -> ReadSet:
        """Read ``keys`` and the ranges under each prefix at one revision into a ReadSet.

        ``ranges`` are compared at commit ("nothing under it changed");
        ``unguarded`` ranges are read for their content only.
        """
        reads = [Read(k) for k in keys] + [Read(p, prefix=True) for p in (*ranges, *unguarded)]
        rs = into if into is not None else ReadSet()
        if not reads:
            return rs
        with etcd_errors():
            results, revision = self.etcd.read(reads)
        for key, kvs in zip(keys, results, strict=False):
            rs.keys[key] = kvs[0] if kvs else None
        for index, prefix in enumerate((*ranges, *unguarded)):
            rs.ranges[prefix] = (results[len(keys) + index], revision, index < len(ranges))
        rs.revision = revision
        return rs

    def revision(self) -> int:
        """The store's current revision."""
        with etcd_errors():
            return self.etcd.revision()

    # -- writes -----------------------------------------------------------------------

    def write(self, operation: str, subject: str, attempt: Attempt) -> int:
        """Run ``attempt`` (read, then plan) and commit its plan with a compare for all it
        read, until one applies; the revision it created (unchanged: the revision of what
        is stored). A lost race reads and plans again, at most ``max_attempts`` times."""
        backoff = Backoff(initial=0.002, maximum=0.05)
        for _ in range(self.max_attempts):
            reads, outcome = attempt()
            if isinstance(outcome, Unchanged):
                self.stats.unchanged += 1
                return outcome.revision
            reads.guard(outcome)
            for hook in self.hooks:
                hook(outcome, WriteContext(operation, subject,
                                           reads.previous(outcome.written_keys()), reads))
            with etcd_errors():
                result = self.etcd.txn(outcome)
            if result.succeeded:
                self.stats.commits += 1
                return result.revision
            self.stats.lost_races += 1
            self._sleep(backoff.next())
        self.stats.aborted += 1
        raise Aborted("", "", f"{subject}: other writers changed what it depends on "
                              f"{self.max_attempts} times in a row; retry")


@contextmanager
def etcd_errors() -> Iterator[None]:
    """etcd-layer errors as store errors (the API maps those to statuses)."""
    try:
        yield
    except EtcdUnavailable as error:
        raise Unavailable("", "", f"etcd is unreachable, retry: {error}") from None
    except EtcdCompacted as error:
        raise OutOfRange("", "", str(error)) from None
    except EtcdRequestTooLarge as error:
        raise ResourceExhausted("", "", str(error)) from None
    except EtcdRefused as error:
        raise Unavailable("", "", str(error)) from None
    except EtcdError as error:
        raise Unavailable("", "", str(error)) from None


__all__ = ["Corrupt", "ReadSet", "StoreCore", "StoreError", "Unchanged", "WriteContext",
           "WriteHook", "etcd_errors"]

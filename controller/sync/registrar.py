"""Registrations in batches: one writer drains a queue of them into few etcd transactions.

An agent's registration is its host record (what its hello reported: NICs,
endpoint, version; written only when it changed, with its audit record) and
``live/{host}`` on a lease. One etcd round trip per registration for each of
those (a lease grant, the host read, the host write, the live put) is what a
registration storm of 1,000 agents used to queue behind etcd's deadlines.
Here the Sync streams only queue their registration and wait; one thread
writes whatever has queued while its previous write was in flight:

* **one lease per batch**: a grant, then one transaction with every host
  record that changed (each with the compare on the revision it was read at
  and its audit record, written as the agent that sent the hello) and every
  ``live/`` key on the batch's lease. Up to :data:`MAX_BATCH` registrations a
  transaction, so a storm of N costs about 3 N / MAX_BATCH round trips;
* **nothing half-written**: the transaction applies whole or not at all; a
  lost race on a host record reads and plans again; a batch that fails
  (etcd away, a deadline: the transaction may still have applied) revokes
  its fresh lease — which carries nothing but that batch's keys — and every
  registration in it is refused (UNAVAILABLE: the agents redial);
* **a shared lease is never revoked under a live host**: a stream that ends
  deletes its own key (a nested transaction per key: only if it still has
  the revision this registration put, so a newer registration of the host,
  here or on another replica, stays); the lease is revoked once no live
  registration is left on it. A release etcd refuses is retried; a lease
  whose release has failed for a whole keep-alive round is given up — its
  live registrations are put again on a new lease, and the old one (carrying
  only the released keys) lapses — so a key whose stream has ended outlives
  it by at most about the TTL, as a lease that etcd could not be told to
  revoke did before;
* **expiry is shared fate, as before**: every lease of a replica was already
  kept alive on one ``LeaseKeepAlive`` call, so the hosts on a batch's lease
  lapse together only when all of the replica's would. A lapsed lease's
  live registrations are put again, as one batch on a new lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyetcd import etcdrpc

from controller.etcd import EtcdClient, EtcdError, EtcdRequestTooLarge, Read, Txn
from controller.etcd.backoff import Backoff
from controller.etcd.txn import MAX_TXN_OPS
from controller.store import (
    Aborted,
    HostRecord,
    Keys,
    LiveRecord,
    ReadSet,
    StoreError,
    Unavailable,
    Unchanged,
    WriteContext,
    WriteHook,
    encode,
)
from controller.store.core import MAX_ATTEMPTS, etcd_errors
from controller.store.hosts import plan_report
from serving.auth import Grant, Identity, acting_as, current_grant, current_identity

_log = logging.getLogger("vrc.controller.liveness")

MAX_BATCH = 40  # registrations a transaction: 3 operations each (host, audit, live) < 128
BATCH_BYTES = 512 * 1024  # well inside etcd's 1.5 MiB request limit
RELEASES_PER_TXN = 100
LINGER = 0.02  # how long the writer waits for more once one registration is queued
REGISTER_WAIT = 30.0  # the longest a stream waits for its registration to be written


@dataclass(eq=False)
class Registration:
    """One stream's registration: the lease ``live/{host}`` is on and the revision that
    put it (both change when it is put again)."""

    host: str
    agent_endpoint: str
    lease: int = 0
    revision: int = 0
    registered_at: float = 0.0
    released: bool = False


@dataclass(eq=False)
class _Put:
    """A registration to write: a stream's first (``report``: its host record; a caller
    waits) or one put again (a lapsed lease, a key gone while the stream is open)."""

    registration: Registration
    report: HostRecord | None = None
    caller: tuple[Identity, Grant] | None = None  # whom its audit record names
    waited: bool = False
    done: bool = False
    error: StoreError | None = None
    abandoned: bool = False  # its caller stopped waiting: release it once written
    finished: threading.Event = field(default_factory=threading.Event)  # done is set


@dataclass(slots=True)
class RegistrarStats:
    batches: int = 0  # registration transactions committed
    registered: int = 0  # registrations (and puts again) they carried
    grants: int = 0
    revokes: int = 0
    releases: int = 0  # keys deleted by a release transaction (or taken with a lease)
    lost_races: int = 0
    failed: int = 0  # registrations refused (etcd away, a deadline)


class Registrar:
    """The queue and its writer thread (see the module docstring)."""

    def __init__(self, etcd: EtcdClient, keys: Keys, *, ttl: int, replica: str,
                 hooks: Sequence[WriteHook] = (), wait: float = REGISTER_WAIT,
                 clock: Callable[[], float] = time.monotonic, linger: float = LINGER) -> None:
        self.etcd = etcd
        self.keys = keys
        self.ttl = ttl
        self.replica = replica
        self.hooks = list(hooks)
        self.wait = wait
        self.clock = clock
        self.linger = linger
        self.stats = RegistrarStats()
        self._ready = threading.Condition()
        self._puts: list[_Put] = []
        self._releases: list[Registration] = []
        self._holders: dict[int, set[Registration]] = {}  # lease -> registrations on it
        self._failing: dict[int, float] = {}  # lease -> when a release on it first failed
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- what the streams and the keeper call -----------------------------------------

    def register(self, registration: Registration, report: HostRecord | None) -> None:
        """Queue a stream's registration and wait until it is written; a store error
        (UNAVAILABLE: retry) if it was not — then nothing of it stays live."""
        identity, grant = current_identity(), current_grant()
        caller = (identity, grant) if identity is not None and grant is not None else None
        put = _Put(registration, report, caller, waited=True)
        with self._ready:
            if self._stopping:
                raise Unavailable("", "", "the controller is stopping; retry")
            self._puts.append(put)
            self._ready.notify_all()
        # an event of its own: a batch written wakes its own callers, not every one queued
        if not put.finished.wait(self.wait):
            with self._ready:
                if not put.done:
                    put.abandoned = True
                    registration.released = True
                    raise Unavailable("", "", f"registering host {registration.host} took "
                                              f"longer than {self.wait:g} s; retry")
        if put.error is not None:
            raise put.error

    def put_again(self, registrations: Sequence[Registration]) -> None:
        """Queue ``registrations`` to be put again on a new lease (nobody waits)."""
        with self._ready:
            self._puts.extend(_Put(r) for r in registrations if not r.released)
            self._ready.notify_all()

    def release(self, registration: Registration) -> None:
        """The stream ended: its key goes (queued; the writer deletes or revokes)."""
        with self._ready:
            registration.released = True
            if registration.lease:
                self._releases.append(registration)
                self._ready.notify_all()

    def held(self) -> dict[int, list[Registration]]:
        """Lease -> the live (not released) registrations on it."""
        with self._ready:
            return {lease: [r for r in regs if not r.released]
                    for lease, regs in self._holders.items()}

    def holding(self, host: str) -> list[Registration]:
        with self._ready:
            return [r for regs in self._holders.values() for r in regs
                    if r.host == host and not r.released]

    def queued(self) -> int:
        """Registrations waiting for the writer to take them."""
        with self._ready:
            return len(self._puts)

    def failing(self, longer_than: float) -> set[int]:
        """Leases a release has failed to be written on for longer than ``longer_than`` s."""
        now = self.clock()
        with self._ready:
            return {lease for lease, since in self._failing.items()
                    if now - since > longer_than}

    # --- the writer thread ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vrc-registrar", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop writing: queued registrations are refused, queued releases dropped (the
        leases are left to lapse, see :mod:`controller.sync.service`)."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        backoff = Backoff(initial=0.05, maximum=1.0)
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._puts or self._releases
                                                  or self._stopping))
                # a storm's streams arrive a few milliseconds apart: wait a moment for a
                # fuller batch (fewer transactions, and fewer steps of every replica's
                # pipeline, each of which recomputes the routes)
                self._ready.wait_for(lambda: len(self._puts) >= MAX_BATCH or self._stopping,
                                     self.linger)
                if self._stopping:
                    self._refuse(self._puts, Unavailable("", "", "the controller is stopping; "
                                                                 "retry"))
                    self._puts, self._releases = [], []
                    return
                puts, self._puts = self._puts, []
                releases, self._releases = self._releases, []
            released = self._write_releases(releases)
            if self._write_puts(puts) and released:
                backoff.reset()
                continue
            with self._ready:  # etcd refused something: let it breathe before the next
                self._ready.wait_for(lambda: self._stopping, backoff.next())

    def _refuse(self, puts: Sequence[_Put], error: StoreError) -> None:
        """Under the lock: answer every waiting caller of ``puts`` with ``error``."""
        for put in puts:
            put.error, put.done = error, True
            put.finished.set()
        self.stats.failed += sum(1 for p in puts if p.waited)

    # --- registrations ----------------------------------------------------------------

    def _write_puts(self, puts: Sequence[_Put]) -> bool:
        wanted = [p for p in puts
                  if not p.abandoned and (p.waited or not p.registration.released)]
        written = True
        for batch in batches(wanted, self.keys, len(self.hooks)):
            written = self._write_batch(batch) and written
        return written

    def _write_batch(self, batch: Sequence[_Put]) -> bool:
        try:
            lease = self._grant()
        except EtcdError as error:
            self._failed(batch, error)
            return False
        try:
            revision = self._commit(batch, lease)
        except EtcdRequestTooLarge as error:
            self._revoke_quietly(lease)
            if len(batch) == 1:
                self._failed(batch, error)
                return False
            half = len(batch) // 2
            first = self._write_batch(batch[:half])
            return self._write_batch(batch[half:]) and first
        except (EtcdError, StoreError) as error:
            self._revoke_quietly(lease)  # whatever of the batch may have applied goes with it
            self._failed(batch, error)
            return False
        self._settle(batch, lease, revision)
        return True

    def _commit(self, batch: Sequence[_Put], lease: int) -> int:
        """One transaction: the host records that changed, every live key on ``lease``;
        a lost race on a host record reads and plans again. The revision it created."""
        host_keys = [self.keys.host(p.registration.host) for p in batch if p.report is not None]
        for _ in range(MAX_ATTEMPTS):
            reads = self._read(host_keys)
            txn = Txn()
            for put in batch:
                if put.report is not None:
                    txn.extend(self._report(put, put.report, reads))
                txn.put(self.keys.live(put.registration.host), self._live(put.registration),
                        lease=lease)
            result = self.etcd.txn(txn)
            if result.succeeded:
                return result.revision
            self.stats.lost_races += 1
        raise Aborted("", "", f"host records of {len(batch)} registrations kept changing "
                              f"under them {MAX_ATTEMPTS} times in a row; retry")

    def _read(self, keys: Sequence[str]) -> ReadSet:
        reads = ReadSet()
        if keys:
            results, reads.revision = self.etcd.read([Read(k) for k in keys])
            reads.keys = {key: (kvs[0] if kvs else None)
                          for key, kvs in zip(keys, results, strict=True)}
        return reads

    def _report(self, put: _Put, record: HostRecord, reads: ReadSet) -> Txn:
        """The host record's write (nothing if unchanged) with its compare and the write
        hooks' additions (the audit record, as the agent that sent the hello)."""
        key = self.keys.host(record.id)
        plan = plan_report(reads, key, record)
        if isinstance(plan, Unchanged):
            return Txn()
        plan.require_revision(key, reads.mod_revision(key))
        context = WriteContext("report_host", f"host {record.id}",
                               reads.previous(plan.written_keys()), reads)
        with _as(put.caller):
            for hook in self.hooks:
                hook(plan, context)
        return plan

    def _live(self, registration: Registration) -> bytes:
        return encode(LiveRecord(registration.host, self.replica, registration.agent_endpoint,
                                 registration.registered_at))

    def _settle(self, batch: Sequence[_Put], lease: int, revision: int) -> None:
        emptied = []
        with self._ready:
            self._holders[lease] = set()
            for put in batch:
                registration = put.registration
                old = registration.lease
                registration.lease, registration.revision = lease, revision
                self._holders[lease].add(registration)
                if old and old != lease:
                    others = self._holders.get(old)
                    if others is not None:
                        others.discard(registration)
                        if not others:
                            del self._holders[old]
                            self._failing.pop(old, None)
                            emptied.append(old)
                if put.abandoned or registration.released:
                    registration.released = True
                    self._releases.append(registration)
                put.done = True
                put.finished.set()
            self.stats.batches += 1
            self.stats.registered += len(batch)
        for old in emptied:
            self._revoke_quietly(old)

    def _failed(self, batch: Sequence[_Put], error: EtcdError | StoreError) -> None:
        refused = error if isinstance(error, StoreError) else _store_error(error)
        waited = [p for p in batch if p.waited]
        if len(waited) < len(batch):
            _log.warning("putting %d registrations again failed: %s", len(batch) - len(waited),
                         error)
        with self._ready:
            self._refuse(waited, refused)

    # --- releases ---------------------------------------------------------------------

    def _write_releases(self, releases: Sequence[Registration]) -> bool:
        revoke, delete = self._plan_releases(releases)
        for lease in revoke:  # nothing live is left on it: the keys go with it
            self._revoke_quietly(lease)
        written = True
        for chunk in _distinct_hosts(delete, RELEASES_PER_TXN):
            written = self._delete(chunk) and written
        return written

    def _plan_releases(self, releases: Sequence[Registration]
                       ) -> tuple[list[int], list[Registration]]:
        """Under the lock: leases left with no live registration (revoke them) and the
        keys to delete one by one (their leases carry others)."""
        by_lease: dict[int, list[Registration]] = {}
        with self._ready:
            for registration in dict.fromkeys(releases):
                if registration in self._holders.get(registration.lease, ()):
                    by_lease.setdefault(registration.lease, []).append(registration)
            revoke, delete = [], []
            for lease, released in by_lease.items():
                if all(r.released for r in self._holders[lease]):
                    del self._holders[lease]
                    self._failing.pop(lease, None)
                    revoke.append(lease)
                    self.stats.releases += len(released)
                else:
                    delete.extend(released)
        return revoke, delete

    def _delete(self, chunk: Sequence[Registration]) -> bool:
        """Delete each key of ``chunk`` if it still has the revision its registration put."""
        txn = Txn()
        for registration in chunk:
            key = self.keys.live(registration.host)
            txn.when(Txn().require_revision(key, registration.revision), Txn().delete(key))
        try:
            self.etcd.txn(txn)
        except EtcdError as error:
            _log.warning("releasing %d registrations failed (retrying): %s", len(chunk), error)
            now = self.clock()
            with self._ready:
                self._releases.extend(chunk)
                for registration in chunk:
                    self._failing.setdefault(registration.lease, now)
            return False
        emptied = []
        with self._ready:
            for registration in chunk:
                holders = self._holders.get(registration.lease)
                if holders is None:
                    continue
                holders.discard(registration)
                self._failing.pop(registration.lease, None)
                if not holders:
                    del self._holders[registration.lease]
                    emptied.append(registration.lease)
            self.stats.releases += len(chunk)
        for lease in emptied:
            self._revoke_quietly(lease)
        return True

    # --- etcd lease calls -------------------------------------------------------------

    def _grant(self) -> int:
        def send(client: Any) -> int:
            reply = etcdrpc.LeaseStub(client.channel).LeaseGrant(
                etcdrpc.LeaseGrantRequest(TTL=self.ttl), timeout=self.etcd.config.timeout,
                metadata=client.metadata)
            return int(reply.ID)

        lease = self.etcd.call(send, wait=0)
        self.stats.grants += 1
        return lease

    def _revoke_quietly(self, lease: int) -> None:
        """Best effort: a lease etcd cannot be told about is kept alive by nobody, and
        lapses within the TTL."""
        def send(client: Any) -> None:
            etcdrpc.LeaseStub(client.channel).LeaseRevoke(
                etcdrpc.LeaseRevokeRequest(ID=lease), timeout=self.etcd.config.timeout,
                metadata=client.metadata)

        with contextlib.suppress(EtcdError):
            self.etcd.call(send, wait=0)
            self.stats.revokes += 1


def batches(puts: Sequence[_Put], keys: Keys, hooks: int) -> Iterator[list[_Put]]:
    """``puts`` in order, cut into transactions within etcd's limits; a host twice (a
    redial while its old stream is still open) goes to a later one, so the newer wins."""
    batch: list[_Put] = []
    hosts: set[str] = set()
    ops = size = 0
    for put in puts:
        host = put.registration.host
        cost, weight = 1, len(keys.live(host)) + 256
        if put.report is not None:
            cost += 1 + hooks
            weight += 4 * len(encode(put.report)) + 1024  # the record, its audit (before, after)
        if batch and (host in hosts or len(batch) >= MAX_BATCH or ops + cost > MAX_TXN_OPS
                      or size + weight > BATCH_BYTES):
            yield batch
            batch, hosts, ops, size = [], set(), 0, 0
        batch.append(put)
        hosts.add(host)
        ops, size = ops + cost, size + weight
    if batch:
        yield batch


def _distinct_hosts(registrations: Sequence[Registration], size: int
                    ) -> Iterator[list[Registration]]:
    """Chunks of at most ``size``, never one key twice in a chunk."""
    chunk: list[Registration] = []
    hosts: set[str] = set()
    for registration in registrations:
        if chunk and (registration.host in hosts or len(chunk) >= size):
            yield chunk
            chunk, hosts = [], set()
        chunk.append(registration)
        hosts.add(registration.host)
    if chunk:
        yield chunk


@contextlib.contextmanager
def _as(caller: tuple[Identity, Grant] | None) -> Iterator[None]:
    if caller is None:
        yield
        return
    with acting_as(*caller):
        yield


def _store_error(error: EtcdError) -> StoreError:
    """The store error (UNAVAILABLE "etcd is unreachable, retry", ...) of ``error``."""
    try:
        with etcd_errors():
            raise error
    except StoreError as mapped:
        return mapped
    raise AssertionError("etcd_errors maps every etcd error")

"""Host writes: add, report (an agent's registration), remove (with cascade)."""

from __future__ import annotations

from collections.abc import Sequence

from controller.etcd import Txn
from controller.store.core import ReadSet, Unchanged
from controller.store.errors import AlreadyExists, FailedPrecondition, NotFound
from controller.store.reads import StoreReads, check_expected
from controller.store.records import (
    ClaimsOfGuard,
    HostClaim,
    HostRecord,
    Nic,
    PrefixGuard,
    encode,
)

# Claims removed per transaction by a cascade: two operations each (the claim, its
# prefix guard) and one compare each stay well inside etcd's 128 per transaction.
CASCADE_CHUNK = 40


class HostWrites(StoreReads):
    def add_host(self, host: str, *, expected_revision: int | None = None) -> int:
        """A host ahead of its agent; ALREADY_EXISTS if it is there."""
        key = self.keys.host(host)

        def attempt() -> tuple[ReadSet, Txn | Unchanged]:
            reads = self.read(keys=[key])
            current = reads.mod_revision(key)
            check_expected(expected_revision, current, f"host {host}")
            if current:
                raise AlreadyExists("id", host, "host already exists")
            return reads, Txn().put(key, encode(HostRecord(host)))

        return self.write("add_host", f"host {host}", attempt)

    def report_host(self, host: str, nics: Sequence[Nic], agent_endpoint: str = "",
                    software_version: str = "") -> int:
        """What a host's agent reported (its NICs, endpoint, version): creates the host on
        its first registration, updates it after; unchanged reports write nothing."""
        key = self.keys.host(host)
        record = HostRecord(host, tuple(nics), agent_endpoint, software_version)

        def attempt() -> tuple[ReadSet, Txn | Unchanged]:
            reads = self.read(keys=[key])
            return reads, plan_report(reads, key, record)

        return self.write("report_host", f"host {host}", attempt)

    def remove_host(self, host: str, *, cascade: bool = False,
                    expected_revision: int | None = None) -> int:
        """Remove a host (and its policy override and status); with ``cascade`` its aliases
        and claims too.

        Without ``cascade`` a host that still has aliases or claims is
        FAILED_PRECONDITION. A cascade of more than :data:`CASCADE_CHUNK`
        claims removes them in transactions of that many first (each leaves a
        consistent store: the host with fewer claims), then the host.
        """
        subject = f"host {host}"
        claims_key = self.keys.claims_of(host)
        revision = 0
        while cascade:
            reads = self.read(keys=[self.keys.host(host), claims_key])
            if reads.kv(self.keys.host(host)) is None:
                break  # the final attempt answers NOT_FOUND
            check_expected(expected_revision, reads.mod_revision(self.keys.host(host)), subject)
            guard = reads.record(ClaimsOfGuard, claims_key)
            if guard is None or len(guard.record.claims) <= CASCADE_CHUNK:
                break
            revision = self.write("remove_host", subject,
                                  lambda: self._drop_claims_chunk(host, CASCADE_CHUNK))
        final = self.write("remove_host", subject,
                           lambda: self._remove_host_attempt(host, cascade, expected_revision))
        return max(final, revision)

    def _host_claims(self, reads: ReadSet, host: str) -> list[HostClaim]:
        guard = reads.record(ClaimsOfGuard, self.keys.claims_of(host))
        return list(guard.record.claims) if guard is not None else []

    def _drop_claims_chunk(self, host: str, count: int) -> tuple[ReadSet, Txn | Unchanged]:
        claims_key = self.keys.claims_of(host)
        reads = self.read(keys=[self.keys.host(host), claims_key])
        claims = self._host_claims(reads, host)
        chunk, rest = claims[:count], claims[count:]
        txn = Txn()
        self._release_claims(reads, txn, host, chunk)
        txn.put(claims_key, encode(ClaimsOfGuard(host, tuple(rest))))
        return reads, txn

    def _release_claims(self, reads: ReadSet, txn: Txn, host: str,
                        claims: Sequence[HostClaim]) -> None:
        """Delete ``claims`` of ``host`` and take them out of their prefix guards."""
        prefixes = sorted({claim.prefix for claim in claims})
        self.read(reads, keys=[self.keys.prefix_guard(p) for p in prefixes])
        for claim in claims:
            txn.delete(self.keys.claim(claim.prefix, host, claim.ifname))
        for prefix in prefixes:
            key = self.keys.prefix_guard(prefix)
            stored = reads.record(PrefixGuard, key)
            gone = {c.ifname for c in claims if c.prefix == prefix}
            kept = tuple(c for c in (stored.record.claims if stored else ())
                         if not (c.host == host and c.ifname in gone))
            if kept:
                txn.put(key, encode(PrefixGuard(prefix, kept)))
            else:
                txn.delete(key)

    def _remove_host_attempt(self, host: str, cascade: bool,
                             expected: int | None) -> tuple[ReadSet, Txn | Unchanged]:
        host_key = self.keys.host(host)
        aliases = self.keys.aliases(host)
        # A cascade deletes whatever is under the host's aliases; without one, an alias
        # added since the read must make the removal fail (the range is compared).
        keys = [host_key, self.keys.claims_of(host)]
        reads = (self.read(keys=keys, unguarded=[aliases]) if cascade
                 else self.read(keys=keys, ranges=[aliases]))
        if reads.kv(host_key) is None:
            raise NotFound("id", host, "no such host")
        check_expected(expected, reads.mod_revision(host_key), f"host {host}")
        claims = self._host_claims(reads, host)
        alias_count = len(reads.ranges[aliases][0])
        if not cascade and (alias_count or claims):
            raise FailedPrecondition(
                "id", host, f"host still has {_count(alias_count, 'alias', 'aliases')} and "
                            f"{_count(len(claims), 'prefix claim', 'prefix claims')}: delete "
                            "them first, or remove it with cascade (vrc host del --cascade)")
        txn = Txn().delete(host_key)
        if cascade:
            txn.delete_prefix(aliases)
            txn.delete_prefix(self.keys.same_prefix_guards(host))
            self._release_claims(reads, txn, host, claims)
        # What is about the host itself goes with it, cascade or not.
        txn.delete(self.keys.override(host))
        txn.delete(self.keys.status(host))
        txn.delete(self.keys.claims_of(host))
        return reads, txn


def plan_report(reads: ReadSet, key: str, record: HostRecord) -> Txn | Unchanged:
    """The write of an agent's report, ``key`` read into ``reads``: the host record put,
    or nothing when the stored one is the same (also for the batched registrations of
    :mod:`controller.sync.registrar`)."""
    stored = reads.record(HostRecord, key)
    if stored is not None and stored.record == record:
        return Unchanged(stored.mod_revision)
    return Txn().put(key, encode(record))


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"

"""Prefix claims: a cluster prefix claimed by (host, interface), with its guards.

``prefixes/{prefix}/{host}/{ifname}`` is the claim; ``guards/prefix/{prefix}``
lists a prefix's claimants oldest first (the compare-and-swap point for
"under ``refuse`` one claimant per prefix") and ``guards/claims-of/{host}`` a
host's claims (so removing the host finds them all, and a claim added while
it is being removed makes the removal retry). Claims follow the cluster-wide
same-prefix mode: they span hosts, so one host's override cannot decide them.
Roles (owner, standby, down) are computed when read, never stored.
"""

from __future__ import annotations

from controller.etcd import Txn
from controller.store.aliases import AliasWrites
from controller.store.core import ReadSet, Unchanged
from controller.store.errors import AlreadyExists, NotFound, ResourceExhausted
from controller.store.logic import interface_on_host
from controller.store.reads import check_expected
from controller.store.records import (
    Claimant,
    ClaimRecord,
    ClaimsOfGuard,
    HostClaim,
    HostRecord,
    Mode,
    PolicyRecord,
    PrefixGuard,
    encode,
)

MAX_CLAIMS_PER_PREFIX = 32  # deleting every claim of a prefix stays one transaction
MAX_CLAIMS_PER_HOST = 1024


class ClaimWrites(AliasWrites):
    def put_claim(self, prefix: str, host: str, ifname: str, *,
                  expected_revision: int | None = None) -> int:
        """Claim ``prefix`` (canonical "A/LEN") for ``host``'s ``ifname``."""
        subject = f"claim of {prefix} by {host}/{ifname}"

        def attempt() -> tuple[ReadSet, Txn | Unchanged]:
            key = self.keys.claim(prefix, host, ifname)
            guard_key = self.keys.prefix_guard(prefix)
            mine_key = self.keys.claims_of(host)
            reads = self.read(keys=[self.keys.host(host), key, guard_key, mine_key,
                                    self.keys.policy()])
            stored_host = reads.record(HostRecord, self.keys.host(host))
            if stored_host is None:
                raise NotFound("host", host, "no such host (vrc host add adds one)")
            interface_on_host(stored_host.record, ifname, "ifname")
            check_expected(expected_revision, reads.mod_revision(key), subject)
            if reads.kv(key) is not None:
                return reads, Unchanged(reads.mod_revision(key))
            guard = reads.record(PrefixGuard, guard_key)
            claimants = guard.record.claims if guard is not None else ()
            policy = reads.record(PolicyRecord, self.keys.policy())
            if policy is not None and policy.record.mode is Mode.REFUSE and claimants:
                owner = claimants[0]
                raise AlreadyExists("prefix", prefix,
                                    f"already claimed by {owner.host}/{owner.ifname} "
                                    "(same-prefix policy: refuse)")
            if len(claimants) >= MAX_CLAIMS_PER_PREFIX:
                raise ResourceExhausted("prefix", prefix, f"already has {len(claimants)} "
                                        f"claims (limit {MAX_CLAIMS_PER_PREFIX})")
            mine = reads.record(ClaimsOfGuard, mine_key)
            held = mine.record.claims if mine is not None else ()
            if len(held) >= MAX_CLAIMS_PER_HOST:
                raise ResourceExhausted("host", host, f"already has {len(held)} claims "
                                        f"(limit {MAX_CLAIMS_PER_HOST})")
            txn = Txn().put(key, encode(ClaimRecord(prefix, host, ifname)))
            txn.put(guard_key, encode(PrefixGuard(prefix, (*claimants, Claimant(host, ifname)))))
            txn.put(mine_key, encode(ClaimsOfGuard(host, (*held, HostClaim(prefix, ifname)))))
            return reads, txn

        return self.write("put_claim", subject, attempt)

    def delete_claims(self, prefix: str, host: str = "", ifname: str = "", *,
                      expected_revision: int | None = None) -> int:
        """Delete the claims of ``prefix`` (by ``host``, on ``ifname``; empty: any).

        ``expected_revision`` is compared with the latest revision of the
        claims it deletes.
        """
        who = f"{host}/{ifname}" if ifname else (host or "anyone")
        subject = f"claim of {prefix} by {who}"

        def attempt() -> tuple[ReadSet, Txn | Unchanged]:
            guard_key = self.keys.prefix_guard(prefix)
            reads = self.read(keys=[guard_key], unguarded=[self.keys.claims(prefix)])
            guard = reads.record(PrefixGuard, guard_key)
            claimants = guard.record.claims if guard is not None else ()
            gone = [c for c in claimants
                    if (not host or c.host == host) and (not ifname or c.ifname == ifname)]
            if not gone:
                raise NotFound("prefix", prefix, f"no claim by {who}")
            stored = {s.key: s.mod_revision for s in
                      reads.records(ClaimRecord, self.keys.claims(prefix))}
            latest = max(stored.get(self.keys.claim(prefix, c.host, c.ifname), 0) for c in gone)
            check_expected(expected_revision, latest, subject)
            hosts = sorted({c.host for c in gone})
            self.read(reads, keys=[self.keys.claims_of(h) for h in hosts])
            txn = Txn()
            for claim in gone:
                txn.delete(self.keys.claim(prefix, claim.host, claim.ifname))
            kept = tuple(c for c in claimants if c not in gone)
            if kept:
                txn.put(guard_key, encode(PrefixGuard(prefix, kept)))
            else:
                txn.delete(guard_key)
            for name in hosts:
                self._forget_claims(reads, txn, name, prefix,
                                    {c.ifname for c in gone if c.host == name})
            return reads, txn

        return self.write("delete_claims", subject, attempt)

    def _forget_claims(self, reads: ReadSet, txn: Txn, host: str, prefix: str,
                       ifnames: set[str]) -> None:
        key = self.keys.claims_of(host)
        mine = reads.record(ClaimsOfGuard, key)
        held = mine.record.claims if mine is not None else ()
        kept = tuple(c for c in held if not (c.prefix == prefix and c.ifname in ifnames))
        if kept:
            txn.put(key, encode(ClaimsOfGuard(host, kept)))
        else:
            txn.delete(key)

"""Reading the desired state: hosts (with liveness), aliases, claims with roles, policy.

Each listing is read at one revision (one read-only transaction) and returns
it, so a client can watch from exactly there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from controller.store.core import ReadSet, StoreCore
from controller.store.errors import Aborted, NotFound
from controller.store.logic import RankedClaim, claim_roles, effective_mode
from controller.store.records import (
    AliasRecord,
    ClaimRecord,
    HostRecord,
    LiveRecord,
    Mode,
    PolicyRecord,
    Role,
    Stored,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    items: list[T]
    revision: int  # the store revision the listing was read at


@dataclass(frozen=True, slots=True)
class HostView:
    record: HostRecord
    revision: int  # the host record's mod revision
    live: LiveRecord | None = None  # its agent's registration, while it lasts

    @property
    def up(self) -> bool:
        return self.live is not None


@dataclass(frozen=True, slots=True)
class ClaimView:
    record: ClaimRecord
    create_revision: int
    mod_revision: int
    role: Role


@dataclass(frozen=True, slots=True)
class PolicyView:
    mode: Mode  # cluster-wide (the default until set)
    overrides: dict[str, Mode] = field(default_factory=dict)
    revision: int = 0  # mod revision of the record asked about (cluster or the host's override)
    effective: Mode | None = None  # the asked-for host's effective mode
    read_revision: int = 0


@dataclass(frozen=True, slots=True)
class StatusView:
    """What the store holds about a host's agent (the Sync side fills ``status``)."""

    host: HostView
    status: bytes | None  # the raw status record (issue 13 defines it); None: nothing applied
    revision: int


def check_expected(expected: int | None, current: int, subject: str) -> None:
    """ABORTED unless ``expected`` is None or the record's current revision (0: absent)."""
    if expected is None or expected == current:
        return
    state = "it does not exist" if current == 0 else f"it is at revision {current}"
    raise Aborted("expected_revision", expected,
                  f"{subject} has changed: {state}", revision=current)


class StoreReads(StoreCore):
    """The read side; every method answers at one revision."""

    def _policy_in(self, reads: ReadSet) -> tuple[Mode | None, dict[str, Mode]]:
        policy = reads.record(PolicyRecord, self.keys.policy())
        overrides = {s.record.host: s.record.mode
                     for s in reads.records(PolicyRecord, self.keys.overrides())}
        return (policy.record.mode if policy else None), overrides

    def _live_in(self, reads: ReadSet) -> dict[str, LiveRecord]:
        return {s.record.host: s.record for s in reads.records(LiveRecord, self.keys.lives())}

    def list_hosts(self) -> Listing[HostView]:
        reads = self.read(unguarded=[self.keys.hosts(), self.keys.lives()])
        live = self._live_in(reads)
        hosts = [HostView(s.record, s.mod_revision, live.get(s.record.id))
                 for s in reads.records(HostRecord, self.keys.hosts())]
        return Listing(hosts, reads.revision)

    def get_host(self, host: str) -> HostView:
        reads = self.read(keys=[self.keys.host(host), self.keys.live(host)])
        return self._host_in(reads, host, "id")

    def _host_in(self, reads: ReadSet, host: str, field: str) -> HostView:
        stored = reads.record(HostRecord, self.keys.host(host))
        if stored is None:
            raise NotFound(field, host, "no such host (vrc host add adds one)")
        live = reads.record(LiveRecord, self.keys.live(host))
        return HostView(stored.record, stored.mod_revision, live.record if live else None)

    def list_aliases(self, host: str = "") -> Listing[Stored[AliasRecord]]:
        """Every alias (of ``host``, which must exist), sorted by host, interface, address."""
        prefix = self.keys.aliases(host)
        reads = self.read(keys=[self.keys.host(host)] if host else [], unguarded=[prefix])
        if host and reads.kv(self.keys.host(host)) is None:
            raise NotFound("host", host, "no such host")
        aliases = reads.records(AliasRecord, prefix)
        aliases.sort(key=lambda s: (s.record.host, s.record.ifname, _address_order(s.record)))
        return Listing(aliases, reads.revision)

    def list_claims(self, prefix: str = "") -> Listing[ClaimView]:
        """Every claim (of ``prefix``), with its role from the policy and liveness."""
        claims_prefix = self.keys.claims(prefix)
        reads = self.read(keys=[self.keys.policy()],
                          unguarded=[claims_prefix, self.keys.overrides(), self.keys.lives()])
        cluster, _ = self._policy_in(reads)
        mode = effective_mode(cluster, {}, "")
        live = self._live_in(reads)
        by_prefix: dict[str, list[Stored[ClaimRecord]]] = {}
        for stored in reads.records(ClaimRecord, claims_prefix):
            by_prefix.setdefault(stored.record.prefix, []).append(stored)
        views: list[ClaimView] = []
        for name in sorted(by_prefix, key=_prefix_order):
            group = sorted(by_prefix[name], key=lambda s: s.create_revision)
            roles = claim_roles([RankedClaim(s.record, s.create_revision) for s in group], mode,
                                live.__contains__)
            views.extend(ClaimView(s.record, s.create_revision, s.mod_revision, role)
                         for s, role in zip(group, roles, strict=True))
        return Listing(views, reads.revision)

    def get_policy(self, host: str = "") -> PolicyView:
        keys = [self.keys.policy()] + ([self.keys.host(host), self.keys.override(host)]
                                       if host else [])
        reads = self.read(keys=keys, unguarded=[self.keys.overrides()])
        if host and reads.kv(self.keys.host(host)) is None:
            raise NotFound("host", host, "no such host")
        cluster, overrides = self._policy_in(reads)
        subject_key = self.keys.override(host) if host else self.keys.policy()
        return PolicyView(effective_mode(cluster, {}, ""), overrides,
                          reads.mod_revision(subject_key),
                          effective_mode(cluster, overrides, host) if host else None,
                          reads.revision)

    def host_status(self, host: str) -> StatusView:
        reads = self.read(keys=[self.keys.host(host), self.keys.live(host),
                                self.keys.status(host)])
        view = self._host_in(reads, host, "host")
        status = reads.kv(self.keys.status(host))
        return StatusView(view, status.value if status is not None else None, reads.revision)


def _octets(address: str) -> tuple[int, ...]:
    return tuple(int(part) for part in address.split("."))


def _address_order(alias: AliasRecord) -> tuple[int, ...]:
    return _octets(alias.ip)


def _prefix_order(prefix: str) -> tuple[int, ...]:
    address, _, length = prefix.partition("/")
    return (*_octets(address), int(length))

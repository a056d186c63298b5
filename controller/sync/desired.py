"""The cluster's desired state and liveness in memory, fed by the controller's one watch.

:class:`DesiredState` holds every record under the store's root that the
Sync side needs — hosts, aliases, prefix claims, the policy and its
overrides, live registrations, and agents' status records — and is changed
only by :meth:`DesiredState.apply` with the etcd layer's changes (a watch
batch, or the mark-and-sweep of a resync after compaction: both are plain
PUTs and DELETEs). It answers what changed (:class:`Touched`), so the
pipeline recomputes only what depends on it. Pure: no etcd, no threads.

A record that does not decode (edited by hand into something vrc would not
write) is left out and remembered in ``corrupt`` with the reason; it never
stops the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from controller.etcd import Change, ChangeKind, KeyValue
from controller.store import (
    AliasRecord,
    ClaimRecord,
    Corrupt,
    HostRecord,
    Keys,
    LiveRecord,
    Mode,
    PolicyRecord,
    decode,
    effective_mode,
)
from controller.topology import Alias, Claim, ClusterState, Host, SamePrefix
from controller.topology.graph import SegmentKey, changes_no_route, segment_key


@dataclass(slots=True)
class Touched:
    """What one batch of changes touched."""

    alias_hosts: set[str] = field(default_factory=set)   # hosts whose aliases changed
    alias_keys: dict[str, set[str]] = field(default_factory=dict)  # host -> alias keys changed
    policy_hosts: set[str] = field(default_factory=set)  # hosts whose override changed
    cluster_policy: bool = False
    hosts: set[str] = field(default_factory=set)         # host records put or deleted
    live: set[str] = field(default_factory=set)          # registrations that came or went
    status: set[str] = field(default_factory=set)        # status records written
    claims: bool = False
    segments: bool = False  # an alias change that may move a route (not a routeless one)

    @property
    def topology(self) -> bool:
        """Whether the cluster routes may have changed (their inputs did). An alias alone
        on its subnet, neither claimed nor claiming, changes none
        (``controller.topology.graph.changes_no_route``): its host's slice changes, the
        routes are not computed again."""
        return bool(self.segments or self.hosts or self.live or self.claims
                    or self.cluster_policy)

    @property
    def anything(self) -> bool:
        return self.topology or bool(self.policy_hosts or self.status)


@dataclass(frozen=True, slots=True)
class Registration:
    """A host's live registration: the record and the lease it hangs on."""

    record: LiveRecord
    lease: int


@dataclass(slots=True)
class DesiredState:
    keys: Keys = field(default_factory=Keys)
    revision: int = 0
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    aliases: dict[str, dict[str, tuple[AliasRecord, int]]] = field(default_factory=dict)
    claims: dict[str, tuple[ClaimRecord, int]] = field(default_factory=dict)  # key -> create rev
    policy: Mode | None = None
    policy_revision: int = 0
    overrides: dict[str, tuple[Mode, int]] = field(default_factory=dict)
    live: dict[str, Registration] = field(default_factory=dict)
    statuses: dict[str, bytes] = field(default_factory=dict)
    corrupt: dict[str, str] = field(default_factory=dict)
    # The route computation's inputs, made when their record changes rather than for
    # every batch (parsing every address each time was most of a batch's cost), and what
    # decides whether an alias change can move a route: which hosts hold an address on
    # each segment, and the claimed (network, length) pairs (with a count of claims).
    _alias_inputs: dict[str, Alias] = field(default_factory=dict)
    _claim_inputs: dict[str, Claim] = field(default_factory=dict)
    _on_segment: dict[SegmentKey, dict[str, int]] = field(default_factory=dict)
    _claimed: dict[tuple[int, int], int] = field(default_factory=dict)

    @classmethod
    def load(cls, kvs: Iterable[KeyValue], revision: int, keys: Keys | None = None
             ) -> DesiredState:
        state = cls(keys or Keys())
        state.apply(Change(ChangeKind.PUT, kv.key, kv.value, kv.mod_revision, kv.create_revision,
                           kv.lease) for kv in kvs)
        state.revision = revision
        return state

    # --- reading ----------------------------------------------------------------------

    def mode_of(self, host: str) -> Mode:
        """The host's effective same-prefix mode."""
        overrides = {h: mode for h, (mode, _) in self.overrides.items()}
        return effective_mode(self.policy, overrides, host)

    def mode_revision(self, host: str) -> int:
        """The revision of the record that decides the host's mode (0: the default)."""
        if host in self.overrides:
            return self.overrides[host][1]
        return self.policy_revision

    def aliases_of(self, host: str) -> list[tuple[AliasRecord, int]]:
        return list(self.aliases.get(host, {}).values())

    def is_up(self, host: str) -> bool:
        return host in self.live

    def cluster_state(self) -> ClusterState:
        """The route computation's input (``controller.topology``)."""
        hosts = tuple(Host(h, h in self.live) for h in sorted(self.hosts))
        inputs = self._alias_inputs
        aliases = tuple(inputs[key] for host in sorted(self.aliases) if host in self.hosts
                        for key in self.aliases[host])
        claims = tuple(self._claim_inputs[key] for key, (claim, _) in self.claims.items()
                       if claim.host in self.hosts)
        policy = SamePrefix((self.policy or Mode.ALLOW).value)
        return ClusterState(hosts, aliases, claims, policy)

    # --- changing ---------------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> Touched:
        touched = Touched()
        for change in changes:
            try:
                self._apply_one(change, touched)
            except Corrupt as error:
                self.corrupt[change.key] = str(error)
                self._forget(change.key, touched)
            else:
                self.corrupt.pop(change.key, None)
            self.revision = max(self.revision, change.revision)
        return touched

    def _apply_one(self, change: Change, touched: Touched) -> None:
        key = change.key
        kind = self.keys.kind_of(key)
        if change.kind is ChangeKind.DELETE:
            self._forget(key, touched)
            return
        value, revision = change.value, change.revision
        if kind == "hosts":
            record = decode(HostRecord, key, value)
            if self.hosts.get(record.id) != record:
                self.hosts[record.id] = record
                touched.hosts.add(record.id)
        elif kind == "aliases":
            alias = decode(AliasRecord, key, value)
            self.aliases.setdefault(alias.host, {})[key] = (alias, revision)
            self._drop_alias_input(key, touched)
            self._add_alias_input(key, Alias(
                alias.host, alias.ifname, IPv4Address(alias.ip), alias.plen,
                IPv4Address(alias.destination) if alias.destination else None), touched)
            touched.alias_hosts.add(alias.host)
            touched.alias_keys.setdefault(alias.host, set()).add(key)
        elif kind == "prefixes":
            claim = decode(ClaimRecord, key, value)
            created = change.create_revision or revision
            self.claims[key] = (claim, created)
            self._drop_claim_input(key)
            made = self._claim_inputs[key] = Claim(IPv4Network(claim.prefix), claim.host,
                                                   claim.ifname, created)
            claimed = _claimed_key(made)
            self._claimed[claimed] = self._claimed.get(claimed, 0) + 1
            touched.claims = True
        elif kind == "policy":
            self.policy = decode(PolicyRecord, key, value).mode
            self.policy_revision = revision
            touched.cluster_policy = True
        elif kind == "overrides":
            override = decode(PolicyRecord, key, value)
            self.overrides[override.host] = (override.mode, revision)
            touched.policy_hosts.add(override.host)
        elif kind == "live":
            live = decode(LiveRecord, key, value)
            before = self.live.get(live.host)
            self.live[live.host] = Registration(live, change.lease)
            if before is None:
                touched.live.add(live.host)
        elif kind == "status":
            host = self.keys.parts(key)[0]
            self.statuses[host] = value
            touched.status.add(host)

    def _forget(self, key: str, touched: Touched) -> None:
        kind = self.keys.kind_of(key)
        parts = self.keys.parts(key) if kind else []
        if kind == "hosts" and parts and self.hosts.pop(parts[0], None) is not None:
            touched.hosts.add(parts[0])
        elif kind == "aliases" and parts:
            host_aliases = self.aliases.get(parts[0], {})
            self._drop_alias_input(key, touched)
            if host_aliases.pop(key, None) is not None:
                touched.alias_hosts.add(parts[0])
                touched.alias_keys.setdefault(parts[0], set()).add(key)
            if not host_aliases:
                self.aliases.pop(parts[0], None)
        elif kind == "prefixes" and self.claims.pop(key, None) is not None:
            self._drop_claim_input(key)
            touched.claims = True
        elif kind == "policy" and self.policy is not None:
            self.policy = None
            self.policy_revision = 0
            touched.cluster_policy = True
        elif kind == "overrides" and parts and self.overrides.pop(parts[0], None) is not None:
            touched.policy_hosts.add(parts[0])
        elif kind == "live" and parts and self.live.pop(parts[0], None) is not None:
            touched.live.add(parts[0])
        elif kind == "status" and parts and self.statuses.pop(parts[0], None) is not None:
            touched.status.add(parts[0])

    # --- the route computation's inputs -----------------------------------------------

    def _add_alias_input(self, key: str, alias: Alias, touched: Touched) -> None:
        self._alias_inputs[key] = alias
        self._note_segment(alias, touched)
        holders = self._on_segment.setdefault(segment_key(alias), {})
        holders[alias.host] = holders.get(alias.host, 0) + 1

    def _drop_alias_input(self, key: str, touched: Touched) -> None:
        alias = self._alias_inputs.pop(key, None)
        if alias is None:
            return
        segment = segment_key(alias)
        holders = self._on_segment[segment]
        holders[alias.host] -= 1
        if not holders[alias.host]:
            del holders[alias.host]
            if not holders:
                del self._on_segment[segment]
        self._note_segment(alias, touched)

    def _note_segment(self, alias: Alias, touched: Touched) -> None:
        """Mark the batch as one that may move routes unless ``alias`` (added or removed)
        provably moves none: a down host's aliases join nothing, and a live host's
        alias alone on an unclaimed subnet changes no segment."""
        if touched.segments or alias.host not in self.live:
            return
        holders = self._on_segment.get(segment_key(alias), {})
        others_there = any(host != alias.host for host in holders)
        if not changes_no_route(alias, others_there, self._claimed):
            touched.segments = True

    def _drop_claim_input(self, key: str) -> None:
        claim = self._claim_inputs.pop(key, None)
        if claim is None:
            return
        claimed = _claimed_key(claim)
        self._claimed[claimed] -= 1
        if not self._claimed[claimed]:
            del self._claimed[claimed]


def _claimed_key(claim: Claim) -> tuple[int, int]:
    return int(claim.prefix.network_address), claim.prefix.prefixlen

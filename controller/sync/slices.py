"""From the desired state to every host's slice, and per host what one batch changed.

The pure middle of the Sync pipeline (STYLE.md, "a pipeline of small pure
steps"): the etcd layer's changes go into :class:`~controller.sync.desired.DesiredState`;
:class:`Slices` turns what they touched into per-host deltas, once per
batch, whatever the number of streams:

* a host's **aliases**: only the ones a batch changed are looked at (a host
  with 10,000 aliases costs one item per change, not 10,000), all of them
  when its host record changed;
* its **policy** item when the cluster-wide mode or its override changed;
* its **routes** come from ``controller.topology.compute_routes`` (the pure
  route computation), rerun only when one of its inputs changed (aliases,
  claims, hosts, liveness, the cluster-wide mode) and diffed host by host
  with ``diff_routes``.

Each host's current items are kept (key -> :class:`~controller.sync.items.SliceItem`),
so a delta holds exactly the items whose fingerprint changed, and a new
stream's snapshot is the kept slice. A host that is down keeps the routes
it had: nothing is sent to it, and should it still be connected somewhere
(its registration lapsed while etcd was away), it does not lose its routes
for the moment it takes to register again. When it comes back up its
routes are compared in full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.etcd import Change
from controller.sync.desired import DesiredState, Touched
from controller.sync.items import (
    POLICY_KEY,
    SliceItem,
    alias_item,
    alias_key,
    policy_item,
    route_item,
)
from controller.topology import ClusterRoutes, compute_routes, diff_routes


@dataclass(frozen=True, slots=True)
class HostDelta:
    """What changed in one host's slice at ``version``."""

    host: str
    version: int
    upserts: tuple[SliceItem, ...] = ()
    removals: tuple[str, ...] = ()


@dataclass(slots=True)
class _Pending:
    upserts: dict[str, SliceItem] = field(default_factory=dict)
    removals: set[str] = field(default_factory=set)


class Slices:
    """Every host's slice, kept current by :meth:`step`; see the module docstring."""

    def __init__(self, state: DesiredState) -> None:
        self.state = state
        self.routes: ClusterRoutes = compute_routes(state.cluster_state())
        self.items: dict[str, dict[str, SliceItem]] = {}
        self.changed_at: dict[str, int] = {}  # per host: the last version that changed it
        # per host: the store key of each alias -> its slice key (which names the interface,
        # so an alias moved to another interface leaves its old slice key behind)
        self._alias_slots: dict[str, dict[str, str]] = {}
        for host in state.hosts:
            self.items[host] = self._full(host, state.revision)
            self.changed_at[host] = max((i.version for i in self.items[host].values()),
                                        default=0)

    @property
    def revision(self) -> int:
        return self.state.revision

    def slice_of(self, host: str) -> dict[str, SliceItem]:
        return self.items.get(host, {})

    # --- one batch --------------------------------------------------------------------

    def step(self, changes: Iterable[Change], revision: int) -> tuple[list[HostDelta], Touched]:
        """Take in one batch (its last revision ``revision``); the per-host deltas."""
        touched = self.state.apply(changes)
        self.state.revision = max(self.state.revision, revision)
        pending: dict[str, _Pending] = {}
        for host in touched.hosts:
            if host in self.state.hosts and host not in self.items:
                self.items[host] = {}  # new: filled below, item by item
        self._aliases(touched, revision, pending)
        policy_hosts = set(self.items) if touched.cluster_policy else (
            touched.policy_hosts | touched.hosts)
        self._policies(policy_hosts, revision, pending)
        if touched.topology:
            self._routes(touched, revision, pending)
        removed = sorted(h for h in touched.hosts if h not in self.state.hosts
                         and h in self.items)
        deltas = [self._commit(host, change, revision) for host, change in sorted(
            pending.items()) if host not in removed]
        for host in removed:  # its record is gone: so is everything it was sent
            deltas.append(HostDelta(host, revision, (), tuple(sorted(self.items.pop(host)))))
            self.changed_at.pop(host, None)
            self._alias_slots.pop(host, None)
        return [d for d in deltas if d.upserts or d.removals], touched

    def _full(self, host: str, version: int) -> dict[str, SliceItem]:
        items = {item.key: item for item in self._alias_items(host)}
        self._alias_slots[host] = self._slots_of(host)
        policy = policy_item(self.state.mode_of(host), self.state.mode_revision(host) or version)
        items[POLICY_KEY] = policy
        for route in self.routes.routes_for(host):
            item = route_item(route, version)
            items[item.key] = item
        return items

    def _alias_items(self, host: str) -> list[SliceItem]:
        return [alias_item(record, revision) for record, revision in
                self.state.aliases_of(host)]

    def _slots_of(self, host: str) -> dict[str, str]:
        return {key: alias_key(record.ifname, record.address)
                for key, (record, _) in self.state.aliases.get(host, {}).items()}

    def _aliases(self, touched: Touched, revision: int, pending: dict[str, _Pending]) -> None:
        for host in touched.alias_hosts | touched.hosts:
            current = self.items.get(host)
            if current is None:
                continue
            change = pending.setdefault(host, _Pending())
            if host in touched.hosts or host not in self._alias_slots:
                self._all_aliases(host, current, revision, change)
            else:
                self._changed_aliases(host, touched.alias_keys.get(host, set()), current,
                                      revision, change)

    def _all_aliases(self, host: str, current: dict[str, SliceItem], revision: int,
                     change: _Pending) -> None:
        wanted = {item.key: item for item in self._alias_items(host)}
        for key, item in wanted.items():
            if key not in current or current[key].fingerprint != item.fingerprint:
                change.upserts[key] = item._replace(version=revision)
        change.removals.update(k for k in current if k.startswith("alias/")
                               and k not in wanted)
        self._alias_slots[host] = self._slots_of(host)

    def _changed_aliases(self, host: str, keys: set[str], current: dict[str, SliceItem],
                         revision: int, change: _Pending) -> None:
        held = self.state.aliases.get(host, {})
        slots = self._alias_slots[host]
        for key in keys:
            was = slots.pop(key, None)
            found = held.get(key)
            item = alias_item(*found) if found is not None else None
            if item is not None:
                slots[key] = item.key
            if was is not None and was in current and (item is None or item.key != was):
                change.removals.add(was)
            if item is not None and (item.key not in current or
                                     current[item.key].fingerprint != item.fingerprint):
                change.upserts[item.key] = item._replace(version=revision)

    def _policies(self, hosts: set[str], revision: int, pending: dict[str, _Pending]) -> None:
        for host in hosts:
            current = self.items.get(host)
            if current is None:
                continue
            item = policy_item(self.state.mode_of(host), revision)
            old = current.get(POLICY_KEY)
            if old is None or old.fingerprint != item.fingerprint:
                pending.setdefault(host, _Pending()).upserts[POLICY_KEY] = item

    def _routes(self, touched: Touched, revision: int, pending: dict[str, _Pending]) -> None:
        previous = self.routes
        self.routes = compute_routes(self.state.cluster_state(), previous)
        came_up = {h for h in touched.live | touched.hosts if self.state.is_up(h)}
        for host, changes in diff_routes(previous, self.routes).items():
            if host in came_up or host not in self.items or not self.state.is_up(host):
                continue  # down hosts keep their routes; hosts that came up are redone below
            change = pending.setdefault(host, _Pending())
            current = self.items[host]
            for route in changes.upserts:
                item = route_item(route, revision)
                old = current.get(item.key)
                if old is None or old.fingerprint != item.fingerprint:
                    change.upserts[item.key] = item
            change.removals.update(k for k in (f"route/{p}" for p in changes.removals)
                                   if k in current)
        for host in came_up:
            if host not in self.items:
                continue
            wanted = {i.key: i for i in (route_item(r, revision)
                                         for r in self.routes.routes_for(host))}
            current = self.items[host]
            change = pending.setdefault(host, _Pending())
            for key, item in wanted.items():
                if key not in current or current[key].fingerprint != item.fingerprint:
                    change.upserts[key] = item
            change.removals.update(k for k in current if k.startswith("route/")
                                   and k not in wanted)

    def _commit(self, host: str, change: _Pending, revision: int) -> HostDelta:
        current = self.items.setdefault(host, {})
        removals = tuple(sorted(k for k in change.removals if k in current
                                and k not in change.upserts))
        for key in removals:
            del current[key]
        current.update(change.upserts)
        if change.upserts or removals:
            self.changed_at[host] = revision
        return HostDelta(host, revision, tuple(change.upserts[k] for k in sorted(change.upserts)),
                         removals)

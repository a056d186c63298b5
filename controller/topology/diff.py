"""What changed for each host between two results: the Sync server's per-host delta.

Two results over the same numbered hosts (``compute_routes(state,
previous=...)``) share their unchanged searches and next-hop objects, so
most of the comparison is by identity: a prefix whose owners and search are
the same objects changed for nobody; a search that was redone is compared
with the old one host by host, once for all the prefixes it serves. A host
whose liveness or attachments changed, or results over different hosts, are
compared route by route through the fingerprints.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from controller.topology.compute import Answer, ClusterRoutes
from controller.topology.graph import Graph
from controller.topology.model import HostRoute
from controller.topology.paths import Search


@dataclass(frozen=True, slots=True)
class RouteChanges:
    """One host's delta: routes new or changed (by prefix), prefixes no longer routed."""

    upserts: tuple[HostRoute, ...]
    removals: tuple[IPv4Network, ...]


def diff_routes(previous: ClusterRoutes | None,
                current: ClusterRoutes) -> dict[str, RouteChanges]:
    """Per host whose routes differ between ``previous`` and ``current``, the delta
    (hosts with none are left out). ``previous`` None: everything is new."""
    if previous is None or previous.graph.hosts != current.graph.hosts:
        hosts = sorted(set(current.graph.hosts) | set(() if previous is None
                                                       else previous.graph.hosts))
        return _by_fingerprint(previous, current, hosts)
    old_graph, new_graph = previous.graph, current.graph
    names = new_graph.hosts
    recheck = [names[h] for h in range(len(names))
               if old_graph.up[h] != new_graph.up[h]
               or old_graph.connected[h] != new_graph.connected[h]
               or _segments(old_graph, h) != _segments(new_graph, h)]
    skip = {new_graph.index[name] for name in recheck}
    upserts: dict[int, list[HostRoute]] = {}
    removals: dict[int, list[IPv4Network]] = {}
    compared: dict[tuple[int, int], list[int]] = {}
    everyone = [h for h in range(len(names)) if new_graph.up[h] and h not in skip]
    for prefix in sorted(previous.targets.keys() | current.targets.keys()):
        old = previous.targets.get(prefix)
        new = current.targets.get(prefix)
        if old is not None and new is not None and old.owners == new.owners:
            if old.search is new.search:
                continue  # the same search object: unchanged for every host
            assert old.search is not None and new.search is not None  # owners: a search
            candidates = _changed_hosts(old.search, new.search, compared)
        else:
            candidates = everyone
        for h in candidates:
            if h in skip or not new_graph.up[h]:
                continue
            connected = new_graph.connected[h]
            before: Answer = None if old is None else old.answer(h, connected)
            after: Answer = None if new is None else new.answer(h, connected)
            if before == after:
                continue
            if after is None:
                removals.setdefault(h, []).append(prefix)
            else:
                assert new is not None
                upserts.setdefault(h, []).append(current.route(new, after))
    changes = {names[h]: RouteChanges(tuple(upserts.get(h, ())), tuple(removals.get(h, ())))
               for h in sorted(upserts.keys() | removals.keys())}
    changes.update(_by_fingerprint(previous, current, recheck))
    return dict(sorted(changes.items()))


def _segments(graph: Graph, h: int) -> frozenset[tuple[str, int, int]]:
    """The keys of the segments host ``h`` is on: a segment that vanished (its other
    hosts went down) or formed changes a host's routes without any search noticing."""
    return frozenset(graph.keys[s] for s in graph.segments_of[h])


def _changed_hosts(old: Search, new: Search,
                   compared: dict[tuple[int, int], list[int]]) -> list[int]:
    """Hosts whose answer may differ between two searches (computed once per pair):
    relays whose leg, distance or owner changed, and stubs whose segment was
    reached at another level, by other hosts, or has other ports (addresses)."""
    key = (id(old), id(new))
    found = compared.get(key)
    if found is not None:
        return found
    old_owner = [old.owner] * len(old.distance) if old.nearest is None else old.nearest
    new_owner = [new.owner] * len(new.distance) if new.nearest is None else new.nearest
    found = [h for h, (a, b, c, d, e, f) in enumerate(zip(
        old.legs, new.legs, old.distance, new.distance, old_owner, new_owner, strict=True))
        if a is not b or c != d or e != f]
    old_graph, new_graph = old.finder.graph, new.finder.graph
    old_segment = {k: s for s, k in enumerate(old_graph.keys)}
    moved_segments = set()
    for s, k in enumerate(new_graph.keys):
        t = old_segment.get(k)
        if t is None or old.segment_level[t] != new.segment_level[s] or (
                old.fronts.get(t) != new.fronts.get(s)) or (
                old_graph.ports[t] != new_graph.ports[s]):  # a gateway address changed
            moved_segments.add(s)
    if old.nearest is not None or new.nearest is not None:
        moved_segments.update(s for s, front in new.fronts.items()
                              if any(e != f for e, f in ((old_owner[u], new_owner[u])
                                                         for u in front)))
    stub_segment = new_graph.stub_segment
    found.extend(h for h, s in enumerate(stub_segment) if s in moved_segments)
    compared[key] = found
    return found


def _by_fingerprint(previous: ClusterRoutes | None, current: ClusterRoutes,
                    hosts: list[str]) -> dict[str, RouteChanges]:
    changes: dict[str, RouteChanges] = {}
    for host in hosts:
        before = {} if previous is None else {r.prefix: r.fingerprint
                                              for r in previous.routes_for(host)}
        after = current.routes_for(host)
        upserts = tuple(r for r in after if before.get(r.prefix) != r.fingerprint)
        kept = {r.prefix for r in after}
        removals = tuple(sorted(p for p in before if p not in kept))
        if upserts or removals:
            changes[host] = RouteChanges(upserts, removals)
    return changes


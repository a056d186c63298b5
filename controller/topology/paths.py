"""Shortest paths from every host to the nearest owner of a prefix.

One breadth-first search per distinct set of owner hosts, started from all
of them at once (multi-source BFS), answers every host at once: its hop
count to the nearest owner and its first hops. Prefixes with the same owners
share the search, so the cost is one BFS per owner set, never one per
(host, prefix) pair.

The search walks hosts and segments alternately: from a host to each of its
segments, from a segment to every member not reached yet. A segment is
expanded once, by the first level that reaches it, so a broadcast segment
of k hosts costs k steps, not k² host-to-host edges.

**First hops.** Host ``v`` at distance ``d`` has as candidate next hops its
links to every neighbour ``u`` at distance ``d - 1`` (its *predecessors*),
over every segment they share: each such segment was first reached at level
``d - 1`` (had it been reached earlier, ``v`` would be nearer), so the
links between ``v`` and ``u`` do not depend on the search and are worked out
once per pair of hosts. Under multipath every candidate toward any owner at
the minimal distance is a next hop. Otherwise the one next hop is the first
candidate in ``NextHop.order`` (neighbour id, local interface, gateway).
Each level is processed in ascending host order, so the host that first
reaches ``v`` is its lowest predecessor: the single-path answer is fixed at
the moment ``v`` is reached, at the cost of one dictionary probe.

**Stubs.** A host on a single segment (a server on its rack's subnet) is
never on a shortest path between two others: it would enter and leave by
the same segment. So the search walks relays only (hosts on two segments or
more) plus the owners, and records for each segment the level that reached
it and the hosts of that level that did (its *fronts*). A stub's answer
follows from its segment alone — distance one more than the segment's
level, predecessors the fronts — and is worked out when asked for, so a
data-centre layout where most hosts are stubs costs a search over its
relays only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from controller.topology.graph import Graph
from controller.topology.model import NextHop

#: (neighbour index, local ifname, gateway): sorts like NextHop.order (hosts are
#: numbered in id order).
_Link = tuple[int, str, int]


@dataclass(slots=True, eq=False)
class Leg:
    """A route's next hops, interned (one object per distinct set), with a
    digest of their canonical text and the route fingerprints made from it."""

    next_hops: tuple[NextHop, ...]
    digest: str
    first: int  # the index of the first next hop's host
    fingerprints: dict[int, str] = field(default_factory=dict)


#: How a host reaches the owners: (leg, hops, owner index).
Reached = tuple[Leg, int, int]


@dataclass(frozen=True, slots=True, eq=False)
class Search:
    """The answer of one search.

    For relays and owners: ``distance[h]`` (0: an owner; -1: not reached),
    ``legs[h]`` and ``nearest[h]`` (the owner reached; None when the set
    has one owner, ``owner``). For stubs: ``segment_level[s]`` (-1: not
    reached) and ``fronts[s]``, from which :meth:`reach` works out the rest.
    """

    finder: PathFinder
    distance: list[int]
    legs: list[Leg | None]
    owner: int
    nearest: list[int] | None
    segment_level: list[int]
    fronts: dict[int, tuple[int, ...]]

    def reach(self, h: int) -> Reached | None:
        """How host ``h`` (not an owner) reaches the nearest owner; None: no path."""
        leg = self.legs[h]
        if leg is not None:
            nearest = self.nearest
            return leg, self.distance[h], self.owner if nearest is None else nearest[h]
        s = self.finder.graph.stub_segment[h]
        if s < 0 or self.distance[h] == 0:
            return None
        level = self.segment_level[s]
        if level < 0:
            return None
        front = self.fronts[s]
        finder = self.finder
        if finder.multipath and len(front) > 1:
            leg = finder.union_leg(h, front)
        else:
            leg = finder.pair_leg(h, front[0])
        nearest = self.nearest
        if nearest is None:
            return leg, level + 1, self.owner
        if finder.multipath:
            return leg, level + 1, min(nearest[u] for u in front)
        return leg, level + 1, nearest[front[0]]


class PathFinder:
    """Searches over one graph; keeps what searches share (pair links, legs).

    Given the finder of the previous computation over the same numbered hosts,
    a leg that both use is the very same object, so the results of two
    computations compare by identity (``controller.topology.diff``).
    """

    def __init__(self, graph: Graph, multipath: bool, previous: PathFinder | None = None) -> None:
        self.graph = graph
        self.multipath = multipath
        # per host v: neighbour u -> the links of v toward u, sorted
        self._pair_links: list[dict[int, tuple[_Link, ...]]] = [{} for _ in graph.hosts]
        # per host v: neighbour u -> v's leg toward u (one link, or all of them)
        self._pair_legs: list[dict[int, Leg]] = [{} for _ in graph.hosts]
        # per host v: several neighbours (ascending) -> v's leg toward all of them
        self._union_legs: list[dict[tuple[int, ...], Leg]] = [{} for _ in graph.hosts]
        # (segment, the hosts that reached it) -> per relay of it, its leg toward them
        self._segment_unions: dict[tuple[int, tuple[int, ...]], list[Leg | None]] = {}
        self._legs: dict[tuple[_Link, ...], Leg] = {}
        self._hops: dict[_Link, tuple[NextHop, str]] = {}
        self._earlier: dict[tuple[_Link, ...], Leg] = {}
        self.tags: tuple[str, ...]  # per host, a digest of its id (for fingerprints)
        if previous is not None and previous.graph.hosts == graph.hosts:
            self._earlier = previous._legs
            self.tags = previous.tags
        else:
            self.tags = tuple(digest(host) for host in graph.hosts)

    def search(self, owners: Sequence[int]) -> Search:
        """Distances and next hops of every host toward the nearest of ``owners``."""
        sources = sorted(set(owners))
        if self.multipath:
            return self._search_all_paths(sources)
        return self._search_one_path(sources)

    def _search_one_path(self, sources: list[int]) -> Search:
        """The BFS with the single next hop fixed when a relay is reached (its
        lowest predecessor's first link); a segment's first front is its lowest."""
        graph = self.graph
        segments_of = graph.segments_of
        relays = graph.relays
        pair_legs = self._pair_legs
        distance = [-1] * len(graph.hosts)
        legs: list[Leg | None] = [None] * len(graph.hosts)
        segment_level = [-1] * len(relays)
        fronts: dict[int, tuple[int, ...]] = {}
        for owner in sources:
            distance[owner] = 0
        order: list[int] = []
        frontier = sources
        level = 0
        while frontier:
            reached: list[int] = []
            next_level = level + 1
            for u in frontier:
                for s in segments_of[u]:
                    if segment_level[s] >= 0:
                        continue
                    segment_level[s] = level
                    fronts[s] = (u,)
                    for v in relays[s]:
                        if distance[v] < 0:
                            distance[v] = next_level
                            leg = pair_legs[v].get(u)
                            legs[v] = leg if leg is not None else self.pair_leg(v, u)
                            reached.append(v)
            reached.sort()
            order.extend(reached)
            frontier = reached
            level = next_level
        if len(sources) == 1:
            return Search(self, distance, legs, sources[0], None, segment_level, fronts)
        nearest = _owners_as_nearest(sources, len(distance))
        for v in order:  # level by level: the neighbour's answer is already known
            leg = legs[v]
            assert leg is not None
            nearest[v] = nearest[leg.first]
        return Search(self, distance, legs, sources[0], nearest, segment_level, fronts)

    def _search_all_paths(self, sources: list[int]) -> Search:
        """The BFS keeping every predecessor: a relay reached from a segment that
        several hosts of the level touched, or from several segments, gets the
        union of its links toward all of them."""
        graph = self.graph
        segments_of = graph.segments_of
        relays = graph.relays
        pair_legs = self._pair_legs
        distance = [-1] * len(graph.hosts)
        legs: list[Leg | None] = [None] * len(graph.hosts)
        segment_level = [-1] * len(relays)
        fronts: dict[int, list[int]] = {}
        several = len(sources) > 1  # owners: then the nearest one is needed too
        nearest = _owners_as_nearest(sources, len(distance)) if several else []
        for owner in sources:
            distance[owner] = 0
        frontier = sources
        level = 0
        while frontier:
            reached: list[int] = []
            expanded: list[int] = []
            again: list[int] = []  # reached once more, from a second segment
            next_level = level + 1
            for u in frontier:
                for s in segments_of[u]:
                    seen_at = segment_level[s]
                    if seen_at < 0:
                        segment_level[s] = level
                        fronts[s] = [u]
                        expanded.append(s)
                        for v in relays[s]:
                            found = distance[v]
                            if found < 0:
                                distance[v] = next_level
                                leg = pair_legs[v].get(u)
                                legs[v] = leg if leg is not None else self.pair_leg(v, u)
                                reached.append(v)
                                if several:
                                    nearest[v] = nearest[u]
                            elif found == next_level:
                                again.append(v)
                    elif seen_at == level:
                        fronts[s].append(u)
            for s in expanded:
                front = fronts[s]
                if len(front) > 1:  # ascending, as the frontier is
                    key = tuple(front)
                    table = self._segment_unions.get((s, key))
                    if table is None:
                        table = self._segment_union(s, key)
                    closest = min(nearest[u] for u in key) if several else 0
                    for v, leg in zip(relays[s], table, strict=True):
                        if distance[v] == next_level:
                            legs[v] = leg
                            if several and closest < nearest[v]:
                                nearest[v] = closest
            for v in again:
                key = tuple(sorted({u for s in segments_of[v] if segment_level[s] == level
                                    for u in fronts[s]}))
                if len(key) > 1:
                    legs[v] = self.union_leg(v, key)
                    if several:
                        nearest[v] = min(nearest[u] for u in key)
            reached.sort()
            frontier = reached
            level = next_level
        frozen = {s: tuple(front) for s, front in fronts.items()}
        return Search(self, distance, legs, sources[0], nearest if several else None,
                      segment_level, frozen)

    def _links(self, v: int, u: int) -> tuple[_Link, ...]:
        """Every link of ``v`` toward its neighbour ``u``, over every shared segment."""
        links = self._pair_links[v].get(u)
        if links is None:
            graph = self.graph
            found: list[_Link] = []
            for s in graph.segments_of[v]:
                ports = graph.ports[s]
                theirs = ports.get(u)
                if theirs is None:
                    continue
                found.extend((u, ifname, gateway)
                             for ifname, _ in ports[v] for _, gateway in theirs)
            links = self._pair_links[v][u] = tuple(sorted(found))
        return links

    def pair_leg(self, v: int, u: int) -> Leg:
        """``v``'s leg toward its neighbour ``u``: every link under multipath, else the first."""
        leg = self._pair_legs[v].get(u)
        if leg is not None:
            return leg
        links = self._links(v, u)
        leg = self._pair_legs[v][u] = self._leg(links if self.multipath else links[:1])
        return leg

    def _segment_union(self, s: int, front: tuple[int, ...]) -> list[Leg | None]:
        """For each relay of segment ``s`` (None for the fronts themselves), its leg
        toward all of ``front``: the hosts of one level that reached ``s``."""
        table = [None if v in front else self.union_leg(v, front) for v in self.graph.relays[s]]
        self._segment_unions[(s, front)] = table
        return table

    def union_leg(self, v: int, predecessors: tuple[int, ...]) -> Leg:
        """``v``'s leg toward several neighbours (ascending): all their links."""
        leg = self._union_legs[v].get(predecessors)
        if leg is None:
            links = sorted(link for u in predecessors for link in self._links(v, u))
            leg = self._union_legs[v][predecessors] = self._leg(tuple(links))
        return leg

    def _leg(self, links: tuple[_Link, ...]) -> Leg:
        leg = self._legs.get(links)
        if leg is None:
            leg = self._earlier.get(links)
            if leg is None:
                hops = [self._hop(link) for link in links]
                leg = Leg(tuple(hop for hop, _ in hops), digest(";".join(t for _, t in hops)),
                          links[0][0])
            self._legs[links] = leg
        return leg

    def _hop(self, link: _Link) -> tuple[NextHop, str]:
        """One link as a next hop and its canonical text, made once per link."""
        found = self._hops.get(link)
        if found is None:
            u, ifname, gateway = link
            hop = NextHop(IPv4Address(gateway), ifname, self.graph.hosts[u])
            found = self._hops[link] = (hop, f"{hop.gateway}%{ifname}@{hop.via_host}")
        return found


def digest(text: str) -> str:
    """A short stable digest (8 bytes of BLAKE2b, hex): the same on every replica."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _owners_as_nearest(sources: list[int], hosts: int) -> list[int]:
    nearest = [-1] * hosts
    for owner in sources:
        nearest[owner] = owner
    return nearest

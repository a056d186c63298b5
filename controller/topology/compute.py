"""The pure step from the desired state and liveness to every host's routes.

``compute_routes(state)`` ranks the claims (``roles``), builds the graph of
live hosts (``graph``) and runs one search per distinct owner set
(``paths``); ``ClusterRoutes`` answers per host from those searches. No I/O,
no clock, no randomness: two controller replicas given the same state get
equal results, whatever order the records came in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network

from controller.topology.graph import build_graph
from controller.topology.model import (
    Claim,
    ClaimRole,
    ClaimStatus,
    ClusterState,
    HostRoute,
    NoRouteReason,
    SamePrefix,
    Unreachable,
)
from controller.topology.paths import Leg, PathFinder, Reached, Search
from controller.topology.roles import claim_roles, owner_hosts

#: How one host reaches one prefix: (leg, hops, owner index); None: no route.
Answer = Reached | None


@dataclass(frozen=True, slots=True)
class Target:
    """A claimed prefix and where its owners are: the search its routes come from."""

    prefix: IPv4Network
    key: tuple[int, int]  # (network, length), to test against Graph.connected
    owners: frozenset[int]
    search: Search | None  # None: no live owner

    def answer(self, h: int, connected: frozenset[tuple[int, int]]) -> Answer:
        """How host ``h`` (attached to ``connected``) reaches this prefix by a route."""
        search = self.search
        if search is None or h in self.owners or self.key in connected:
            return None
        return search.reach(h)


class ClusterRoutes:
    """The result: every claim's role, and each live host's routes and unreachable prefixes.

    Per-host answers are built on first request and kept (the result is
    immutable once made).
    """

    __slots__ = ("_routes", "_statuses", "_unreachable", "finder", "graph", "searches",
                 "targets")

    def __init__(self, finder: PathFinder, statuses: Mapping[IPv4Network, tuple[ClaimStatus, ...]],
                 targets: dict[IPv4Network, Target], searches: dict[tuple[int, ...], Search]
                 ) -> None:
        self.finder = finder
        self.graph = finder.graph
        self.targets = targets
        self.searches = searches
        self._statuses = statuses
        self._routes: dict[str, tuple[HostRoute, ...]] = {}
        self._unreachable: dict[str, tuple[Unreachable, ...]] = {}

    @property
    def live_hosts(self) -> tuple[str, ...]:
        """The hosts that are up, sorted: the ones that get routes."""
        graph = self.graph
        return tuple(host for host, up in zip(graph.hosts, graph.up, strict=True) if up)

    def claims(self) -> tuple[ClaimStatus, ...]:
        """Every claim with its role, by prefix, earliest claim first."""
        return tuple(s for statuses in self._statuses.values() for s in statuses)

    def role_of(self, claim: Claim) -> ClaimRole:
        """The role of ``claim``; ``KeyError`` if it was not among the inputs."""
        for status in self._statuses.get(claim.prefix, ()):
            if status.claim == claim:
                return status.role
        raise KeyError(claim)

    def routes_for(self, host: str) -> tuple[HostRoute, ...]:
        """The routes of ``host``, by prefix; none for a down or unknown host."""
        routes = self._routes.get(host)
        if routes is None:
            self._answer(host)
            routes = self._routes[host]
        return routes

    def unreachable_for(self, host: str) -> tuple[Unreachable, ...]:
        """The claimed prefixes ``host`` has no route for although it needs one
        (none for a down or unknown host)."""
        found = self._unreachable.get(host)
        if found is None:
            self._answer(host)
            found = self._unreachable[host]
        return found

    def route(self, target: Target, answer: tuple[Leg, int, int]) -> HostRoute:
        """The route an answer of ``target`` stands for."""
        leg, hops, owner = answer
        return HostRoute(target.prefix, leg.next_hops, hops, self.graph.hosts[owner],
                         self._fingerprint(leg, hops, owner))

    def _answer(self, host: str) -> None:
        h = self.graph.index.get(host)
        if h is None or not self.graph.up[h]:
            self._routes[host] = ()
            self._unreachable[host] = ()
            return
        connected = self.graph.connected[h]
        names = self.graph.hosts
        fingerprint = self._fingerprint
        routes: list[HostRoute] = []
        missing: list[Unreachable] = []
        for target in self.targets.values():
            answer = target.answer(h, connected)
            if answer is not None:
                leg, hops, owner = answer
                routes.append(HostRoute(target.prefix, leg.next_hops, hops, names[owner],
                                        fingerprint(leg, hops, owner)))
            elif h in target.owners or target.key in connected:
                continue  # its own prefix, or one it is attached to: reached directly
            elif target.search is None:
                missing.append(Unreachable(target.prefix, NoRouteReason.NO_OWNER))
            else:
                missing.append(Unreachable(target.prefix, NoRouteReason.NO_PATH))
        self._routes[host] = tuple(routes)
        self._unreachable[host] = tuple(missing)

    def _fingerprint(self, leg: Leg, hops: int, owner: int) -> str:
        """``<next hops digest>.<hops>.<owner digest>``: built from digests made
        once per leg and per host, so a million routes cost no million hashes."""
        key = hops << 32 | owner
        found = leg.fingerprints.get(key)
        if found is None:
            found = leg.fingerprints[key] = f"{leg.digest}.{hops}.{self.finder.tags[owner]}"
        return found


def compute_routes(state: ClusterState, previous: ClusterRoutes | None = None) -> ClusterRoutes:
    """Every claim's role and every live host's routes, from ``state`` alone.

    ``previous``, the result for an earlier state, changes nothing in the
    answer; it makes it cheaper: with the same graph the searches of owner
    sets that did not change are reused, and next-hop sets both results hold
    are the same objects, so ``diff_routes`` compares by identity.
    """
    ids = [host.id for host in state.hosts]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"hosts {duplicate!r}: listed twice")
    live = frozenset(host.id for host in state.hosts if host.up)
    statuses = claim_roles(state.claims, live, state.policy)
    graph = build_graph(state.hosts, state.aliases)
    multipath = state.policy is SamePrefix.MULTIPATH
    earlier: dict[tuple[int, ...], Search] = {}
    if previous is not None and previous.finder.multipath == multipath and (
            previous.graph == graph):
        finder = previous.finder
        earlier = previous.searches
    else:
        finder = PathFinder(graph, multipath, None if previous is None else previous.finder)
    searches: dict[tuple[int, ...], Search] = {}
    targets: dict[IPv4Network, Target] = {}
    for prefix, claims in statuses.items():
        owners = tuple(graph.index[h] for h in owner_hosts(claims))
        key = (int(prefix.network_address), prefix.prefixlen)
        if not owners:
            targets[prefix] = Target(prefix, key, frozenset(), None)
            continue
        search = searches.get(owners)
        if search is None:
            search = earlier.get(owners) or finder.search(owners)
            searches[owners] = search
        targets[prefix] = Target(prefix, key, frozenset(owners), search)
    return ClusterRoutes(finder, statuses, targets, searches)

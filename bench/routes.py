"""Cluster route computation: controller.topology against networkx, same run.

Run from the repository root::

    python3 bench/routes.py [--sizes 50,200,1000] [--rounds 3]

For each size it builds a data-centre-like cluster — racks of 20 hosts on
one /24 each, the first two hosts of every rack also on two spine subnets
(so every rack-to-rack path has equal-cost alternatives) — with two prefixes
claimed by every host (pod CIDRs) and one service prefix per host claimed
by three hosts, and times:

* ``compute``: ``compute_routes`` (roles, graph, one search per owner set);
* ``+ all hosts``: the same plus every live host's routes materialised
  (what the Sync server asks for after a change);
* ``down+diff``: one spine host goes down — ``compute_routes(state,
  previous=...)`` then ``diff_routes`` (every host's delta, what the Sync
  server sends after a liveness change);
* ``networkx``: the reference — for every owner set, ``nx.predecessor`` from
  a virtual source joined to the owners gives every host's hop count and its
  equal-cost first-hop neighbours; the same number of searches, done by a
  well-known graph library over the host-to-host graph.

Both answers are compared (hop counts and first-hop neighbours of every
host for every prefix) before any figure is printed. Each figure is the best
of ``--rounds`` (a shared machine is noisy); the ratio is networkx / ours.
networkx is a bench-only dependency (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import networkx as nx  # noqa: E402

from controller.topology import (  # noqa: E402
    Alias,
    Claim,
    ClusterRoutes,
    ClusterState,
    Host,
    SamePrefix,
    compute_routes,
    diff_routes,
)

RACK = 20
SPINES = 2


def cluster(size: int, policy: SamePrefix) -> ClusterState:
    """``size`` hosts in racks with spine subnets, and their claims (see the docstring)."""
    hosts = tuple(Host(f"h{i:04d}", True) for i in range(size))
    aliases: list[Alias] = []
    for i, host in enumerate(hosts):
        rack, slot = divmod(i, RACK)
        rack_addr = IPv4Address(f"10.{rack >> 8}.{rack & 255}.{slot + 1}")
        aliases.append(Alias(host.id, "eth0", rack_addr, 24))
        if slot < SPINES:
            spine_addr = IPv4Address(int(IPv4Address(f"172.{16 + slot}.0.0")) + rack + 1)
            aliases.append(Alias(host.id, f"up{slot}", spine_addr, 16))
    claims: list[Claim] = []
    revision = itertools.count(1)
    for i, host in enumerate(hosts):
        for k in range(2):
            claims.append(Claim(IPv4Network(f"100.{64 + (2 * i + k) // 256 % 64}."
                                            f"{(2 * i + k) % 256}.0/24"), host.id, "pods",
                                next(revision)))
    for i in range(size):
        prefix = IPv4Network(f"{IPv4Address(int(IPv4Address('198.18.0.0')) + 4 * i)}/30")
        for k in (0, 7, 13):
            claims.append(Claim(prefix, hosts[(i + k) % size].id, "svc", next(revision)))
    return ClusterState(hosts, tuple(aliases), tuple(claims), policy)


def ours_all_hosts(state: ClusterState) -> ClusterRoutes:
    routes = compute_routes(state)
    for host in routes.live_hosts:
        routes.routes_for(host)
    return routes


def one_down(state: ClusterState) -> ClusterState:
    """``state`` with the first spine host of the second rack down."""
    victim = state.hosts[RACK].id
    hosts = tuple(Host(h.id, h.id != victim) for h in state.hosts)
    return ClusterState(hosts, state.aliases, state.claims, state.policy)


def down_and_diff(before: ClusterRoutes, after: ClusterState) -> int:
    changes = diff_routes(before, compute_routes(after, previous=before))
    return sum(len(c.upserts) + len(c.removals) for c in changes.values())


def networkx_reference(state: ClusterState) -> dict[tuple[str, IPv4Network], tuple[int, set[str]]]:
    """(host, prefix) -> (hops, first-hop neighbours), one nx.predecessor per owner set."""
    graph: nx.Graph = nx.Graph()
    graph.add_nodes_from(h.id for h in state.hosts if h.up)
    by_subnet: dict[IPv4Network, set[str]] = {}
    for alias in state.aliases:
        by_subnet.setdefault(alias.network, set()).add(alias.host)
    for members in by_subnet.values():
        graph.add_edges_from(itertools.combinations(sorted(members), 2))
    owners_of: dict[IPv4Network, list[Claim]] = {}
    for claim in state.claims:
        owners_of.setdefault(claim.prefix, []).append(claim)
    answers: dict[tuple[str, IPv4Network], tuple[int, set[str]]] = {}
    searched: dict[tuple[str, ...], tuple[dict[str, list[str]], dict[str, int]]] = {}
    for prefix, claims in owners_of.items():
        if state.policy is SamePrefix.MULTIPATH:
            owners = tuple(sorted({c.host for c in claims}))
        else:
            owners = (min(claims, key=lambda c: c.order).host,)
        if owners not in searched:
            graph.add_edges_from(("*", o) for o in owners)
            preds, seen = nx.predecessor(graph, "*", return_seen=True)
            graph.remove_node("*")
            searched[owners] = (preds, seen)
        preds, seen = searched[owners]
        for host, level in seen.items():
            if level >= 2:
                answers[(host, prefix)] = (level - 1, set(preds[host]))
    return answers


def check_same(routes: ClusterRoutes,
               reference: dict[tuple[str, IPv4Network], tuple[int, set[str]]],
               multipath: bool) -> None:
    ours: dict[tuple[str, IPv4Network], tuple[int, set[str]]] = {}
    for host in routes.live_hosts:
        for route in routes.routes_for(host):
            ours[(host, route.prefix)] = (route.hops, {hop.via_host for hop in route.next_hops})
    assert ours.keys() == reference.keys(), "routed (host, prefix) pairs differ"
    for key, (hops, vias) in ours.items():
        ref_hops, ref_vias = reference[key]
        assert hops == ref_hops, (key, hops, ref_hops)
        assert vias == ref_vias if multipath else vias == {min(ref_vias)}, (key, vias, ref_vias)


def best_of(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'hosts':>6} {'policy':>9} {'prefixes':>8} {'routes':>8} {'compute':>9} "
          f"{'+ all hosts':>11} {'down+diff':>9} {'changed':>8} {'networkx':>9} {'ratio':>6}")
    for size in (int(s) for s in args.sizes.split(",")):
        for policy in (SamePrefix.ALLOW, SamePrefix.MULTIPATH):
            state = cluster(size, policy)
            routes = ours_all_hosts(state)
            reference = networkx_reference(state)
            check_same(routes, reference, policy is SamePrefix.MULTIPATH)
            compute = best_of(args.rounds, lambda s=state: compute_routes(s))
            everything = best_of(args.rounds, lambda s=state: ours_all_hosts(s))
            degraded = one_down(state)
            changed = down_and_diff(routes, degraded)
            incremental = best_of(args.rounds, lambda r=routes, d=degraded: down_and_diff(r, d))
            nx_time = best_of(max(1, args.rounds // 3), lambda s=state: networkx_reference(s))
            prefixes = len({c.prefix for c in state.claims})
            print(f"{size:>6} {policy.value:>9} {prefixes:>8} {len(reference):>8} "
                  f"{compute * 1e3:>7.1f}ms {everything * 1e3:>9.1f}ms "
                  f"{incremental * 1e3:>7.1f}ms {changed:>8} {nx_time * 1e3:>7.0f}ms "
                  f"{nx_time / everything:>5.1f}x")


if __name__ == "__main__":
    main()

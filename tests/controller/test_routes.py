"""Cluster routes: roles, shortest paths over shared segments, ECMP, hand-over, diffs.

Every scenario is a graph written down in the test; no etcd, no process
(the computation is a pure function).
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.topology import (
    Alias,
    Claim,
    ClaimRole,
    ClusterRoutes,
    ClusterState,
    Host,
    HostRoute,
    NextHop,
    NoRouteReason,
    SamePrefix,
    Unreachable,
    compute_routes,
    diff_routes,
)
from controller.topology.graph import changes_no_route, segment_key

ALLOW, REFUSE, MULTIPATH = SamePrefix.ALLOW, SamePrefix.REFUSE, SamePrefix.MULTIPATH
PREFIX = IPv4Network("192.168.100.0/24")


def hosts(*ids: str, down: tuple[str, ...] = ()) -> tuple[Host, ...]:
    return tuple(Host(i, i not in down) for i in ids)


def link(n: int, a: str, b: str, a_if: str = "", b_if: str = "") -> tuple[Alias, Alias]:
    """A /24 segment 10.0.n.0/24 between hosts a (.1) and b (.2)."""
    return (Alias.parse(a, a_if or f"to-{b}", f"10.0.{n}.1/24"),
            Alias.parse(b, b_if or f"to-{a}", f"10.0.{n}.2/24"))


def claim(host: str, revision: int = 1, prefix: IPv4Network = PREFIX,
          ifname: str = "lan") -> Claim:
    return Claim(prefix, host, ifname, revision)


def state(host_list: tuple[Host, ...], links: list[tuple[Alias, ...]], claims: list[Claim],
          policy: SamePrefix = ALLOW) -> ClusterState:
    return ClusterState(host_list, tuple(a for pair in links for a in pair), tuple(claims), policy)


def only_route(result: ClusterRoutes, host: str, prefix: IPv4Network = PREFIX) -> HostRoute:
    found = [r for r in result.routes_for(host) if r.prefix == prefix]
    assert len(found) == 1, result.routes_for(host)
    return found[0]


def vias(route: HostRoute) -> list[tuple[str, str, str]]:
    return [(hop.via_host, hop.ifname, str(hop.gateway)) for hop in route.next_hops]


# ---------------------------------------------------------------- chains and rings


def test_three_host_chain_routes_through_the_middle_host() -> None:
    result = compute_routes(state(hosts("a", "b", "c"), [link(1, "a", "b"), link(2, "b", "c")],
                                  [claim("c")]))
    far = only_route(result, "a")
    assert vias(far) == [("b", "to-b", "10.0.1.2")]
    assert (far.hops, far.owner) == (2, "c")
    near = only_route(result, "b")
    assert vias(near) == [("c", "to-c", "10.0.2.2")]
    assert near.hops == 1
    assert result.routes_for("c") == ()  # the owner reaches its prefix directly


def ring(policy: SamePrefix, down: tuple[str, ...] = ()) -> ClusterRoutes:
    """a - b - c - d - a, the prefix on a."""
    return compute_routes(state(
        hosts("a", "b", "c", "d", down=down),
        [link(1, "a", "b"), link(2, "b", "c"), link(3, "c", "d"), link(4, "d", "a")],
        [claim("a")], policy))


def test_four_host_ring_under_multipath_spreads_over_both_equal_paths() -> None:
    result = ring(MULTIPATH)
    opposite = only_route(result, "c")
    assert vias(opposite) == [("b", "to-b", "10.0.2.1"), ("d", "to-d", "10.0.3.2")]
    assert opposite.hops == 2
    assert vias(only_route(result, "b")) == [("a", "to-a", "10.0.1.1")]
    assert vias(only_route(result, "d")) == [("a", "to-a", "10.0.4.2")]


@pytest.mark.parametrize("policy", [ALLOW, REFUSE])
def test_four_host_ring_without_multipath_takes_one_path_the_lowest_neighbour(
        policy: SamePrefix) -> None:
    assert vias(only_route(ring(policy), "c")) == [("b", "to-b", "10.0.2.1")]


@pytest.mark.parametrize("policy", [ALLOW, MULTIPATH])
def test_four_host_ring_reroutes_around_a_down_host(policy: SamePrefix) -> None:
    result = ring(policy, down=("b",))
    assert vias(only_route(result, "c")) == [("d", "to-d", "10.0.3.2")]
    assert only_route(result, "c").hops == 2
    assert result.routes_for("b") == ()  # a down host gets nothing
    assert result.unreachable_for("b") == ()


# ---------------------------------------------------------------- roles


def test_allow_earliest_claim_owns_later_ones_stand_by() -> None:
    claims = [claim("c", revision=7), claim("a", revision=3)]
    result = compute_routes(state(hosts("a", "b", "c"), [link(1, "a", "b"), link(2, "b", "c")],
                                  claims))
    assert [(s.claim.host, s.role) for s in result.claims()] == [
        ("a", ClaimRole.OWNER), ("c", ClaimRole.STANDBY)]
    assert only_route(result, "c").owner == "a"  # the standby host routes to the owner
    assert only_route(result, "c").hops == 2


def test_allow_hands_over_when_the_owner_host_goes_down() -> None:
    claims = [claim("a", revision=3), claim("c", revision=7)]
    result = compute_routes(state(hosts("a", "b", "c", down=("a",)),
                                  [link(1, "a", "b"), link(2, "b", "c")], claims))
    assert result.role_of(claims[0]) is ClaimRole.DOWN
    assert result.role_of(claims[1]) is ClaimRole.OWNER
    assert vias(only_route(result, "b")) == [("c", "to-c", "10.0.2.2")]


def test_allow_hands_over_when_the_owner_claim_is_deleted() -> None:
    links = [link(1, "a", "b"), link(2, "b", "c")]
    before = compute_routes(state(hosts("a", "b", "c"), links, [claim("a", 3), claim("c", 7)]))
    after = compute_routes(state(hosts("a", "b", "c"), links, [claim("c", 7)]))
    assert only_route(before, "b").owner == "a"
    assert only_route(after, "b").owner == "c"
    assert only_route(after, "a").hops == 2


def test_claim_ties_break_by_host_then_interface() -> None:
    claims = [claim("b", 5, ifname="x"), claim("a", 5, ifname="z"), claim("a", 5, ifname="y")]
    result = compute_routes(state(hosts("a", "b"), [link(1, "a", "b")], claims))
    assert [(s.claim.host, s.claim.ifname, s.role) for s in result.claims()] == [
        ("a", "y", ClaimRole.OWNER), ("a", "z", ClaimRole.STANDBY), ("b", "x", ClaimRole.STANDBY)]


def test_multipath_every_live_claim_owns_and_hosts_go_to_the_nearest() -> None:
    # a - b - c - d - e: owners a and e; c is two hops from both
    links = [link(1, "a", "b"), link(2, "b", "c"), link(3, "c", "d"), link(4, "d", "e")]
    result = compute_routes(state(hosts("a", "b", "c", "d", "e"), links,
                                  [claim("a", 1), claim("e", 2)], MULTIPATH))
    assert {s.role for s in result.claims()} == {ClaimRole.OWNER}
    assert (only_route(result, "b").owner, only_route(result, "b").hops) == ("a", 1)
    assert (only_route(result, "d").owner, only_route(result, "d").hops) == ("e", 1)
    middle = only_route(result, "c")
    assert vias(middle) == [("b", "to-b", "10.0.2.1"), ("d", "to-d", "10.0.3.2")]
    assert (middle.owner, middle.hops) == ("a", 2)  # equally near: the lowest id
    assert result.routes_for("a") == result.routes_for("e") == ()


def test_refuse_ranks_several_stored_claims_as_allow_does() -> None:
    result = compute_routes(state(hosts("a", "b"), [link(1, "a", "b")],
                                  [claim("b", 2), claim("a", 1)], REFUSE))
    assert [s.role for s in result.claims()] == [ClaimRole.OWNER, ClaimRole.STANDBY]


def test_down_owner_without_standby_leaves_the_prefix_unreachable_for_everyone() -> None:
    result = compute_routes(state(hosts("a", "b", "c", down=("c",)),
                                  [link(1, "a", "b"), link(2, "b", "c")], [claim("c")]))
    assert [s.role for s in result.claims()] == [ClaimRole.DOWN]
    for host in ("a", "b"):
        assert result.routes_for(host) == ()
        assert result.unreachable_for(host) == (Unreachable(PREFIX, NoRouteReason.NO_OWNER),)


def test_no_path_is_reported_per_host() -> None:
    result = compute_routes(state(hosts("a", "b", "island"), [link(1, "a", "b")], [claim("a")]))
    assert result.routes_for("island") == ()
    assert result.unreachable_for("island") == (Unreachable(PREFIX, NoRouteReason.NO_PATH),)
    assert result.unreachable_for("b") == ()


def test_a_down_middle_host_cuts_the_chain() -> None:
    result = compute_routes(state(hosts("a", "b", "c", down=("b",)),
                                  [link(1, "a", "b"), link(2, "b", "c")], [claim("c")]))
    assert result.unreachable_for("a") == (Unreachable(PREFIX, NoRouteReason.NO_PATH),)


def test_claims_of_unknown_hosts_are_down() -> None:
    result = compute_routes(state(hosts("a"), [], [claim("ghost")]))
    assert [s.role for s in result.claims()] == [ClaimRole.DOWN]


# ---------------------------------------------------------------- segments


def test_parallel_links_are_equal_cost_under_multipath_and_one_otherwise() -> None:
    links = [link(1, "a", "b", "eth0", "eth0"), link(2, "a", "b", "eth1", "eth1")]
    wide = compute_routes(state(hosts("a", "b"), links, [claim("b")], MULTIPATH))
    assert vias(only_route(wide, "a")) == [("b", "eth0", "10.0.1.2"), ("b", "eth1", "10.0.2.2")]
    narrow = compute_routes(state(hosts("a", "b"), links, [claim("b")], ALLOW))
    assert vias(only_route(narrow, "a")) == [("b", "eth0", "10.0.1.2")]


def test_parallel_links_multiply_equal_cost_paths_beyond_the_neighbour() -> None:
    links = [link(1, "a", "b", "eth0"), link(2, "a", "b", "eth1"), link(3, "b", "c")]
    result = compute_routes(state(hosts("a", "b", "c"), links, [claim("c")], MULTIPATH))
    assert [hop.ifname for hop in only_route(result, "a").next_hops] == ["eth0", "eth1"]


def test_point_to_point_aliases_join_hosts_when_each_is_the_others_peer() -> None:
    aliases = (Alias.parse("a", "ng0", "10.9.0.1/32", destination="10.9.0.2"),
               Alias.parse("b", "ng0", "10.9.0.2/32", destination="10.9.0.1"))
    result = compute_routes(ClusterState(hosts("a", "b"), aliases, (claim("b"),)))
    assert vias(only_route(result, "a")) == [("b", "ng0", "10.9.0.2")]


def test_point_to_point_alias_whose_peer_points_elsewhere_joins_nothing() -> None:
    aliases = (Alias.parse("a", "ng0", "10.9.0.1/32", destination="10.9.0.2"),
               Alias.parse("b", "ng0", "10.9.0.2/32", destination="10.9.0.7"))
    result = compute_routes(ClusterState(hosts("a", "b"), aliases, (claim("b"),)))
    assert result.unreachable_for("a") == (Unreachable(PREFIX, NoRouteReason.NO_PATH),)


def test_same_network_with_another_prefix_length_is_another_segment() -> None:
    aliases = (Alias.parse("a", "eth0", "10.0.0.1/24"), Alias.parse("b", "eth0", "10.0.0.2/16"))
    result = compute_routes(ClusterState(hosts("a", "b"), aliases, (claim("b"),)))
    assert result.routes_for("a") == ()


def test_broadcast_segment_reaches_every_member_in_one_hop() -> None:
    aliases = tuple(Alias.parse(h, "eth0", f"10.0.0.{i + 1}/24") for i, h in enumerate("abcd"))
    result = compute_routes(ClusterState(hosts(*"abcd"), aliases, (claim("c"),)))
    for host in "abd":
        assert vias(only_route(result, host)) == [("c", "eth0", "10.0.0.3")]


def test_an_address_on_two_hosts_of_a_segment_is_never_a_gateway() -> None:
    aliases = (Alias.parse("a", "eth0", "10.0.0.1/24"), Alias.parse("b", "eth0", "10.0.0.9/24"),
               Alias.parse("c", "eth0", "10.0.0.9/24"), Alias.parse("c", "eth1", "10.1.0.3/24"),
               Alias.parse("b", "eth1", "10.1.0.2/24"))
    result = compute_routes(ClusterState(hosts("a", "b", "c"), aliases, (claim("b"),)))
    assert result.unreachable_for("a") == (Unreachable(PREFIX, NoRouteReason.NO_PATH),)
    assert vias(only_route(result, "c")) == [("b", "eth1", "10.1.0.2")]


def test_interface_with_several_addresses_in_a_segment_offers_its_lowest_as_gateway() -> None:
    aliases = (Alias.parse("a", "eth0", "10.0.0.1/24"), Alias.parse("b", "eth0", "10.0.0.8/24"),
               Alias.parse("b", "eth0", "10.0.0.5/24"))
    result = compute_routes(ClusterState(hosts("a", "b"), aliases, (claim("b"),), MULTIPATH))
    assert vias(only_route(result, "a")) == [("b", "eth0", "10.0.0.5")]


def test_a_host_attached_to_the_claimed_prefix_gets_no_route_for_it() -> None:
    lan = IPv4Network("10.0.1.0/24")
    result = compute_routes(state(hosts("a", "b", "c"), [link(1, "a", "b"), link(2, "b", "c")],
                                  [claim("a", prefix=lan)]))
    assert result.routes_for("b") == ()  # its connected route covers it
    assert result.unreachable_for("b") == ()
    assert only_route(result, "c", lan).hops == 2


# ---------------------------------------------------------------- inputs


def test_parse_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"prefix '10\.0\.0\.1/24'"):
        Claim.parse("10.0.0.1/24", "a", "eth0", 1)
    with pytest.raises(ValueError, match=r"address '10\.0\.0\.x'"):
        Alias.parse("a", "eth0", "10.0.0.x/24")
    with pytest.raises(ValueError, match="prefix_len 33"):
        Alias.parse("a", "eth0", "10.0.0.1/33")
    with pytest.raises(ValueError, match="destination 'peer'"):
        Alias.parse("a", "ng0", "10.0.0.1/32", destination="peer")
    with pytest.raises(ValueError, match="hosts 'a': listed twice"):
        compute_routes(ClusterState(hosts("a", "a"), (), ()))


def test_fingerprint_changes_with_next_hops_hops_or_owner_only() -> None:
    first = ring(ALLOW)
    again = ring(ALLOW)
    assert only_route(first, "c").fingerprint == only_route(again, "c").fingerprint
    moved = ring(ALLOW, down=("b",))
    assert only_route(first, "c").fingerprint != only_route(moved, "c").fingerprint
    assert only_route(first, "d").fingerprint == only_route(moved, "d").fingerprint


# ---------------------------------------------------------------- properties


@st.composite
def random_clusters(draw: st.DrawFn) -> ClusterState:
    """Up to 12 hosts, some down, on random segments (broadcast and p2p), random claims."""
    count = draw(st.integers(2, 12))
    names = [f"h{i:02d}" for i in range(count)]
    down = draw(st.sets(st.sampled_from(names), max_size=count // 3))
    aliases: list[Alias] = []
    for seg in range(draw(st.integers(0, 14))):
        members = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True))
        ifname = f"if{draw(st.integers(0, 2))}"
        if len(members) == 2 and draw(st.booleans()):
            a, b = members
            aliases.append(Alias.parse(a, ifname, f"10.200.{seg}.1/32", f"10.200.{seg}.2"))
            aliases.append(Alias.parse(b, ifname, f"10.200.{seg}.2/32", f"10.200.{seg}.1"))
            continue
        for k, member in enumerate(members):
            aliases.append(Alias.parse(member, ifname, f"10.100.{seg}.{k + 1}/24"))
    claims = []
    for p in range(draw(st.integers(0, 4))):
        for owner in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)):
            claims.append(Claim(IPv4Network(f"172.16.{p}.0/24"), owner, "lan",
                                draw(st.integers(1, 50))))
    policy = draw(st.sampled_from(list(SamePrefix)))
    return ClusterState(tuple(Host(n, n not in down) for n in names), tuple(aliases),
                        tuple(claims), policy)


def everything(result: ClusterRoutes) -> tuple[object, ...]:
    hosts_ = sorted(result.graph.hosts)
    return (result.claims(), tuple(result.routes_for(h) for h in hosts_),
            tuple(result.unreachable_for(h) for h in hosts_))


@settings(max_examples=150)
@given(random_clusters(), st.randoms(use_true_random=False))
def test_output_is_independent_of_input_order(cluster: ClusterState,
                                              rng: random.Random) -> None:
    shuffled = ClusterState(*(tuple(rng.sample(part, len(part))) for part in
                              (cluster.hosts, cluster.aliases, cluster.claims)), cluster.policy)
    assert everything(compute_routes(shuffled)) == everything(compute_routes(cluster))


def same_segment(x: Alias, y: Alias) -> bool:
    if x.destination is not None or y.destination is not None:
        return (x.destination == y.address and y.destination == x.address) or (
            x.address == y.address and x.destination == y.destination)
    return x.network == y.network


def brute_force_neighbours(cluster: ClusterState) -> dict[str, set[NextHop]]:
    """Per live host, every (gateway, ifname, via) it can use, pair by pair of aliases."""
    live = {h.id for h in cluster.hosts if h.up}
    mine = [a for a in cluster.aliases if a.host in live]

    def ambiguous(a: Alias) -> bool:
        return any(z.address == a.address and z.host != a.host and same_segment(z, a)
                   for z in mine)

    def port_address(a: Alias) -> bool:
        """``a`` is the lowest unambiguous address of its interface in its segment."""
        return not ambiguous(a) and not any(
            z.host == a.host and z.ifname == a.ifname and same_segment(z, a)
            and z.address < a.address and not ambiguous(z) for z in mine)

    found: dict[str, set[NextHop]] = {h: set() for h in live}
    for x, y in itertools.permutations(mine, 2):
        if (x.host != y.host and x.address != y.address and same_segment(x, y)
                and port_address(x) and port_address(y)):
            found[x.host].add(NextHop(y.address, x.ifname, y.host))
    return found


def bfs(adjacent: dict[str, set[str]], start: str) -> dict[str, int]:
    distance = {start: 0}
    queue = deque([start])
    while queue:
        u = queue.popleft()
        for v in sorted(adjacent[u]):
            if v not in distance:
                distance[v] = distance[u] + 1
                queue.append(v)
    return distance


@settings(max_examples=200)
@given(random_clusters())
def test_paths_agree_with_a_per_pair_brute_force(cluster: ClusterState) -> None:
    result = compute_routes(cluster)
    legs = brute_force_neighbours(cluster)
    adjacent = {h: {hop.via_host for hop in hops} for h, hops in legs.items()}
    assert all(h in adjacent[v] for h in adjacent for v in adjacent[h])  # links go both ways
    owners_of: dict[IPv4Network, set[str]] = {}
    for status in result.claims():
        if status.role is ClaimRole.OWNER:
            owners_of.setdefault(status.claim.prefix, set()).add(status.claim.host)
    distances = {h: bfs(adjacent, h) for h in adjacent}
    for host in adjacent:
        routes = {r.prefix: r for r in result.routes_for(host)}
        for prefix in {c.prefix for c in cluster.claims}:
            owners = owners_of.get(prefix, set())
            attached = any(a.host == host and (a.network == prefix if a.destination is None
                                               else prefix.prefixlen == 32 and
                                               prefix.network_address in (a.address,
                                                                          a.destination))
                           for a in cluster.aliases)
            attached = attached or any(a.host == host and prefix.prefixlen == 32
                                       and prefix.network_address == a.address
                                       for a in cluster.aliases)
            if host in owners or attached:
                assert prefix not in routes
                continue
            reachable = [distances[host][o] for o in owners if o in distances[host]]
            if not reachable:
                assert prefix not in routes
                reason = NoRouteReason.NO_OWNER if not owners else NoRouteReason.NO_PATH
                assert Unreachable(prefix, reason) in result.unreachable_for(host)
                continue
            best = min(reachable)
            route = routes[prefix]
            assert route.hops == best
            nearest = sorted(o for o in owners if distances[host].get(o) == best)
            equal_cost = sorted((hop for hop in legs[host]
                                 if min((distances[hop.via_host].get(o, 99) for o in owners),
                                        default=99) == best - 1), key=lambda hop: hop.order)
            if cluster.policy is MULTIPATH:
                assert list(route.next_hops) == equal_cost
                assert route.owner == nearest[0]
            else:
                assert list(route.next_hops) == equal_cost[:1]
                assert route.owner in nearest


def apply(routes: dict[str, dict[IPv4Network, HostRoute]],
          changes: dict[str, object]) -> None:
    for host, delta in changes.items():
        table = routes.setdefault(host, {})
        for prefix in delta.removals:  # type: ignore[attr-defined]
            del table[prefix]
        for route in delta.upserts:  # type: ignore[attr-defined]
            table[route.prefix] = route


@settings(max_examples=200)
@given(random_clusters(), st.lists(st.tuples(st.integers(0, 11), st.booleans()), max_size=6),
       st.booleans(), st.sets(st.integers(0, 40), max_size=3), st.booleans())
def test_diff_applied_to_the_old_routes_gives_the_new_ones(
        cluster: ClusterState, flips: list[tuple[int, bool]], drop_claim: bool,
        renumbered: set[int], materialised: bool) -> None:
    previous = compute_routes(cluster)
    if materialised:  # stub legs made before the next computation, or only during the diff
        for host in previous.graph.hosts:
            previous.routes_for(host)
    host_list = list(cluster.hosts)
    for position, up in flips:
        if position < len(host_list):
            host_list[position] = Host(host_list[position].id, up)
    claims = cluster.claims[1:] if drop_claim else cluster.claims
    aliases = tuple(Alias(a.host, a.ifname, a.address + 100, a.prefix_len, a.destination)
                    if i in renumbered and a.destination is None else a
                    for i, a in enumerate(cluster.aliases))
    changed = ClusterState(tuple(host_list), aliases, claims, cluster.policy)
    current = compute_routes(changed, previous=previous)
    assert everything(current) == everything(compute_routes(changed))  # previous: only speed
    before = {h: {r.prefix: r for r in previous.routes_for(h)} for h in previous.graph.hosts}
    apply(before, diff_routes(previous, current))
    after = {h: {r.prefix: r for r in current.routes_for(h)} for h in current.graph.hosts}
    assert {h: t for h, t in before.items() if t} == {h: t for h, t in after.items() if t}


def test_diff_of_an_unchanged_state_is_empty_and_reuses_the_searches() -> None:
    previous = ring(MULTIPATH)
    cluster = state(hosts("a", "b", "c", "d"),
                    [link(1, "a", "b"), link(2, "b", "c"), link(3, "c", "d"), link(4, "d", "a")],
                    [claim("a")], MULTIPATH)
    current = compute_routes(cluster, previous=previous)
    assert diff_routes(previous, current) == {}
    assert current.searches == previous.searches  # the very same Search objects


def test_diff_from_nothing_upserts_every_route() -> None:
    current = ring(ALLOW)
    changes = diff_routes(None, current)
    assert sorted(changes) == ["b", "c", "d"]
    assert changes["c"].upserts == current.routes_for("c")


def test_diff_when_a_host_goes_down_touches_only_the_hosts_whose_paths_moved() -> None:
    previous = ring(ALLOW)
    current = compute_routes(state(
        hosts("a", "b", "c", "d", down=("b",)),
        [link(1, "a", "b"), link(2, "b", "c"), link(3, "c", "d"), link(4, "d", "a")],
        [claim("a")]), previous=previous)
    changes = diff_routes(previous, current)
    assert sorted(changes) == ["b", "c"]
    assert changes["b"].removals == (PREFIX,)
    assert vias(changes["c"].upserts[0]) == [("d", "to-d", "10.0.3.2")]


def test_hosts_of_one_big_segment_share_one_next_hop_object() -> None:
    size = 3000
    aliases = tuple(Alias(f"h{i:04d}", "eth0", IPv4Address(0x0A000001 + i), 16)
                    for i in range(size))
    result = compute_routes(ClusterState(tuple(Host(f"h{i:04d}", True) for i in range(size)),
                                         aliases, (claim("h0000"),), MULTIPATH))
    first, last = only_route(result, "h0001"), only_route(result, "h2999")
    assert first.next_hops is last.next_hops  # one object for every host's leg
    assert last.hops == 1


def test_multipath_owner_is_the_nearest_over_every_predecessor_not_the_first() -> None:
    # z reaches segment 10.0.9.0/24 through m and n (m < n); n leads to owner x < y
    shared = tuple(Alias.parse(h, "eth9", f"10.0.9.{i + 1}/24") for i, h in enumerate("mnz"))
    cluster = ClusterState(hosts("m", "n", "x", "y", "z"),
                           (*link(1, "n", "x"), *link(2, "m", "y"), *shared),
                           (claim("x", 1), claim("y", 2)), MULTIPATH)
    route = only_route(compute_routes(cluster), "z")
    assert ([hop.via_host for hop in route.next_hops], route.hops) == (["m", "n"], 2)
    assert route.owner == "x"


def test_diff_reports_an_owner_change_with_the_same_next_hops() -> None:
    links = [link(1, "h", "m"), link(2, "m", "x"), link(3, "m", "y")]
    claims = [claim("x", 1), claim("y", 2)]
    previous = compute_routes(state(hosts("h", "m", "x", "y"), links, claims, MULTIPATH))
    assert only_route(previous, "h").owner == "x"
    current = compute_routes(state(hosts("h", "m", "x", "y"), [links[0], links[2]], claims,
                                   MULTIPATH), previous=previous)
    changes = diff_routes(previous, current)
    assert [(r.owner, r.hops) for r in changes["h"].upserts] == [("y", 2)]
    assert only_route(current, "h").next_hops == only_route(previous, "h").next_hops


def test_diff_sees_a_stubs_gateway_change_when_its_neighbour_is_renumbered() -> None:
    # h is a stub on m's segment; m (a relay) changes its address there
    def cluster(m_address: str) -> ClusterState:
        return ClusterState(hosts("h", "m", "o"), (
            Alias.parse("h", "eth0", "10.0.1.1/24"), Alias.parse("m", "eth0", m_address),
            *link(2, "m", "o")), (claim("o"),))
    previous = compute_routes(cluster("10.0.1.2/24"))
    current = compute_routes(cluster("10.0.1.9/24"), previous=previous)
    changes = diff_routes(previous, current)
    assert [str(hop.gateway) for hop in changes["h"].upserts[0].next_hops] == ["10.0.1.9"]


@st.composite
def alias_changes(draw: st.DrawFn, cluster: ClusterState
                  ) -> tuple[ClusterState, ClusterState, Alias]:
    """(without, with, alias): one alias of the cluster removed, or one added — in a
    subnet of its own, maybe another host's, maybe claimed, or another length."""
    if cluster.aliases and draw(st.booleans()):
        index = draw(st.integers(0, len(cluster.aliases) - 1))
        rest = cluster.aliases[:index] + cluster.aliases[index + 1:]
        return (ClusterState(cluster.hosts, rest, cluster.claims, cluster.policy), cluster,
                cluster.aliases[index])
    host = draw(st.sampled_from([h.id for h in cluster.hosts]))
    n = draw(st.integers(0, 14))
    address = draw(st.sampled_from([f"10.50.{n}.1/24", f"10.100.{n}.9/24",
                                    f"172.16.{n % 5}.1/24", f"172.16.{n % 5}.0/32",
                                    f"10.100.{n}.9/16"]))
    alias = Alias.parse(host, f"if{draw(st.integers(0, 2))}", address)
    grown = ClusterState(cluster.hosts, (*cluster.aliases, alias), cluster.claims,
                         cluster.policy)
    return cluster, grown, alias


@settings(max_examples=300)
@given(random_clusters(), st.data())
def test_an_alias_the_rule_calls_routeless_changes_no_route_and_no_role(
        cluster: ClusterState, data: st.DataObject) -> None:
    without, with_it, alias = data.draw(alias_changes(cluster))
    others_there = any(a.host != alias.host and segment_key(a) == segment_key(alias)
                       for a in without.aliases)
    claimed = {(int(c.prefix.network_address), c.prefix.prefixlen) for c in cluster.claims}
    up = {h.id for h in cluster.hosts if h.up}
    if alias.host in up and not changes_no_route(alias, others_there, claimed):
        return  # the rule makes no promise: the routes are computed again
    assert everything(compute_routes(with_it)) == everything(compute_routes(without))


def test_a_stub_alias_in_a_claimed_prefix_does_change_a_route_so_the_rule_refuses_it() -> None:
    before = state(hosts("a", "b"), [link(1, "a", "b")], [claim("b")])
    stub = Alias.parse("a", "lan", "192.168.100.7/24")  # alone on its subnet: the prefix
    after = ClusterState(before.hosts, (*before.aliases, stub), before.claims, before.policy)
    assert only_route(compute_routes(before), "a").hops == 1
    assert compute_routes(after).routes_for("a") == ()  # attached: no route for it
    claimed = {(int(PREFIX.network_address), PREFIX.prefixlen)}
    assert not changes_no_route(stub, False, claimed)


def test_the_rule_refuses_shared_claimed_and_point_to_point_aliases() -> None:
    claimed = {(int(IPv4Address("172.16.0.0")), 24)}
    assert changes_no_route(Alias.parse("a", "if0", "10.50.0.1/24"), False, claimed)
    assert not changes_no_route(Alias.parse("a", "if0", "10.50.0.1/24"), True, claimed)
    assert not changes_no_route(Alias.parse("a", "if0", "172.16.0.1/24"), False, claimed)
    assert not changes_no_route(Alias.parse("a", "if0", "10.9.9.1/32", "10.9.9.2"), False,
                                claimed)

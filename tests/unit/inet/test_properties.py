"""Property tests: after any sequence of adds, deletes, purges and policy changes,
route ownership, loopback routes and every index agree with a brute-force
recomputation from the interfaces' address lists.

The invariants, precisely (K is a prefix key, G(K) its live addresses, and
owners(K) those of G(K) holding the IFA_ROUTE mark):

(a) Every owner has exactly one installed prefix route at K that points back
    at it, and the table holds no other address-owned route at K. If some
    address of G(K) is on an UP interface, owners(K) is not empty. The number
    of owners never exceeds 1 + the number of addresses successfully added to
    K while the policy was MULTIPATH: ALLOW and REFUSE add an owner only to
    an unrouted prefix and hand-over swaps one owner for another, so a policy
    change never multiplies owners, it only stops adding new legs. An address
    that was already configured gains a route only by hand-over, and only on
    an UP interface. No interface holds two owners of one K (one leg per
    interface: the seed's insert refuses an identical leg with EEXIST, at
    add time and at hand-over).
(b) No route and no loopback route points at a removed address. A loopback
    route for value V exists exactly when some live address with value V
    wants one (non-zero, not on a loopback interface, not a p2p address equal
    to its destination), and it points at one of those.
(c) The indexes (by value, by prefix, owners, subnets per mask, broadcast
    values per interface) equal what the address lists imply, and so do the
    answers of local_ip, local_subnet and is_broadcast.

Interfaces keep their UP flag for the whole sequence: the seed never
re-routes a prefix when an interface comes up, so (a)'s liveness part holds
only for fixed flags (eth2 is DOWN throughout to exercise the UP check).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.errors import RouterError
from router.inet.addr import ALL_HOSTS_GROUP, broadcast_values
from router.inet.domain import InAddr, InetDomain, InetIfInfo, SamePrefixPolicy
from router.link.ifnet import IfFlags, Interface
from tests.unit.inet.support import ETHER, P2P, Rig, ip, make_if

ADDRS = [ip(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1", "10.0.0.0", "0.0.0.0")]
# /24 thrice: same-prefix collisions (the interesting case) must be frequent.
MASKS = [ip(m) for m in ("255.255.255.0", "255.255.255.0", "255.255.255.0", "255.255.0.0",
                         "255.255.255.254", "255.255.255.255")]
DESTS = [ip(a) for a in ("10.0.0.1", "10.0.0.9", "10.0.1.1")]
POLICIES = list(SamePrefixPolicy)


def build_interfaces() -> list[Interface]:
    down = make_if("eth2", 3)
    down.flags &= ~IfFlags.UP
    return [
        make_if("eth0", 1),
        make_if("eth1", 2),
        down,
        make_if("ng0", 4, P2P),
        make_if("lo0", 5, IfFlags.UP | IfFlags.LOOPBACK),
    ]


adds = st.tuples(st.just("add"), st.integers(0, 4), st.sampled_from(ADDRS),
                 st.sampled_from(MASKS), st.sampled_from(DESTS))
ops = st.one_of(
    adds,
    adds,
    st.tuples(st.just("del"), st.integers(0, 4), st.sampled_from([*ADDRS, None])),
    st.tuples(st.just("purge"), st.integers(0, 4)),
    st.tuples(st.just("policy"), st.sampled_from(POLICIES)),
)


def live_addresses(ifs: list[Interface]) -> list[InAddr]:
    return [a for ifp in ifs if isinstance(ifp.inet, InetIfInfo) for a in ifp.inet.addrs.values()]


def seed_heir(ia: InAddr, live: list[InAddr], owners: set[int]) -> InAddr | None:
    """The seed's hand-over target: first in add order, same prefix, UP, no route —
    and None when its interface still has a leg of the prefix (the insert is
    EEXIST and the scrub ends there).

    ``owners`` are the ids of the addresses that had a route before the delete.
    """
    for other in sorted(live, key=lambda a: a.seq):
        if (other is not ia and other.route_key == ia.route_key and id(other) not in owners
                and other.ifp.flags & IfFlags.UP):
            has_leg = any(id(a) in owners and a is not ia and a.ifp is other.ifp
                          and a.route_key == ia.route_key for a in live)
            return None if has_leg else other
    return None


def apply(rig: Rig, ifs: list[Interface], op: tuple[Any, ...], mp_adds: Counter[Any]) -> None:
    kind = op[0]
    try:
        if kind == "add":
            ifp = ifs[op[1]]
            ia = rig.inet.add_alias(ifp, op[2], op[3], dest=op[4])
            if rig.inet.policy is SamePrefixPolicy.MULTIPATH:
                mp_adds[ia.route_key] += 1
        elif kind == "del":
            rig.inet.delete_alias(ifs[op[1]], op[2])
        elif kind == "purge":
            rig.inet.purge_interface(ifs[op[1]])
        else:
            rig.inet.policy = op[1]
    except RouterError:
        pass


def check_routes(rig: Rig, live: list[InAddr], mp_adds: Counter[Any]) -> None:
    groups: dict[Any, list[InAddr]] = {}
    for ia in live:
        groups.setdefault(ia.route_key, []).append(ia)
    live_ids = {id(a) for a in live}
    for key, members in groups.items():
        owners = [a for a in members if a.owns_route]
        for owner in owners:
            route = owner.prefix_route
            assert route is not None and route.installed and route.ifaddr is owner
            assert (route.prefix, route.plen) == key and route.ifindex == owner.ifp.index
        at_key = [r for r in rig.routes.get(*key) if isinstance(r.ifaddr, InAddr)
                  and not r.is_local]
        assert {id(r) for r in at_key} == {id(o.prefix_route) for o in owners}
        if any(a.ifp.flags & IfFlags.UP for a in members):
            assert owners, f"prefix {key} has UP addresses but no route"
        assert len(owners) <= 1 + mp_adds[key]
        legs = Counter(owner.ifp.name for owner in owners)
        assert all(n == 1 for n in legs.values()), f"prefix {key}: two legs on one interface"
        assert all(not a.owns_route or a.prefix_route for a in members)
    for route in rig.routes.routes():
        if route.ifaddr is not None:
            assert id(route.ifaddr) in live_ids, f"{route} points at a removed address"
            if not route.is_local:
                assert route.ifaddr.owns_route


def check_local_routes(inet: InetDomain, rig: Rig, live: list[InAddr]) -> None:
    wanting: dict[int, list[InAddr]] = {}
    for ia in live:
        if ia.wants_local:
            wanting.setdefault(ia.addr, []).append(ia)
    local_routes = [r for r in rig.routes.routes() if r.is_local]
    assert sorted(r.prefix for r in local_routes) == sorted(wanting)
    for route in local_routes:
        assert any(route.ifaddr is ia for ia in wanting[route.prefix])
        assert inet.local_route(route.prefix) is route


def check_indexes(inet: InetDomain, ifs: list[Interface], live: list[InAddr]) -> None:
    def ids(d: dict[Any, dict[InAddr, None]]) -> dict[Any, list[int]]:
        return {k: [id(a) for a in v] for k, v in d.items()}

    by_value: dict[int, list[int]] = {}
    by_key: dict[Any, dict[str, list[int]]] = {}
    owners: dict[Any, set[int]] = {}
    subnets: dict[int, Counter[int]] = {}
    for ia in live:
        by_value.setdefault(ia.addr, []).append(id(ia))
        by_key.setdefault(ia.route_key, {}).setdefault(ia.ifp.name, []).append(id(ia))
        if ia.owns_route:
            owners.setdefault(ia.route_key, set()).add(id(ia))
        subnets.setdefault(ia.mask, Counter())[ia.subnet] += 1
    assert {k: sorted(v) for k, v in ids(inet.index.by_value).items()} == {
        k: sorted(v) for k, v in by_value.items()
    }
    assert set(inet.index.value_keys) == {v.to_bytes(4, "big") for v in by_value}
    assert inet.index.value_last_octets == dict(Counter(v & 0xFF for v in by_value))
    assert {k: {ifp.name: [id(a) for a in group] for ifp, group in on_key.items()}
            for k, on_key in inet.index.by_key.items()} == by_key
    assert {k: set(v) for k, v in ids(inet._owners).items()} == owners
    assert inet.index.subnets == {m: dict(c) for m, c in subnets.items()}
    for ifp in ifs:
        listed = [a for a in ifp.addresses if isinstance(a, InAddr)]
        info = ifp.inet
        if info is None:
            assert not listed
            continue
        assert isinstance(info, InetIfInfo)
        mine = list(info.addrs.values())
        assert listed == mine[:1], "Interface.addresses must carry the primary address only"
        on_subnets: dict[int, dict[int, list[int]]] = {}
        for ia in mine:
            on_subnets.setdefault(ia.mask, {}).setdefault(ia.subnet, []).append(id(ia))
        assert {m: {n: [id(a) for a in group] for n, group in by_subnet.items()}
                for m, by_subnet in info.subnets.items()} == on_subnets
        assert [a.seq for a in mine] == sorted(a.seq for a in mine)
        hits: Counter[int] = Counter()
        for ia in mine:
            hits.update(broadcast_values(ia))
        assert info.broadcast_hits == dict(hits)
        assert info.allhosts == bool(mine and ifp.flags & IfFlags.MULTICAST)
        assert (ALL_HOSTS_GROUP in info.groups) == info.allhosts


def check_queries(inet: InetDomain, ifs: list[Interface], live: list[InAddr]) -> None:
    probes = [*ADDRS, *DESTS, ip("10.0.0.255"), ip("10.0.255.255"), ip("10.0.1.0"),
              ip("10.0.0.77"), ip("11.0.0.1"), ip("255.255.255.255")]
    for value in probes:
        assert inet.local_ip(value) == any(a.addr == value for a in live)
        assert inet.local_subnet(value) == any(value & a.mask == a.subnet for a in live)
        for ifp in ifs:
            expected = value in (0, 0xFFFFFFFF) or (bool(ifp.flags & IfFlags.BROADCAST) and any(
                (value == a.broadcast or (a.mask != 0xFFFFFFFE and value == a.subnet))
                and a.mask != 0xFFFFFFFF
                for a in live if a.ifp is ifp
            ))
            assert inet.is_broadcast(value, ifp) == expected
            mine = [a for a in live if a.ifp is ifp]
            on_subnet = [a for a in mine if value & a.mask == a.subnet]
            source = (on_subnet or mine or [None])[0]
            assert inet.address_on(ifp, value) == (source.addr if source else 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=30))
def test_any_sequence_keeps_routes_local_routes_and_indexes_consistent(
    sequence: list[tuple[Any, ...]],
) -> None:
    rig = Rig()
    ifs = build_interfaces()
    mp_adds: Counter[Any] = Counter()
    removed: list[InAddr] = []
    for op in sequence:
        before = live_addresses(ifs)
        had_route = {id(a) for a in before if a.owns_route}
        apply(rig, ifs, op, mp_adds)
        live = live_addresses(ifs)
        gone = [a for a in before if all(a is not b for b in live)]
        removed.extend(gone)
        if op[0] == "del" and len(gone) == 1 and id(gone[0]) in had_route:
            expected = seed_heir(gone[0], before, had_route)
            assert expected is None or expected.owns_route, "hand-over not in seed order"
        for heir in (a for a in before if a.owns_route and id(a) not in had_route):
            assert heir.ifp.flags & IfFlags.UP, "route handed over to a DOWN interface"
        check_routes(rig, live, mp_adds)
        check_local_routes(rig.inet, rig, live)
        check_indexes(rig.inet, ifs, live)
        check_queries(rig.inet, ifs, live)
    for ia in removed:
        assert ia.prefix_route is None and not ia.owns_route


# One prefix over the three Ethernet interfaces (eth2 DOWN): the hand-over chains.
one_prefix_ops = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 2), st.sampled_from(ADDRS[:3]),
              st.just(MASKS[0]), st.just(DESTS[0])),
    st.tuples(st.just("del"), st.integers(0, 2), st.sampled_from([*ADDRS[:3], None])),
    st.tuples(st.just("purge"), st.integers(0, 2)),
    st.tuples(st.just("policy"), st.sampled_from(POLICIES)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(one_prefix_ops, max_size=20))
def test_one_prefix_hand_over_chains_keep_invariants(sequence: list[tuple[Any, ...]]) -> None:
    test_any_sequence_keeps_routes_local_routes_and_indexes_consistent.hypothesis.inner_test(
        sequence
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(ops, max_size=25))
def test_purging_every_interface_leaves_nothing(sequence: list[tuple[Any, ...]]) -> None:
    rig = Rig()
    ifs = build_interfaces()
    mp_adds: Counter[Any] = Counter()
    for op in sequence:
        apply(rig, ifs, op, mp_adds)
    for ifp in ifs:
        rig.inet.purge_interface(ifp)
    assert len(rig.routes) == 0
    assert live_addresses(ifs) == []
    assert rig.inet.index.by_value == {} and rig.inet.index.by_key == {} and rig.inet._owners == {}
    assert rig.inet.index.subnets == {} and rig.inet._local == {}
    for ifp in ifs:
        assert ifp.inet is None or (ifp.inet.groups == {} and ifp.inet.broadcast_hits == {})


def test_ether_flags_are_what_the_properties_assume() -> None:
    assert ETHER & IfFlags.UP and ETHER & IfFlags.MULTICAST and ETHER & IfFlags.BROADCAST

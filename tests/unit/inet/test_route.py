"""The route table: longest-prefix match, multipath, routing messages, caches."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.errors import EEXIST, EINVAL, ESRCH, RouterError
from router.events import Event, EventKind
from router.inet.route import Route, RouteFlags, RouteTable, mask_to_plen, ntoa, plen_to_mask
from router.link.ifnet import AF_INET, AF_INET6


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def table(events: list[Event]) -> RouteTable:
    return RouteTable(events.append)


def test_mask_helpers_round_trip() -> None:
    assert plen_to_mask(24) == 0xFFFFFF00
    assert plen_to_mask(0) == 0
    assert mask_to_plen(0xFFFFFF00) == 24
    assert mask_to_plen(0xFF00FF00) is None
    assert ntoa(ip("10.1.2.3")) == "10.1.2.3"


def test_lookup_prefers_longest_prefix(table: RouteTable) -> None:
    table.add(0, 0, ifindex=1, gateway=ip("192.0.2.1"), flags=RouteFlags.GATEWAY)
    table.add(ip("10.0.0.0"), 8, ifindex=2)
    table.add(ip("10.1.0.0"), 16, ifindex=3)
    assert table.lookup(ip("10.1.2.3")).ifindex == 3  # type: ignore[union-attr]
    assert table.lookup(ip("10.2.0.1")).ifindex == 2  # type: ignore[union-attr]
    assert table.lookup(ip("8.8.8.8")).ifindex == 1  # type: ignore[union-attr]


def test_lookup_without_match_is_none(table: RouteTable) -> None:
    table.add(ip("10.0.0.0"), 8, ifindex=2)
    assert table.lookup(ip("11.0.0.1")) is None


def test_add_masks_host_bits(table: RouteTable) -> None:
    route = table.add(ip("10.1.2.3"), 24, ifindex=1)
    assert route.prefix == ip("10.1.2.0")
    assert table.get(ip("10.1.2.0"), 24) == (route,)


def test_add_bad_prefix_length_is_einval(table: RouteTable) -> None:
    with pytest.raises(RouterError) as err:
        table.add(0, 33, ifindex=1)
    assert err.value.errno == EINVAL and err.value.field == "plen"


def test_add_same_prefix_twice_is_eexist(table: RouteTable) -> None:
    table.add(ip("10.0.0.0"), 24, ifindex=1)
    with pytest.raises(RouterError) as err:
        table.add(ip("10.0.0.0"), 24, ifindex=2)
    assert err.value.errno == EEXIST
    assert len(table) == 1


def test_multipath_add_joins_and_marks_multipath(table: RouteTable) -> None:
    first = table.add(ip("10.0.0.0"), 24, ifindex=1, source=ip("10.0.0.1"))
    second = table.add(ip("10.0.0.0"), 24, ifindex=2, source=ip("10.0.0.2"), multipath=True)
    assert not first.flags & RouteFlags.MULTIPATH
    assert second.flags & RouteFlags.MULTIPATH
    assert table.lookup_all(ip("10.0.0.9")) == (first, second)
    assert table.lookup(ip("10.0.0.9")) is first


def test_multipath_same_interface_gateway_and_source_is_eexist(table: RouteTable) -> None:
    table.add(ip("10.0.0.0"), 24, ifindex=1, gateway=5, flags=RouteFlags.GATEWAY)
    with pytest.raises(RouterError) as err:
        table.add(ip("10.0.0.0"), 24, ifindex=1, gateway=5, multipath=True)
    assert err.value.errno == EEXIST


def test_local_route_shares_key_with_connected_route_and_wins(table: RouteTable) -> None:
    connected = table.add(ip("10.0.0.1"), 32, ifindex=1)
    local = table.add(ip("10.0.0.1"), 32, ifindex=1, flags=RouteFlags.LOCAL | RouteFlags.HOST)
    assert table.lookup(ip("10.0.0.1")) is local
    assert table.get(ip("10.0.0.1"), 32) == (local, connected)
    assert not local.flags & RouteFlags.MULTIPATH


def test_second_local_route_for_one_address_is_eexist(table: RouteTable) -> None:
    table.add(ip("10.0.0.1"), 32, ifindex=1, flags=RouteFlags.LOCAL)
    with pytest.raises(RouterError) as err:
        table.add(ip("10.0.0.1"), 32, ifindex=2, flags=RouteFlags.LOCAL, multipath=True)
    assert err.value.errno == EEXIST


def test_delete_unknown_is_esrch(table: RouteTable) -> None:
    table.add(ip("10.0.0.0"), 24, ifindex=1)
    with pytest.raises(RouterError) as err:
        table.delete(ip("10.0.1.0"), 24)
    assert err.value.errno == ESRCH
    with pytest.raises(RouterError) as err:
        table.delete(ip("10.0.0.0"), 24, ifindex=7)
    assert err.value.errno == ESRCH


def test_delete_selects_multipath_leg_by_interface(table: RouteTable) -> None:
    first = table.add(ip("10.0.0.0"), 24, ifindex=1)
    second = table.add(ip("10.0.0.0"), 24, ifindex=2, multipath=True)
    assert table.delete(ip("10.0.0.0"), 24, ifindex=2) is second
    assert table.get(ip("10.0.0.0"), 24) == (first,)
    assert not second.installed and first.installed


def test_delete_last_route_of_a_length_drops_the_level(table: RouteTable) -> None:
    table.add(ip("10.0.0.0"), 24, ifindex=1)
    table.add(ip("10.0.0.0"), 8, ifindex=2)
    table.delete(ip("10.0.0.0"), 24)
    assert table.lookup(ip("10.0.0.5")).plen == 8  # type: ignore[union-attr]
    assert len(table) == 1


def test_remove_twice_reports_false(table: RouteTable) -> None:
    route = table.add(ip("10.0.0.0"), 24, ifindex=1)
    assert table.remove(route) is True
    assert table.remove(route) is False


def test_add_and_delete_emit_routing_messages(table: RouteTable, events: list[Event]) -> None:
    table.add(ip("10.0.0.0"), 24, ifindex=3, ifname="eth0", source=ip("10.0.0.1"))
    table.delete(ip("10.0.0.0"), 24)
    assert [e.kind for e in events] == [EventKind.RTM_ADD, EventKind.RTM_DELETE]
    assert events[0].ifname == "eth0" and events[0].ifindex == 3
    assert events[0].data["dst"] == "10.0.0.0" and events[0].data["plen"] == 24
    assert events[0].data["source"] == "10.0.0.1"
    assert events[0].data["flags"] == "UP"


def test_change_repoints_route_and_emits_rtm_change(
    table: RouteTable, events: list[Event]
) -> None:
    route = table.add(ip("10.0.0.1"), 32, ifindex=1, flags=RouteFlags.LOCAL)
    table.change(route, ifaddr="other", source=ip("10.0.0.1"), ifindex=4, ifname="eth4")
    assert route.ifindex == 4 and route.ifaddr == "other"
    assert table.routes_of(4) == [route] and table.routes_of(1) == []
    assert events[-1].kind is EventKind.RTM_CHANGE


def test_change_of_removed_route_is_esrch(table: RouteTable) -> None:
    route = table.add(ip("10.0.0.1"), 32, ifindex=1)
    table.remove(route)
    with pytest.raises(RouterError) as err:
        table.change(route, ifaddr=None, source=0)
    assert err.value.errno == ESRCH


def test_generation_bumps_on_every_change(table: RouteTable) -> None:
    g0 = table.generation
    route = table.add(ip("10.0.0.0"), 24, ifindex=1)
    g1 = table.generation
    table.change(route, ifaddr=None, source=0)
    g2 = table.generation
    table.remove(route)
    assert g0 < g1 < g2 < table.generation


def test_failed_add_leaves_generation_alone(table: RouteTable) -> None:
    table.add(ip("10.0.0.0"), 24, ifindex=1)
    before = table.generation
    with pytest.raises(RouterError):
        table.add(ip("10.0.0.0"), 24, ifindex=1)
    assert table.generation == before


def test_remove_interface_removes_only_that_interface_and_family(
    table: RouteTable, events: list[Event]
) -> None:
    a = table.add(ip("10.0.0.0"), 24, ifindex=1)
    b = table.add(ip("10.0.0.1"), 32, ifindex=1, flags=RouteFlags.LOCAL)
    other = table.add(ip("10.1.0.0"), 24, ifindex=2)
    v6 = table.add(ip("10.2.0.0"), 24, ifindex=1, family=AF_INET6)
    events.clear()
    removed = table.remove_interface(1, AF_INET)
    assert removed == [a, b]
    assert table.routes() == [other, v6]
    assert [e.kind for e in events] == [EventKind.RTM_DELETE, EventKind.RTM_DELETE]


def test_cached_lookup_reuses_answer_until_generation_changes(table: RouteTable) -> None:
    wide = table.add(ip("10.0.0.0"), 8, ifindex=1)
    assert table.cached_lookup(5, ip("10.1.1.1")) is wide
    # Poke the cache: an unchanged table and destination must return the cached entry.
    table._cache[5] = (ip("10.1.1.1"), table.generation, None)
    assert table.cached_lookup(5, ip("10.1.1.1")) is None
    narrow = table.add(ip("10.1.0.0"), 16, ifindex=2)
    assert table.cached_lookup(5, ip("10.1.1.1")) is narrow


def test_cached_lookup_refreshes_on_new_destination(table: RouteTable) -> None:
    a = table.add(ip("10.0.0.0"), 8, ifindex=1)
    b = table.add(ip("11.0.0.0"), 8, ifindex=2)
    assert table.cached_lookup(1, ip("10.0.0.1")) is a
    assert table.cached_lookup(1, ip("11.0.0.1")) is b


def test_routes_listing_is_sorted(table: RouteTable) -> None:
    table.add(ip("10.1.0.0"), 16, ifindex=1)
    table.add(ip("10.0.0.0"), 8, ifindex=1)
    table.add(ip("9.0.0.0"), 8, ifindex=1)
    assert [(ntoa(r.prefix), r.plen) for r in table.routes()] == [
        ("9.0.0.0", 8), ("10.0.0.0", 8), ("10.1.0.0", 16)
    ]


prefixes = st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 32))


def _brute_force(routes: list[Route], addr: int) -> Route | None:
    best: Route | None = None
    for route in routes:
        if addr & route.mask == route.prefix and (best is None or route.plen > best.plen):
            best = route
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(prefixes, max_size=40), st.lists(st.integers(0, 0xFFFFFFFF), max_size=20))
def test_lookup_agrees_with_brute_force_longest_match(
    entries: list[tuple[int, int]], probes: list[int]
) -> None:
    table = RouteTable()
    added: list[Route] = []
    for prefix, plen in entries:
        try:
            added.append(table.add(prefix, plen, ifindex=1))
        except RouterError as err:
            assert err.errno == EEXIST
    # Probe both random addresses and the prefixes themselves.
    for addr in probes + [r.prefix for r in added]:
        expected = _brute_force(added, addr)
        assert table.lookup(addr) is expected


@settings(max_examples=40, deadline=None)
@given(st.lists(prefixes, min_size=1, max_size=30), st.data())
def test_deletes_leave_table_consistent(
    entries: list[tuple[int, int]], data: st.DataObject
) -> None:
    table = RouteTable()
    added: list[Route] = []
    for prefix, plen in entries:
        with contextlib.suppress(RouterError):
            added.append(table.add(prefix, plen, ifindex=plen % 3))
    doomed = data.draw(st.lists(st.sampled_from(added), unique_by=id))
    for route in doomed:
        table.remove(route)
    alive = [r for r in added if r.installed]
    assert sorted(map(id, table.routes())) == sorted(map(id, alive))
    assert len(table) == len(alive)
    for route in added:
        assert table.lookup(route.prefix) is _brute_force(alive, route.prefix)
    for ifindex in range(3):
        assert set(map(id, table.routes_of(ifindex))) == {
            id(r) for r in alive if r.ifindex == ifindex
        }

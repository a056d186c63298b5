"""The per-interface ARP table: the seed's in_lltable_* rules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.arp.lltable import LleFlags, LlEntry, LlTable, NudState, RouteBits
from router.errors import EEXIST, EINVAL, EPERM, ESRCH
from router.inet.route import RouteFlags, RouteTable
from router.link.ifnet import IfFlags, IfType, Interface
from tests.unit.arp.support import MAC_A, MAC_B, MAC_US, MAC_US2, ip, make_ifp

UP, GATEWAY, HOST = RouteBits.UP, RouteBits.GATEWAY, RouteBits.HOST


@dataclass
class FakeRoute:
    prefix: int
    plen: int
    flags: int
    ifindex: int
    gateway: int = 0


class Fixture:
    """eth0 (index 1) and eth1 (index 2); routes answered by ``self.route``."""

    def __init__(self) -> None:
        self.eth0 = make_ifp("eth0", 1, MAC_US)
        self.eth1 = make_ifp("eth1", 2, MAC_US2)
        self.ifps = {1: self.eth0, 2: self.eth1}
        self.route: FakeRoute | None = FakeRoute(ip("10.0.0.0"), 24, UP, 1)
        self.own_prefixes: list[tuple[int, int]] = []  # (prefix, mask) of eth0's addresses
        self.table = LlTable(self.eth0, lambda addr: self.route, self.ifps.get, self.on_link)

    def on_link(self, ifp: Interface, addr: int) -> bool:
        assert ifp is self.eth0
        return any(addr & mask == prefix for prefix, mask in self.own_prefixes)


@pytest.fixture
def fx() -> Fixture:
    return Fixture()


def test_route_bits_are_the_route_tables_flag_values() -> None:
    assert int(RouteBits.UP) == int(RouteFlags.UP)
    assert int(RouteBits.GATEWAY) == int(RouteFlags.GATEWAY)
    assert int(RouteBits.HOST) == int(RouteFlags.HOST)


# -- in_lltable_rtcheck --------------------------------------------------------------


def test_rtcheck_without_route_is_einval(fx: Fixture) -> None:
    fx.route = None
    assert fx.table.rtcheck(ip("10.0.0.2")) == EINVAL


def test_rtcheck_accepts_connected_route_on_same_interface(fx: Fixture) -> None:
    assert fx.table.rtcheck(ip("10.0.0.2")) == 0


def test_rtcheck_refuses_gateway_route_that_is_not_a_host_route(fx: Fixture) -> None:
    fx.route = FakeRoute(ip("10.0.0.0"), 24, UP | GATEWAY, 1, gateway=ip("10.0.0.2"))
    assert fx.table.rtcheck(ip("10.0.0.2")) == EINVAL


def test_rtcheck_accepts_host_gateway_route_whose_gateway_is_the_address(fx: Fixture) -> None:
    fx.route = FakeRoute(ip("10.9.9.9"), 32, UP | GATEWAY | HOST, 1, gateway=ip("10.9.9.9"))
    assert fx.table.rtcheck(ip("10.9.9.9")) == 0


def test_rtcheck_refuses_host_gateway_route_to_another_gateway(fx: Fixture) -> None:
    fx.route = FakeRoute(ip("10.9.9.9"), 32, UP | GATEWAY | HOST, 1, gateway=ip("10.0.0.254"))
    assert fx.table.rtcheck(ip("10.9.9.9")) == EINVAL


@pytest.mark.parametrize("flag", [IfFlags.NOARP, IfFlags.STATICARP])
def test_rtcheck_refuses_host_gateway_route_via_interface_without_arp(
        fx: Fixture, flag: IfFlags) -> None:
    fx.eth0.flags |= flag
    fx.route = FakeRoute(ip("10.9.9.9"), 32, UP | GATEWAY | HOST, 1, gateway=ip("10.9.9.9"))
    assert fx.table.rtcheck(ip("10.9.9.9")) == EINVAL


def test_rtcheck_refuses_host_gateway_route_via_non_ethernet_interface(fx: Fixture) -> None:
    fx.eth1.type = IfType.PROPVIRTUAL
    fx.route = FakeRoute(ip("10.9.9.9"), 32, UP | GATEWAY | HOST, 2, gateway=ip("10.9.9.9"))
    assert fx.table.rtcheck(ip("10.9.9.9")) == EINVAL


def test_rtcheck_refuses_host_gateway_route_via_unknown_interface(fx: Fixture) -> None:
    fx.route = FakeRoute(ip("10.9.9.9"), 32, UP | GATEWAY | HOST, 77, gateway=ip("10.9.9.9"))
    assert fx.table.rtcheck(ip("10.9.9.9")) == EINVAL


def test_rtcheck_accepts_other_interfaces_route_where_this_one_shares_the_prefix(
        fx: Fixture) -> None:
    # Two interfaces share 10.0.0.0/24 and the route names the other one.
    fx.own_prefixes = [(ip("10.0.0.0"), 0xFFFFFF00)]
    fx.route = FakeRoute(ip("10.0.0.0"), 24, UP, 2)
    assert fx.table.rtcheck(ip("10.0.0.77")) == 0


def test_rtcheck_refuses_other_interfaces_route_to_a_prefix_this_one_lacks(
        fx: Fixture) -> None:
    # The route covers the address, but on the other interface's subnet only.
    fx.own_prefixes = [(ip("10.0.1.0"), 0xFFFFFF00)]
    fx.route = FakeRoute(ip("10.0.0.0"), 24, UP, 2)
    assert fx.table.rtcheck(ip("10.0.0.77")) == EINVAL


def test_rtcheck_refuses_other_interfaces_route_without_any_address_here(fx: Fixture) -> None:
    fx.route = FakeRoute(ip("10.0.0.0"), 24, UP, 2)
    assert fx.table.rtcheck(ip("10.0.0.77")) == EINVAL


def test_rtcheck_does_not_mask_check_a_route_on_this_interface(fx: Fixture) -> None:
    fx.route = FakeRoute(ip("10.0.1.0"), 24, UP, 1)
    assert fx.table.rtcheck(ip("10.0.0.77")) == 0


def test_rtcheck_does_not_mask_check_a_host_route_on_another_interface(fx: Fixture) -> None:
    fx.route = FakeRoute(ip("192.168.0.1"), 32, UP | HOST, 2)
    assert fx.table.rtcheck(ip("10.0.0.77")) == 0


def test_rtcheck_reads_a_real_route_table() -> None:
    routes = RouteTable()
    eth0 = make_ifp("eth0", 1, MAC_US)
    routes.add(ip("10.0.0.0"), 24, ifindex=1)
    routes.add(ip("0.0.0.0"), 0, ifindex=1, flags=RouteFlags.UP | RouteFlags.GATEWAY,
               gateway=ip("10.0.0.254"))
    table = LlTable(eth0, routes.lookup, {1: eth0}.get)
    assert table.rtcheck(ip("10.0.0.9")) == 0
    assert table.rtcheck(ip("8.8.8.8")) == EINVAL  # behind the default gateway


# -- in_lltable_lookup / in_lltable_new ----------------------------------------------


def test_create_refused_by_rtcheck_makes_no_entry(fx: Fixture) -> None:
    fx.route = None
    assert fx.table.create(ip("10.0.0.2")) == (EINVAL, None)
    assert fx.table.lookup(ip("10.0.0.2")) is None and len(fx.table) == 0


def test_new_entry_is_unresolved_and_counted_dynamic(fx: Fixture) -> None:
    error, entry = fx.table.create(ip("10.0.0.2"), now=5.0)
    assert error == 0 and entry is not None
    assert entry.state is NudState.NONE and not entry.flags & LleFlags.VALID
    assert entry.lladdr == b"" and entry.updated == 5.0
    assert fx.table.dynamic == 1


def test_create_returns_the_existing_entry_unchanged(fx: Fixture) -> None:
    _, first = fx.table.create(ip("10.0.0.2"))
    fx.route = None  # the rtcheck is not run for an existing entry
    error, again = fx.table.create(ip("10.0.0.2"), LleFlags.IFADDR)
    assert error == 0 and again is first and not first.flags & LleFlags.IFADDR


def test_ifaddr_entry_skips_rtcheck_and_is_valid_static_with_our_mac(fx: Fixture) -> None:
    fx.route = None
    error, entry = fx.table.create(ip("10.0.0.1"), LleFlags.IFADDR)
    assert error == 0 and entry is not None
    assert entry.flags & (LleFlags.VALID | LleFlags.STATIC | LleFlags.IFADDR) == (
        LleFlags.VALID | LleFlags.STATIC | LleFlags.IFADDR)
    assert entry.lladdr == MAC_US and entry.state is NudState.PERMANENT and entry.ready
    assert fx.table.dynamic == 0


def test_creating_an_entry_bumps_the_generation(fx: Fixture) -> None:
    before = fx.table.generation
    fx.table.create(ip("10.0.0.2"))
    assert fx.table.generation > before


def test_make_static_refuses_an_interface_address_entry(fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.1"), LleFlags.IFADDR)
    assert entry is not None
    assert fx.table.make_static(entry, MAC_A, published=False) == EEXIST
    assert entry.lladdr == MAC_US


def test_make_static_takes_a_dynamic_entry_out_of_the_collectable_count(fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.2"))
    assert entry is not None
    assert fx.table.make_static(entry, MAC_A, published=True) == 0
    assert fx.table.dynamic == 0 and entry.static and entry.flags & LleFlags.PUB
    assert entry.state is NudState.PERMANENT and entry.lladdr == MAC_A


# -- delete --------------------------------------------------------------------------


def test_delete_of_an_absent_entry_is_esrch(fx: Fixture) -> None:
    assert fx.table.delete(ip("10.0.0.2")) == (ESRCH, None)


def test_delete_leaves_an_interface_address_entry_without_the_ifaddr_flag(
        fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.1"), LleFlags.IFADDR)
    assert fx.table.delete(ip("10.0.0.1")) == (EPERM, entry)
    assert fx.table.lookup(ip("10.0.0.1")) is entry


def test_delete_with_the_ifaddr_flag_removes_the_interface_address_entry(
        fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.1"), LleFlags.IFADDR)
    assert fx.table.delete(ip("10.0.0.1"), LleFlags.IFADDR) == (0, entry)
    assert fx.table.lookup(ip("10.0.0.1")) is None
    assert entry is not None and not entry.freed and entry in fx.table.dying


def test_lookup_never_finds_a_deleted_entry(fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.2"))
    fx.table.delete(ip("10.0.0.2"))
    assert fx.table.lookup(ip("10.0.0.2")) is None
    assert entry is not None and entry.flags & LleFlags.DELETED
    _, fresh = fx.table.create(ip("10.0.0.2"))
    assert fresh is not entry  # a new entry, the deleted one stays deleted


def test_delete_frees_a_plain_static_entry_at_once(fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.2"), LleFlags.STATIC)
    fx.table.delete(ip("10.0.0.2"))
    assert entry is not None and entry.freed and fx.table.dying == []


def test_delete_of_a_dynamic_entry_frees_it_at_the_next_reap(fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.2"))
    assert entry is not None
    entry.hold.extend([b"p1", b"p2"])
    fx.table.delete(ip("10.0.0.2"))
    assert not entry.freed and fx.table.dynamic == 0
    assert fx.table.reap() == 2
    assert entry.freed and not entry.hold and fx.table.dying == []


# -- in_lltable_prefix_free ----------------------------------------------------------


def _populate(fx: Fixture) -> dict[str, LlEntry]:
    fx.route = FakeRoute(ip("0.0.0.0"), 0, UP, 1)
    made = {}
    for name, addr, flags in [("dyn", "10.0.0.2", LleFlags.NONE),
                              ("static", "10.0.0.3", LleFlags.STATIC),
                              ("ifaddr", "10.0.0.1", LleFlags.IFADDR),
                              ("other", "10.0.1.2", LleFlags.NONE)]:
        _, entry = fx.table.create(ip(addr), flags)
        assert entry is not None
        made[name] = entry
    return made


def test_prefix_free_spares_static_entries_unless_asked(fx: Fixture) -> None:
    made = _populate(fx)
    gone = fx.table.prefix_free(ip("10.0.0.0"), 0xFFFFFF00, include_static=False)
    assert gone == [made["dyn"]]
    assert fx.table.lookup(ip("10.0.0.3")) is made["static"]
    assert fx.table.lookup(ip("10.0.0.1")) is made["ifaddr"]


def test_prefix_free_with_static_takes_static_and_interface_entries(fx: Fixture) -> None:
    made = _populate(fx)
    gone = fx.table.prefix_free(ip("10.0.0.0"), 0xFFFFFF00, include_static=True)
    assert set(map(id, gone)) == {id(made[k]) for k in ("dyn", "static", "ifaddr")}
    assert [e.addr for e in fx.table.entries.values()] == [ip("10.0.1.2")]


def test_prefix_free_only_touches_its_prefix(fx: Fixture) -> None:
    made = _populate(fx)
    fx.table.prefix_free(ip("10.0.1.0"), 0xFFFFFF00, include_static=True)
    assert fx.table.lookup(ip("10.0.1.2")) is None
    assert made["other"].flags & LleFlags.DELETED
    assert len(fx.table) == 3


# -- in_lltable_dump -----------------------------------------------------------------


def test_dump_reports_flags_and_expiry(fx: Fixture) -> None:
    made = _populate(fx)
    fx.table.make_static(made["static"], MAC_B, published=True)
    made["dyn"].set_state(NudState.STALE)
    made["dyn"].timer_at = 42.0
    rows = {row.addr: row for row in fx.table.dump()}
    static = rows[ip("10.0.0.3")]
    assert static.static and static.published and static.valid and static.expire == 0.0
    assert static.lladdr == MAC_B and static.ifindex == 1 and static.ifname == "eth0"
    dyn = rows[ip("10.0.0.2")]
    assert not dyn.static and not dyn.valid and dyn.lladdr == b"" and dyn.expire == 42.0
    assert rows[ip("10.0.0.1")].ifaddr and rows[ip("10.0.0.1")].lladdr == MAC_US


def test_dump_of_a_reachable_entry_shows_the_end_of_its_reachable_time(fx: Fixture) -> None:
    _, entry = fx.table.create(ip("10.0.0.2"))
    assert entry is not None
    entry.set_state(NudState.REACHABLE)
    entry.reachable_until, entry.timer_at = 33.0, 20.0
    assert fx.table.dump()[0].expire == 33.0


def test_dump_skips_deleted_entries(fx: Fixture) -> None:
    _populate(fx)
    fx.table.delete(ip("10.0.0.2"))
    assert ip("10.0.0.2") not in {row.addr for row in fx.table.dump()}
    assert len(fx.table.dump()) == 3


# -- lltable_free (in_domifdetach) ---------------------------------------------------


def test_free_returns_every_entry_including_the_dying_ones(fx: Fixture) -> None:
    made = _populate(fx)
    fx.table.delete(ip("10.0.0.2"))
    every = fx.table.free()
    assert {id(e) for e in every} == {id(e) for e in made.values()}
    assert len(fx.table) == 0 and fx.table.dying == [] and fx.table.dynamic == 0


# -- invariants ----------------------------------------------------------------------

_OPS = st.lists(
    st.tuples(st.sampled_from(["create", "static", "ifaddr", "delete", "delete_ifaddr",
                               "flush", "flush_all"]),
              st.integers(0, 7)),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_dynamic_count_and_generation_agree_with_the_entries(ops: list[tuple[str, int]]) -> None:
    eth0: Interface = make_ifp("eth0", 1, MAC_US)
    route = FakeRoute(ip("10.0.0.0"), 24, UP, 1)
    table = LlTable(eth0, lambda addr: route, {1: eth0}.get)
    last_generation = table.generation
    for op, host in ops:
        addr = ip("10.0.0.0") + host
        if op == "create":
            table.create(addr)
        elif op == "static":
            table.create(addr, LleFlags.STATIC)
        elif op == "ifaddr":
            table.create(addr, LleFlags.IFADDR)
        elif op == "delete":
            table.delete(addr)
        elif op == "delete_ifaddr":
            table.delete(addr, LleFlags.IFADDR)
        else:
            table.prefix_free(ip("10.0.0.0"), 0xFFFFFFFC, include_static=op == "flush_all")
        assert table.generation >= last_generation
        last_generation = table.generation
        assert table.dynamic == sum(1 for e in table.entries.values() if not e.static)
        assert all(not e.flags & LleFlags.DELETED for e in table.entries.values())
        assert all(e.flags & LleFlags.DELETED for e in table.dying)
        assert all(addr == e.addr for addr, e in table.entries.items())

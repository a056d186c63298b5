"""The same-prefix policy: ALLOW (seed default), REFUSE (no_same_prefix), MULTIPATH."""

from __future__ import annotations

import pytest

from router.errors import EEXIST, RouterError
from router.events import EventKind
from router.inet.domain import SamePrefixPolicy
from router.inet.route import RouteFlags
from router.link.ifnet import IfFlags
from tests.unit.inet.support import Rig, ip, make_if

MASK24 = ip("255.255.255.0")


def test_refuse_policy_makes_same_prefix_eexist() -> None:
    rig = Rig(SamePrefixPolicy.REFUSE)
    rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), MASK24)
    eth1 = make_if("eth1", 2)
    with pytest.raises(RouterError) as err:
        rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    assert err.value.errno == EEXIST and err.value.field == "prefix"
    assert rig.inet.addresses(eth1) == [] and not rig.inet.local_ip(ip("10.0.0.2"))
    assert rig.inet.groups(eth1) == {}


def test_refuse_policy_allows_other_prefixes() -> None:
    rig = Rig(SamePrefixPolicy.REFUSE)
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.0.0.1") + 256, MASK24)
    rig.inet.add_alias(eth, ip("10.0.0.2"), ip("255.255.0.0"))  # 10.0/16 is another prefix
    assert len(rig.inet.addresses(eth)) == 3


def test_refuse_policy_still_replaces_the_same_address() -> None:
    rig = Rig(SamePrefixPolicy.REFUSE)
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    ia = rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    assert ia.owns_route


def test_multipath_gives_each_same_prefix_address_a_route() -> None:
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    a = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), MASK24)
    b = rig.inet.add_alias(make_if("eth1", 2), ip("10.0.0.2"), MASK24)
    routes = rig.prefix_routes("10.0.0.0", 24)
    assert [r.ifaddr for r in routes] == [a, b]
    assert [bool(r.flags & RouteFlags.MULTIPATH) for r in routes] == [False, True]
    assert a.owns_route and b.owns_route
    assert not [e for e in rig.events if e.data.get("alias")]


def test_multipath_identical_address_on_another_interface_is_eexist() -> None:
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), MASK24)
    eth1 = make_if("eth1", 2)
    with pytest.raises(RouterError) as err:
        rig.inet.add_alias(eth1, ip("10.0.0.1"), MASK24)
    assert err.value.errno == EEXIST and err.value.field == "addr"
    assert rig.inet.addresses(eth1) == []


def test_multipath_second_address_on_an_interface_with_a_leg_is_an_alias() -> None:
    # A second leg on one interface would be identical to the first (the leg
    # the seed's insert refuses): the address gets none, as under allow, and
    # only the alias routing message; the interface keeps one leg.
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    eth = make_if("eth0", 1)
    first = rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.events.clear()
    second = rig.inet.add_alias(eth, ip("10.0.0.2"), MASK24)
    assert not second.owns_route and rig.inet.local_ip(ip("10.0.0.2"))
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [first]
    alias_messages = [e for e in rig.events if e.kind is EventKind.RTM_ADD and e.data.get("alias")]
    assert len(alias_messages) == 1 and alias_messages[0].data["ifa"] == "10.0.0.2"


def test_multipath_leg_on_another_interface_and_other_prefixes_on_one_still_route() -> None:
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth0, ip("10.0.1.1"), MASK24)
    rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    assert len(rig.prefix_routes("10.0.0.0", 24)) == 2
    assert len(rig.prefix_routes("10.0.1.0", 24)) == 1


def test_multipath_owner_gone_leaves_other_legs_without_hand_over() -> None:
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    b = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    rig.inet.delete_alias(eth0, ip("10.0.0.1"))
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [b]
    # Every remaining address already routes: the seed finds no heir and flushes.
    assert ("flush", ip("10.0.0.0"), MASK24, True) in rig.neighbors.calls


def test_policy_change_affects_later_operations_only() -> None:
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    a = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), MASK24)
    b = rig.inet.add_alias(make_if("eth1", 2), ip("10.0.0.2"), MASK24)
    rig.inet.policy = SamePrefixPolicy.REFUSE
    # Existing multipath routes stay.
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [a, b]
    with pytest.raises(RouterError):
        rig.inet.add_alias(make_if("eth2", 3), ip("10.0.0.3"), MASK24)
    rig.inet.policy = SamePrefixPolicy.ALLOW
    c = rig.inet.add_alias(make_if("eth3", 4), ip("10.0.0.4"), MASK24)
    assert not c.owns_route
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [a, b]


def test_allow_after_refuse_accepts_same_prefix_again() -> None:
    rig = Rig(SamePrefixPolicy.REFUSE)
    rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), MASK24)
    rig.inet.policy = SamePrefixPolicy.ALLOW
    rig.events.clear()
    b = rig.inet.add_alias(make_if("eth1", 2), ip("10.0.0.2"), MASK24)
    assert not b.owns_route
    assert rig.events[0].kind is EventKind.RTM_ADD and rig.events[0].data["alias"] is True


def test_hand_over_under_allow_joins_leftover_multipath_legs() -> None:
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    eth = [make_if(f"eth{i}", i + 1) for i in range(3)]
    rig.inet.add_alias(eth[0], ip("10.0.0.1"), MASK24)
    b = rig.inet.add_alias(eth[1], ip("10.0.0.2"), MASK24)
    rig.inet.policy = SamePrefixPolicy.ALLOW
    c = rig.inet.add_alias(eth[2], ip("10.0.0.3"), MASK24)
    rig.inet.delete_alias(eth[0], ip("10.0.0.1"))
    assert {id(r.ifaddr) for r in rig.prefix_routes("10.0.0.0", 24)} == {id(b), id(c)}


def test_multipath_first_owner_on_down_interface_still_routes() -> None:
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    eth0 = make_if("eth0", 1)
    eth0.flags &= ~IfFlags.UP
    a = rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    assert a.owns_route  # in_addprefix does not look at UP; only hand-over does

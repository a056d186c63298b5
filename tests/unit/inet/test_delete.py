"""Deleting an alias (in_difaddr_ioctl), prefix scrub and hand-over (in_scrubprefix),
interface purge (in_ifdetach, in_purgemaddrs)."""

from __future__ import annotations

import pytest

from router.errors import EADDRNOTAVAIL, RouterError
from router.events import EventKind
from router.inet.addr import ALL_HOSTS_GROUP, SamePrefixPolicy
from router.inet.route import RouteFlags
from router.link.ifnet import AF_INET6, IfFlags
from tests.unit.inet.support import ETHER, LOOP, Rig, ip, make_if

MASK24 = ip("255.255.255.0")


def test_delete_unknown_address_is_eaddrnotavail() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    with pytest.raises(RouterError) as err:
        rig.inet.delete_alias(eth, ip("10.0.0.2"))
    assert err.value.errno == EADDRNOTAVAIL and err.value.field == "addr"


def test_delete_first_on_empty_interface_is_eaddrnotavail() -> None:
    with pytest.raises(RouterError) as err:
        Rig().inet.delete_alias(make_if("eth0", 1))
    assert err.value.errno == EADDRNOTAVAIL


def test_delete_without_address_deletes_the_first() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    a = rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    b = rig.inet.add_alias(eth, ip("10.0.1.1"), MASK24)
    assert rig.inet.delete_alias(eth) is a
    assert rig.inet.addresses(eth) == [b]


def test_delete_with_non_inet_family_deletes_the_first() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    a = rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.0.1.1"), MASK24)
    assert rig.inet.delete_alias(eth, ip("10.9.9.9"), AF_INET6) is a


def test_delete_with_non_inet_family_still_prefers_a_matching_value() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    b = rig.inet.add_alias(eth, ip("10.0.1.1"), MASK24)
    assert rig.inet.delete_alias(eth, ip("10.0.1.1"), AF_INET6) is b


def test_delete_removes_address_indexes_and_emits_deladdr() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.events.clear()
    rig.inet.delete_alias(eth, ip("10.0.0.1"))
    assert len(eth.addresses) == 1
    assert not rig.inet.local_ip(ip("10.0.0.1"))
    assert not rig.inet.local_subnet(ip("10.0.0.9"))
    assert len(rig.routes) == 0
    assert rig.kinds()[-1] is EventKind.RTM_DELADDR


def test_last_owner_gone_removes_route_and_flushes_arp_with_static() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.delete_alias(eth, ip("10.0.0.1"))
    assert ("flush", ip("10.0.0.0"), MASK24, True) in rig.neighbors.calls
    assert ("scrub", "eth0", ip("10.0.0.1")) in rig.neighbors.calls


def test_noarp_interface_keeps_arp_scrub_away() -> None:
    rig = Rig()
    ifp = make_if("eth0", 1, ETHER | IfFlags.NOARP)
    rig.inet.add_alias(ifp, ip("10.0.0.1"), MASK24)
    rig.inet.delete_alias(ifp, ip("10.0.0.1"))
    assert rig.neighbors.named("scrub") == []


def test_loopback_interface_address_scrubs_no_arp() -> None:
    rig = Rig()
    lo = make_if("lo0", 1, LOOP)
    rig.inet.add_alias(lo, ip("127.0.0.1"))
    rig.inet.delete_alias(lo, ip("127.0.0.1"))
    assert rig.neighbors.named("scrub") == []
    assert len(rig.routes) == 0


def test_deleting_an_alias_sends_alias_delete_message_and_keeps_route() -> None:
    rig = Rig()
    first = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), MASK24)
    eth1 = make_if("eth1", 2)
    rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    rig.events.clear()
    rig.inet.delete_alias(eth1, ip("10.0.0.2"))
    route_msgs = [e for e in rig.events if e.kind in (EventKind.RTM_ADD, EventKind.RTM_DELETE)]
    assert [(e.kind, e.data.get("alias")) for e in route_msgs[-1:]] == [
        (EventKind.RTM_DELETE, True)
    ]
    assert route_msgs[-1].data["gateway"] == "10.0.0.2"
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [first]
    assert rig.neighbors.named("flush") == []


def test_owner_gone_hands_route_over_to_same_prefix_address() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    heir = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    rig.events.clear()
    rig.inet.delete_alias(eth0, ip("10.0.0.1"))
    (route,) = rig.prefix_routes("10.0.0.0", 24)
    assert route.ifaddr is heir and route.ifindex == 2 and heir.owns_route
    handover = [e.kind for e in rig.events if e.data.get("dst") == "10.0.0.0"]
    assert handover == [EventKind.RTM_DELETE, EventKind.RTM_ADD]
    assert rig.neighbors.named("flush") == []


def test_hand_over_chain_across_three_interfaces() -> None:
    rig = Rig()
    ifs = [make_if(f"eth{i}", i + 1) for i in range(3)]
    addrs = [rig.inet.add_alias(ifp, ip(f"10.0.0.{i + 1}"), MASK24) for i, ifp in enumerate(ifs)]
    owner = lambda: [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)]  # noqa: E731
    assert owner() == [addrs[0]]
    rig.inet.delete_alias(ifs[0], ip("10.0.0.1"))
    assert owner() == [addrs[1]]
    rig.inet.delete_alias(ifs[1], ip("10.0.0.2"))
    assert owner() == [addrs[2]]
    rig.inet.delete_alias(ifs[2], ip("10.0.0.3"))
    assert owner() == []
    assert rig.neighbors.named("flush") == [("flush", ip("10.0.0.0"), MASK24, True)]


def test_hand_over_skips_address_on_down_interface() -> None:
    rig = Rig()
    eth0, eth1, eth2 = make_if("eth0", 1), make_if("eth1", 2), make_if("eth2", 3)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    down = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    up = rig.inet.add_alias(eth2, ip("10.0.0.3"), MASK24)
    eth1.flags &= ~IfFlags.UP
    rig.inet.delete_alias(eth0, ip("10.0.0.1"))
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [up]
    assert not down.owns_route


def test_hand_over_goes_to_the_earliest_added_address_across_interfaces() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    earliest = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    later = rig.inet.add_alias(eth0, ip("10.0.0.3"), MASK24)
    rig.inet.delete_alias(eth0, ip("10.0.0.1"))
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [earliest]
    rig.inet.delete_alias(eth1, ip("10.0.0.2"))
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [later]


def test_hand_over_never_gives_an_interface_a_second_leg() -> None:
    # eth0 has a leg and an alias added under allow; eth1's leg goes. The seed
    # passes over eth0's owner to the alias, its insert is EEXIST (an identical
    # leg) and the scrub ends there: eth0 keeps one leg, the alias no route,
    # and nothing is flushed (the prefix is still routed).
    rig = Rig(SamePrefixPolicy.MULTIPATH)
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    gone = rig.inet.add_alias(eth1, ip("10.0.0.1"), MASK24)
    leg = rig.inet.add_alias(eth0, ip("10.0.0.2"), MASK24)
    rig.inet.policy = SamePrefixPolicy.ALLOW
    heir = rig.inet.add_alias(eth0, ip("10.0.0.3"), MASK24)
    assert not heir.owns_route
    rig.inet.delete_alias(eth1, gone.addr)
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [leg]
    assert not heir.owns_route and not gone.owns_route
    assert not [call for call in rig.neighbors.calls if call[0] == "flush"]


def test_no_up_heir_removes_the_route_though_addresses_remain() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    eth1.flags &= ~IfFlags.UP
    rig.inet.delete_alias(eth0, ip("10.0.0.1"))
    assert rig.prefix_routes("10.0.0.0", 24) == []
    assert rig.inet.local_subnet(ip("10.0.0.77"))
    assert ("flush", ip("10.0.0.0"), MASK24, True) in rig.neighbors.calls


def test_local_route_switches_to_another_address_with_the_value() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    other = rig.inet.add_alias(eth1, ip("10.0.0.1"), MASK24)
    route = rig.inet.local_route(ip("10.0.0.1"))
    rig.events.clear()
    rig.inet.delete_alias(eth0, ip("10.0.0.1"))
    assert rig.inet.local_route(ip("10.0.0.1")) is route
    assert route is not None and route.ifaddr is other and route.ifindex == 2
    assert EventKind.RTM_CHANGE in rig.kinds()


def test_local_route_goes_with_the_last_address_of_the_value() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.delete_alias(eth, ip("10.0.0.1"))
    assert rig.inet.local_route(ip("10.0.0.1")) is None
    assert rig.routes.lookup(ip("10.0.0.1")) is None


def test_local_route_is_not_switched_to_a_point_to_point_self_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    ng = make_if("ng0", 2, IfFlags.UP | IfFlags.POINTOPOINT)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(ng, ip("10.0.0.1"), dest=ip("10.0.0.1"))
    rig.inet.delete_alias(eth, ip("10.0.0.1"))
    assert rig.inet.local_route(ip("10.0.0.1")) is None
    route = rig.routes.lookup(ip("10.0.0.1"))
    assert route is not None and route.flags & RouteFlags.HOST and route.ifindex == 2


def test_local_route_created_for_address_added_after_a_self_address() -> None:
    rig = Rig()
    ng = make_if("ng0", 1, IfFlags.UP | IfFlags.POINTOPOINT)
    eth = make_if("eth0", 2)
    rig.inet.add_alias(ng, ip("10.0.0.1"), dest=ip("10.0.0.1"))
    ia = rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    route = rig.inet.local_route(ip("10.0.0.1"))
    assert route is not None and route.ifaddr is ia


def test_last_address_leaves_all_hosts() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.0.1.1"), MASK24)
    rig.inet.delete_alias(eth, ip("10.0.0.1"))
    assert rig.neighbors.named("leave") == []
    rig.inet.delete_alias(eth, ip("10.0.1.1"))
    assert rig.neighbors.named("leave") == [("leave", "eth0", ALL_HOSTS_GROUP)]
    assert rig.inet.groups(eth) == {}


def test_delete_first_that_matches_a_later_value_leaves_all_hosts_only_with_the_last() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.0.1.1"), MASK24)
    rig.inet.delete_alias(eth, ip("10.0.1.1"), AF_INET6)
    assert rig.neighbors.named("leave") == []
    assert rig.inet.groups(eth) == {ALL_HOSTS_GROUP: 1}


def test_scrub_prefix_without_static_leaves_loopback_route_and_own_arp_entry() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    alias = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    local = rig.inet.local_route(ip("10.0.0.2"))
    rig.events.clear()
    rig.inet.scrub_prefix(alias)
    assert rig.neighbors.named("scrub") == []
    assert rig.inet.local_route(ip("10.0.0.2")) is local and local is not None and local.installed
    assert [e.kind for e in rig.events] == [EventKind.RTM_DELETE]
    assert rig.events[0].data["alias"] is True


def test_scrub_prefix_of_a_staying_address_hands_over_and_keeps_static_arp() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    owner = rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    rig.inet.scrub_prefix(owner)
    assert rig.prefix_routes("10.0.0.0", 24) == []
    assert rig.neighbors.calls[-1] == ("flush", ip("10.0.0.0"), MASK24, False)
    assert rig.inet.local_route(ip("10.0.0.1")) is not None  # only a full delete takes it
    heir = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    rig.inet.scrub_prefix(heir)
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [owner]


def test_purge_interface_deletes_every_address_and_hands_routes_over() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth0, ip("10.0.1.1"), MASK24)
    heir = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    eth0.flags &= ~IfFlags.UP  # detaching interfaces are brought down first
    rig.inet.purge_interface(eth0)
    assert rig.inet.addresses(eth0) == [] and len(eth0.addresses) == 1
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [heir]
    assert rig.prefix_routes("10.0.1.0", 24) == []
    assert rig.routes.routes_of(1) == []
    assert rig.kinds().count(EventKind.RTM_DELADDR) == 2


def test_purge_interface_releases_every_group() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.join_group(eth, ip("239.1.1.1"))
    rig.inet.join_group(eth, ip("239.1.1.1"))
    rig.inet.purge_interface(eth)
    assert rig.inet.groups(eth) == {}
    assert sorted(c[2] for c in rig.neighbors.named("leave")) == [
        ALL_HOSTS_GROUP, ip("239.1.1.1")
    ]


def test_purge_of_interface_without_ipv4_is_a_no_op() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.purge_interface(eth)
    rig.inet.unplumb(eth, 2)
    assert rig.events == [] and eth.inet is None


def test_unplumb_inet_purges_and_is_idempotent() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.unplumb(eth, AF_INET6)
    assert rig.inet.local_ip(ip("10.0.0.1"))
    rig.inet.unplumb(eth, 2)
    rig.inet.unplumb(eth, 2)
    assert not rig.inet.local_ip(ip("10.0.0.1")) and len(rig.routes) == 0


def test_routes_removed_under_us_do_not_break_delete() -> None:
    rig = Rig()
    eth0, eth1 = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth0, ip("10.0.0.1"), MASK24)
    heir = rig.inet.add_alias(eth1, ip("10.0.0.2"), MASK24)
    rig.routes.remove_interface(1)  # the data link layer's protocol clean-up ran first
    rig.inet.purge_interface(eth0)
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [heir]
    assert rig.inet.local_route(ip("10.0.0.1")) is None

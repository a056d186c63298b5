"""Adding an alias (in_aifaddr_ioctl, in_addprefix, in_addralias_rtmsg, loopback routes)."""

from __future__ import annotations

import errno

import pytest

from router.contracts import IoctlCmd
from router.errors import (
    EADDRNOTAVAIL,
    EDESTADDRREQ,
    EEXIST,
    EINVAL,
    EOPNOTSUPP,
    EPROTONOSUPPORT,
    RouterError,
)
from router.events import EventKind
from router.inet.addr import ALL_HOSTS_GROUP, IfaFlags
from router.inet.domain import AliasRequest
from router.inet.route import RouteFlags
from router.link.ifnet import AF_INET, AF_INET6, IfFlags
from tests.unit.inet.support import ETHER, LOOP, P2P, Rig, StubDriver, ip, make_if


def errno_of(call: object, *args: object, **kwargs: object) -> int:
    with pytest.raises(RouterError) as err:
        call(*args, **kwargs)  # type: ignore[operator]
    return err.value.errno


# -- request validation -----------------------------------------------------


def test_address_not_af_inet_is_einval() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    req = AliasRequest(ip("10.0.0.1"), addr_family=AF_INET6)
    with pytest.raises(RouterError) as err:
        rig.inet.apply_alias(eth, req)
    assert err.value.errno == EINVAL and err.value.field == "addr_family"
    assert rig.inet.addresses(eth) == []


def test_mask_not_af_inet_is_einval() -> None:
    eth = make_if("eth0", 1)
    req = AliasRequest(ip("10.0.0.1"), mask=ip("255.255.255.0"), mask_family=AF_INET6)
    assert errno_of(Rig().inet.apply_alias, eth, req) == EINVAL


def test_absent_mask_family_is_not_checked() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.apply_alias(eth, AliasRequest(ip("10.0.0.1"), mask_family=AF_INET6))
    assert rig.inet.local_ip(ip("10.0.0.1"))


def test_broadcast_not_af_inet_is_einval() -> None:
    eth = make_if("eth0", 1)
    req = AliasRequest(ip("10.0.0.1"), broadcast=ip("10.0.0.255"), broadcast_family=0)
    assert errno_of(Rig().inet.apply_alias, eth, req) == EINVAL


def test_mask_with_holes_is_einval() -> None:
    eth = make_if("eth0", 1)
    with pytest.raises(RouterError) as err:
        Rig().inet.add_alias(eth, ip("10.0.0.1"), ip("255.0.255.0"))
    assert err.value.errno == EINVAL and err.value.field == "mask"


def test_broadcast_out_of_range_is_einval() -> None:
    eth = make_if("eth0", 1)
    req = AliasRequest(ip("10.0.0.1"), broadcast=1 << 32)
    with pytest.raises(RouterError) as err:
        Rig().inet.apply_alias(eth, req)
    assert err.value.errno == EINVAL and err.value.field == "broadcast"


def test_destination_out_of_range_is_einval_before_edestaddrreq() -> None:
    ng = make_if("ng0", 1, P2P)
    with pytest.raises(RouterError) as err:
        Rig().inet.add_alias(ng, ip("10.0.0.1"), dest=-1)
    assert err.value.errno == EINVAL and err.value.field == "dest"


def test_point_to_point_without_destination_is_edestaddrreq() -> None:
    rig = Rig()
    ng = make_if("ng0", 1, P2P)
    with pytest.raises(RouterError) as err:
        rig.inet.add_alias(ng, ip("10.0.0.1"), ip("255.255.255.255"))
    assert err.value.errno == EDESTADDRREQ and err.value.field == "dest"
    assert errno_of(rig.inet.add_alias, ng, ip("10.0.0.1"), None, None, 0) == EDESTADDRREQ


def test_vhid_is_eprotonosupport() -> None:
    eth = make_if("eth0", 1)
    assert errno_of(Rig().inet.add_alias, eth, ip("10.0.0.1"), vhid=3) == EPROTONOSUPPORT


def test_negative_vhid_is_einval() -> None:
    eth = make_if("eth0", 1)
    assert errno_of(Rig().inet.add_alias, eth, ip("10.0.0.1"), vhid=-1) == EINVAL


def test_checks_run_in_seed_order_address_first() -> None:
    ng = make_if("ng0", 1, P2P)
    req = AliasRequest(ip("10.0.0.1"), vhid=1, addr_family=AF_INET6)
    assert errno_of(Rig().inet.apply_alias, ng, req) == EINVAL
    req = AliasRequest(ip("10.0.0.1"), vhid=1)
    assert errno_of(Rig().inet.apply_alias, ng, req) == EDESTADDRREQ


def test_broadcast_and_mask_einval_come_before_edestaddrreq_and_eprotonosupport() -> None:
    ng = make_if("ng0", 1, P2P)
    bad_broadcast = AliasRequest(ip("10.0.0.1"), broadcast=ip("10.0.0.255"),
                                 broadcast_family=AF_INET6, vhid=1)
    bad_mask = AliasRequest(ip("10.0.0.1"), mask=ip("255.0.0.0"), mask_family=AF_INET6, vhid=1)
    for req in (bad_broadcast, bad_mask):
        assert errno_of(Rig().inet.apply_alias, ng, req) == EINVAL
    eth = make_if("eth0", 2)
    assert errno_of(Rig().inet.add_alias, eth, ip("10.0.0.1"), vhid=1) == EPROTONOSUPPORT


# -- netmask, broadcast, destination -----------------------------------------


@pytest.mark.parametrize(
    ("addr", "plen"),
    [("10.1.2.3", 8), ("127.0.0.5", 8), ("172.16.1.1", 16), ("192.168.1.1", 24),
     ("224.1.1.1", 24), ("250.0.0.1", 24)],
)
def test_missing_mask_is_guessed_from_the_class(addr: str, plen: int) -> None:
    ia = Rig().inet.add_alias(make_if("eth0", 1), ip(addr))
    assert ia.plen == plen


def test_broadcast_defaults_to_subnet_with_host_bits_set() -> None:
    ia = Rig().inet.add_alias(make_if("eth0", 1), ip("10.1.2.3"), ip("255.255.255.0"))
    assert ia.broadcast == ip("10.1.2.255")
    assert ia.subnet == ip("10.1.2.0")


def test_given_broadcast_is_kept() -> None:
    ia = Rig().inet.add_alias(make_if("eth0", 1), ip("10.1.2.3"), ip("255.255.255.0"),
                              broadcast=ip("10.1.2.7"))
    assert ia.broadcast == ip("10.1.2.7")


def test_slash_31_broadcast_is_all_ones() -> None:
    ia = Rig().inet.add_alias(make_if("eth0", 1), ip("10.1.2.2"), ip("255.255.255.254"))
    assert ia.broadcast == ip("255.255.255.255")


def test_no_broadcast_on_non_broadcast_interface() -> None:
    ifp = make_if("tun0", 1, IfFlags.UP)
    ia = Rig().inet.add_alias(ifp, ip("10.1.2.3"), ip("255.255.255.0"), broadcast=ip("10.1.2.7"))
    assert ia.broadcast == 0


def test_point_to_point_stores_destination() -> None:
    ia = Rig().inet.add_alias(make_if("ng0", 1, P2P), ip("10.0.0.1"), dest=ip("10.0.0.2"))
    assert ia.dest == ip("10.0.0.2")


def test_broadcast_and_point_to_point_share_one_slot() -> None:
    ifp = make_if("odd0", 1, ETHER | IfFlags.POINTOPOINT)
    ia = Rig().inet.add_alias(ifp, ip("10.0.0.1"), ip("255.255.255.0"), dest=ip("10.0.0.9"))
    assert ia.broadcast == ia.dest == ip("10.0.0.9")


def test_loopback_destination_is_the_address() -> None:
    ia = Rig().inet.add_alias(make_if("lo0", 1, LOOP), ip("127.0.0.1"))
    assert ia.dest == ip("127.0.0.1")


# -- linking, events, driver ---------------------------------------------------


def test_primary_address_is_listed_after_the_link_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    a = rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    b = rig.inet.add_alias(eth, ip("10.0.1.1"), ip("255.255.255.0"))
    assert eth.addresses[1:] == [a]
    assert a.family == AF_INET and a.ifp is eth
    assert rig.inet.addresses(eth) == [a, b]


def test_deleting_the_primary_lists_the_next_address_in_its_place() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    a = rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    b = rig.inet.add_alias(eth, ip("10.0.1.1"), ip("255.255.255.0"))
    rig.inet.delete_alias(eth, a.addr)
    assert eth.addresses[1:] == [b]
    rig.inet.delete_alias(eth, b.addr)
    assert len(eth.addresses) == 1


def test_add_emits_route_messages_then_newaddr() -> None:
    rig = Rig()
    rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), ip("255.255.255.0"))
    assert rig.kinds() == [EventKind.RTM_ADD, EventKind.RTM_ADD, EventKind.RTM_NEWADDR]
    assert rig.events[-1].data["addr"] == "10.0.0.1"
    assert rig.neighbors.named("added") == [("added", "eth0", ip("10.0.0.1"))]


def test_driver_sees_siocsifaddr_with_the_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    eth.driver = driver = StubDriver()
    ia = rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    assert driver.seen == [(IoctlCmd.SIOCSIFADDR, ia)]


def test_driver_eopnotsupp_does_not_fail_the_add() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    eth.driver = StubDriver(EOPNOTSUPP)
    rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    assert rig.inet.local_ip(ip("10.0.0.1"))


def test_driver_error_fails_the_add_and_undoes_it() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    eth.driver = StubDriver(errno.EIO)
    with pytest.raises(RouterError) as err:
        rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    assert err.value.errno == errno.EIO
    assert len(eth.addresses) == 1
    assert not rig.inet.local_ip(ip("10.0.0.1"))
    assert not rig.inet.local_subnet(ip("10.0.0.7"))
    assert len(rig.routes) == 0 and rig.events == []


def test_readding_an_address_replaces_it() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    old = rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    new = rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.0.0"))
    assert rig.inet.addresses(eth) == [new]
    assert old.prefix_route is None and not old.owns_route
    assert rig.prefix_routes("10.0.0.0", 24) == []
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 16)] == [new]
    assert EventKind.RTM_DELADDR in rig.kinds()


def test_readding_only_address_keeps_all_hosts_membership() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    assert rig.inet.groups(eth) == {ALL_HOSTS_GROUP: 1}
    assert rig.neighbors.named("join")[-1] == ("join", "eth0", ALL_HOSTS_GROUP)


# -- prefix routes ------------------------------------------------------------


def test_first_address_owns_the_prefix_route() -> None:
    rig = Rig()
    ia = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), ip("255.255.255.0"))
    (route,) = rig.prefix_routes("10.0.0.0", 24)
    assert route.ifaddr is ia and ia.flags & IfaFlags.ROUTE
    assert route.flags == RouteFlags.UP and route.ifindex == 1


def test_point_to_point_gets_host_route_to_destination() -> None:
    rig = Rig()
    ia = rig.inet.add_alias(make_if("ng0", 4, P2P), ip("10.0.0.1"), dest=ip("10.9.9.9"))
    (route,) = rig.prefix_routes("10.9.9.9", 32)
    assert route.flags & RouteFlags.HOST and route.ifaddr is ia and route.ifindex == 4


def test_point_to_point_prefixes_compare_by_destination_only() -> None:
    rig = Rig()
    first = rig.inet.add_alias(make_if("ng0", 4, P2P), ip("10.0.0.1"), ip("255.255.255.0"),
                               dest=ip("10.9.9.9"))
    second = rig.inet.add_alias(make_if("ng1", 5, P2P), ip("172.16.0.1"), ip("255.255.0.0"),
                                dest=ip("10.9.9.9"))
    assert [r.ifaddr for r in rig.prefix_routes("10.9.9.9", 32)] == [first]
    assert not second.owns_route
    assert rig.prefix_routes("172.16.0.0", 16) == []


def test_loopback_gets_host_route_to_itself_and_no_local_route() -> None:
    rig = Rig()
    ia = rig.inet.add_alias(make_if("lo0", 1, LOOP), ip("127.0.0.1"))
    (route,) = rig.routes.get(ip("127.0.0.1"), 32)
    assert route.flags & RouteFlags.HOST and not route.is_local and route.ifaddr is ia


def test_second_address_with_same_prefix_gets_no_route() -> None:
    rig = Rig()
    first = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), ip("255.255.255.0"))
    rig.events.clear()
    second = rig.inet.add_alias(make_if("eth1", 2), ip("10.0.0.2"), ip("255.255.255.0"))
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [first]
    assert not second.owns_route and second.prefix_route is None
    alias = rig.events[0]
    assert alias.kind is EventKind.RTM_ADD and alias.data["alias"] is True
    assert alias.data["gateway"] == "10.0.0.2" and alias.data["dst"] == "10.0.0.0"
    assert alias.ifname == "eth0"  # the route's interface, as the seed reports it


def test_same_prefix_on_same_interface_shares_the_route() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    first = rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    rig.inet.add_alias(eth, ip("10.0.0.2"), ip("255.255.255.0"))
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [first]


def test_prefix_route_taken_by_a_configured_route_fails_the_add() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.routes.add(ip("10.0.0.0"), 24, ifindex=9, gateway=ip("192.0.2.1"),
                   flags=RouteFlags.GATEWAY)
    assert errno_of(rig.inet.add_alias, eth, ip("10.0.0.1"), ip("255.255.255.0")) == EEXIST
    assert rig.inet.addresses(eth) == [] and not rig.inet.local_ip(ip("10.0.0.1"))
    assert rig.inet.prefix_members(ip("10.0.0.0"), 24) == []
    assert rig.inet._owners == {}


# -- loopback route to self ---------------------------------------------------


def test_address_gets_a_local_route() -> None:
    rig = Rig()
    ia = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), ip("255.255.255.0"))
    route = rig.routes.lookup(ip("10.0.0.1"))
    assert route is not None and route.is_local and route.ifaddr is ia
    assert route.flags & RouteFlags.HOST and route.flags & RouteFlags.STATIC
    assert rig.inet.local_route(ip("10.0.0.1")) is route


def test_zero_address_gets_no_local_route() -> None:
    rig = Rig()
    rig.inet.add_alias(make_if("eth0", 1), 0, ip("255.255.255.0"))
    assert rig.inet.local_route(0) is None


def test_point_to_point_address_equal_to_destination_gets_no_local_route() -> None:
    rig = Rig()
    rig.inet.add_alias(make_if("ng0", 1, P2P), ip("10.0.0.1"), dest=ip("10.0.0.1"))
    assert rig.inet.local_route(ip("10.0.0.1")) is None
    assert rig.prefix_routes("10.0.0.1", 32) != []


def test_same_value_on_two_interfaces_shares_one_local_route() -> None:
    rig = Rig()
    a = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), ip("255.255.255.0"))
    rig.inet.add_alias(make_if("eth1", 2), ip("10.0.0.1"), ip("255.255.255.0"))
    locals_ = [r for r in rig.routes.get(ip("10.0.0.1"), 32) if r.is_local]
    assert len(locals_) == 1 and locals_[0].ifaddr is a


def test_slash_32_on_ethernet_keeps_both_prefix_and_local_route() -> None:
    rig = Rig()
    ia = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), ip("255.255.255.255"))
    routes = rig.routes.get(ip("10.0.0.1"), 32)
    assert [r.is_local for r in routes] == [True, False]
    assert all(r.ifaddr is ia for r in routes)


def test_local_route_failure_undoes_the_prefix_route() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.routes.add(ip("10.0.0.1"), 32, ifindex=7, flags=RouteFlags.LOCAL)  # squatter
    before = rig.routes.generation
    with pytest.raises(RouterError) as err:
        rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    assert err.value.errno == EEXIST
    assert rig.prefix_routes("10.0.0.0", 24) == []
    assert rig.inet.addresses(eth) == [] and len(eth.addresses) == 1
    assert rig.routes.generation > before  # the prefix route came and went
    assert ("flush", ip("10.0.0.0"), ip("255.255.255.0"), True) in rig.neighbors.calls


def test_local_route_failure_of_an_alias_withdraws_the_alias_message() -> None:
    rig = Rig()
    first = rig.inet.add_alias(make_if("eth0", 1), ip("10.0.0.1"), ip("255.255.255.0"))
    rig.routes.add(ip("10.0.0.2"), 32, ifindex=7, flags=RouteFlags.LOCAL)
    rig.events.clear()
    eth1 = make_if("eth1", 2)
    assert errno_of(rig.inet.add_alias, eth1, ip("10.0.0.2"), ip("255.255.255.0")) == EEXIST
    alias_kinds = [e.kind for e in rig.events if e.data.get("alias")]
    assert alias_kinds == [EventKind.RTM_ADD, EventKind.RTM_DELETE]
    assert [r.ifaddr for r in rig.prefix_routes("10.0.0.0", 24)] == [first]


# -- all-hosts group ----------------------------------------------------------


def test_first_address_of_multicast_interface_joins_all_hosts() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    rig.inet.add_alias(eth, ip("10.0.1.1"), ip("255.255.255.0"))
    assert rig.neighbors.named("join") == [("join", "eth0", ALL_HOSTS_GROUP)]
    assert rig.inet.groups(eth) == {ALL_HOSTS_GROUP: 1}


def test_non_multicast_interface_joins_nothing() -> None:
    rig = Rig()
    ifp = make_if("tun0", 1, IfFlags.UP)
    rig.inet.add_alias(ifp, ip("10.0.0.1"), ip("255.255.255.0"))
    assert rig.neighbors.named("join") == [] and rig.inet.groups(ifp) == {}


def test_failed_add_joins_nothing() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    eth.driver = StubDriver(EADDRNOTAVAIL)
    with pytest.raises(RouterError):
        rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    assert rig.inet.groups(eth) == {}

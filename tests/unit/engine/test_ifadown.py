"""Routes through a deleted address go with it (in.c ``in_difaddr_ioctl`` → ``in_ifadown(ia, 1)``).

A configured route is tied to the interface address it was added through
(the seed's ``rt_ifa``: the address on the gateway's subnet, or for a route
out of an interface the address on the destination's subnet, else the
interface's first). Deleting that address removes every route tied to it,
static ones included, after the prefix route was handed over or removed —
even when another address still serves the prefix ("if we are running a
routing process they will come back"). Routes tied to other addresses stay.
"""

from __future__ import annotations

import ipaddress

from router import Engine
from router.events import EventKind


def engine() -> Engine:
    e = Engine()
    e.add_ethernet("eth0", "02:00:00:00:00:01")
    e.add_ethernet("eth1", "02:00:00:00:00:02")
    e.add_alias("eth0", "10.0.0.1/24")
    e.add_alias("eth1", "10.1.0.1/24")
    return e


def prefixes(e: Engine) -> set[str]:
    return {f"{ipaddress.IPv4Address(r.prefix)}/{r.plen}" for r in e.routes()}


def test_static_route_via_the_deleted_address_goes_with_it() -> None:
    e = engine()
    e.add_route("192.168.0.0/16", gateway="10.0.0.254")
    e.add_route("172.16.0.0/12", gateway="10.1.0.254")
    e.drain_events()
    e.delete_alias("eth0", "10.0.0.1")
    assert "192.168.0.0/16" not in prefixes(e)
    assert "172.16.0.0/12" in prefixes(e)  # tied to 10.1.0.1: stays
    deleted = [ev.data["dst"] for ev in e.drain_events() if ev.kind is EventKind.RTM_DELETE]
    assert "192.168.0.0" in deleted


def test_route_tied_to_the_address_goes_though_the_prefix_is_handed_over() -> None:
    e = engine()
    e.add_alias("eth0", "10.0.0.2/24")  # same prefix: an alias, no route of its own
    e.add_route("192.168.0.0/16", gateway="10.0.0.254")  # tied to the owner, 10.0.0.1
    e.delete_alias("eth0", "10.0.0.1")
    assert "10.0.0.0/24" in prefixes(e)  # handed over to 10.0.0.2
    assert "192.168.0.0/16" not in prefixes(e)


def test_route_tied_to_another_address_of_the_prefix_stays() -> None:
    e = engine()
    e.add_alias("eth0", "10.0.0.2/24")
    e.add_route("192.168.0.0/16", gateway="10.0.0.254")  # tied to 10.0.0.1
    e.delete_alias("eth0", "10.0.0.2")  # the alias goes, the route stays
    assert "192.168.0.0/16" in prefixes(e)


def test_route_out_of_an_interface_is_tied_to_its_address_on_the_destination_or_first() -> None:
    e = engine()
    e.add_alias("eth1", "172.20.0.1/24")
    e.add_route("172.20.0.0/25", ifname="eth1")  # on 172.20.0.1's subnet
    e.add_route("198.51.100.0/24", ifname="eth1")  # on no subnet: the first address
    e.delete_alias("eth1", "172.20.0.1")
    assert "172.20.0.0/25" not in prefixes(e) and "198.51.100.0/24" in prefixes(e)
    e.delete_alias("eth1", "10.1.0.1")
    assert "198.51.100.0/24" not in prefixes(e)


def test_readding_the_address_replaces_it_and_its_routes_go() -> None:
    e = engine()
    e.add_route("192.168.0.0/16", gateway="10.0.0.254")
    e.add_alias("eth0", "10.0.0.1/24")  # SIOCAIFADDR over an existing address deletes it first
    assert "192.168.0.0/16" not in prefixes(e)


def test_a_route_deleted_by_hand_is_forgotten_by_its_address() -> None:
    e = engine()
    eth0, eth1 = e.interface("eth0"), e.interface("eth1")
    assert eth0 is not None and eth1 is not None
    first, other = e.inet.address(eth0), e.inet.address(eth1)
    assert first is not None and other is not None
    route = e.add_route("192.168.0.0/16", gateway="10.0.0.254")
    assert e.inet.routes_through(first) == [route]
    e.delete_route("192.168.0.0/16")
    assert e.inet.routes_through(first) == []
    again = e.add_route("192.168.0.0/16", gateway="10.1.0.254")
    assert e.inet.routes_through(other) == [again]
    e.delete_alias("eth0", "10.0.0.1")
    assert "192.168.0.0/16" in prefixes(e)


def legs_of(e: Engine, prefix: str) -> list[str]:
    (route,) = [r for r in e.routes() if f"{ipaddress.IPv4Address(r.prefix)}/{r.plen}" == prefix]
    hops = route.nexthops or ()
    if not hops:
        return [f"{ipaddress.IPv4Address(route.gateway)}%{route.ifname}"]
    return [f"{ipaddress.IPv4Address(h.gateway)}%{h.ifname}" for h in hops]


def test_a_multipath_route_loses_only_the_legs_through_the_deleted_address() -> None:
    # each leg of a multipath route is a route of its own in the seed (RADIX_MPATH),
    # with its own rt_ifa: in_ifadown takes the legs through the address
    e = engine()
    e.set_route("192.168.0.0/16", [("10.0.0.254", "eth0"), ("10.1.0.254", "eth1")])
    e.delete_alias("eth0", "10.0.0.1")
    assert legs_of(e, "192.168.0.0/16") == ["10.1.0.254%eth1"]
    e.delete_alias("eth1", "10.1.0.1")
    assert "192.168.0.0/16" not in prefixes(e)


def test_replacing_the_legs_ties_the_route_to_the_new_ones() -> None:
    e = engine()
    e.add_alias("eth1", "10.2.0.1/24")
    e.set_route("192.168.0.0/16", [("10.0.0.254", "eth0"), ("10.1.0.254", "eth1")])
    e.set_route("192.168.0.0/16", [("10.1.0.254", "eth1"), ("10.2.0.254", "eth1")])
    e.delete_alias("eth0", "10.0.0.1")  # no leg through it any more
    assert legs_of(e, "192.168.0.0/16") == ["10.1.0.254%eth1", "10.2.0.254%eth1"]
    e.delete_alias("eth1", "10.2.0.1")
    assert legs_of(e, "192.168.0.0/16") == ["10.1.0.254%eth1"]


def test_a_one_leg_set_route_is_tied_like_a_gateway_route() -> None:
    e = engine()
    e.set_route("192.168.0.0/16", [("10.0.0.254", "eth0")])
    e.delete_alias("eth0", "10.0.0.1")
    assert "192.168.0.0/16" not in prefixes(e)

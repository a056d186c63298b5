"""The lltable rtcheck in the composed engine (in.c ``in_lltable_rtcheck``, issue 11 item 8).

An ARP entry may exist on an interface only where it could be used: when
the covering route is on another interface (and is not a host route), one
of this interface's own prefixes must cover the address — the seed's case
of two interfaces sharing a prefix. Another interface's subnet is not
enough.
"""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.l2 import ARP, Ether

from router import Engine
from router.errors import EINVAL, RouterError

RA_MAC, RB_MAC, PEER_MAC = "02:00:00:00:0a:01", "02:00:00:00:0b:01", "02:00:00:00:0c:01"


def two_subnets() -> Engine:
    engine = Engine()
    engine.add_ethernet("ra", RA_MAC)
    engine.add_ethernet("rb", RB_MAC)
    engine.add_alias("ra", "10.77.1.1/24")
    engine.add_alias("rb", "10.77.2.1/24")
    settle(engine, 10.0)
    return engine


def settle(engine: Engine, until: float) -> None:
    """Run every timer due up to ``until`` (conflict detection ends, the addresses answer)."""
    while (deadline := engine.next_deadline()) is not None and deadline <= until:
        engine.tick(deadline)
    engine.tick(until)


def addresses(engine: Engine, ifname: str) -> list[str]:
    return [str(ipaddress.IPv4Address(e.addr)) for e in engine.arp_entries(ifname)
            if not e.ifaddr]


def test_static_entry_on_another_interfaces_subnet_is_einval() -> None:
    engine = two_subnets()
    with pytest.raises(RouterError) as info:
        engine.set_arp("ra", "10.77.2.77", PEER_MAC)
    assert (info.value.errno, info.value.field) == (EINVAL, "addr")
    assert addresses(engine, "ra") == [] and addresses(engine, "rb") == []
    engine.set_arp("rb", "10.77.2.77", PEER_MAC)  # where the subnet is, it is fine
    assert addresses(engine, "rb") == ["10.77.2.77"]


def test_arp_for_us_from_another_interfaces_subnet_is_not_learned() -> None:
    engine = two_subnets()
    ra = engine.interface("ra")
    assert ra is not None
    request = Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=PEER_MAC, psrc="10.77.2.77", pdst="10.77.1.1")
    engine.receive(ra.index, bytes(request), 11.0)
    assert addresses(engine, "ra") == []
    assert engine.stats()["arp"]["learn_refused"] == 1


def test_same_prefix_on_two_interfaces_allows_an_entry_on_either() -> None:
    engine = two_subnets()
    engine.add_alias("rb", "10.77.1.2/24")  # the route stays ra's; rb shares the prefix
    assert [r.ifname for r in engine.routes()
            if (str(ipaddress.IPv4Address(r.prefix)), r.plen) == ("10.77.1.0", 24)] == ["ra"]
    engine.set_arp("rb", "10.77.1.50", PEER_MAC)
    engine.set_arp("ra", "10.77.1.50", PEER_MAC)
    assert addresses(engine, "rb") == ["10.77.1.50"] and addresses(engine, "ra") == ["10.77.1.50"]

"""The agent's ARP calls, the address-control hooks, and per-interface attach/detach."""

from __future__ import annotations

import pytest
from scapy.layers.l2 import ARP

from router.arp.config import ArpDrop
from router.arp.lltable import LleFlags
from router.errors import EEXIST, EINVAL, ENXIO, EPERM, ESRCH, RouterError
from router.events import EventKind
from router.link.ifnet import Interface
from tests.unit.arp.support import (
    MAC_A,
    MAC_B,
    MAC_US,
    MAC_US2,
    IfAddr,
    World,
    ip,
    ipv4,
    make_ifp,
    reply,
    request,
)


@pytest.fixture
def world() -> World:
    return World()


def _second_interface(world: World) -> Interface:
    eth1 = make_ifp("eth1", 2, MAC_US2)
    world.arp.attach_interface(eth1)
    world.routes.add(ip("10.0.1.0"), 24, ifindex=2)
    world.add_address(eth1, ip("10.0.1.1"))
    return eth1


# -- set_static / delete / flush / entries -------------------------------------------


def test_set_static_adds_a_permanent_entry_and_reports_it(world: World) -> None:
    info = world.arp.set_static(world.eth0, ip("10.0.0.5"), MAC_A, published=True)
    assert info.static and info.published and info.valid and info.expire == 0.0
    assert info.lladdr == MAC_A and info.state == "PERMANENT"
    assert world.sink.events[-1].kind is EventKind.ARP_ADDED


def test_set_static_replaces_a_learned_entry(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.5", "10.0.0.1"))
    world.arp.set_static(world.eth0, ip("10.0.0.5"), MAC_B)
    assert world.resolve(ip("10.0.0.5")) == (0, MAC_B)
    assert world.sink.events[-1].kind is EventKind.ARP_CHANGED
    world.advance(3600)  # static: no timer ever touches it
    assert world.entry_state(ip("10.0.0.5")) == "PERMANENT"


def test_set_static_needs_a_route(world: World) -> None:
    with pytest.raises(RouterError) as caught:
        world.arp.set_static(world.eth0, ip("192.168.7.7"), MAC_A)
    assert caught.value.errno == EINVAL and caught.value.field == "addr"
    assert caught.value.value == "192.168.7.7"


@pytest.mark.parametrize("mac", [b"\xff" * 6, bytes(6), b"\x01\x00\x5e\x00\x00\x01", b"\x02"])
def test_set_static_refuses_a_mac_that_is_not_unicast(world: World, mac: bytes) -> None:
    with pytest.raises(RouterError) as caught:
        world.arp.set_static(world.eth0, ip("10.0.0.5"), mac)
    assert caught.value.errno == EINVAL and caught.value.field == "lladdr"


def test_set_static_over_our_own_address_is_eexist(world: World) -> None:
    with pytest.raises(RouterError) as caught:
        world.arp.set_static(world.eth0, ip("10.0.0.1"), MAC_A)
    assert caught.value.errno == EEXIST and caught.value.field == "addr"
    assert world.resolve(ip("10.0.0.1")) == (0, MAC_US)


def test_calls_on_an_interface_without_table_are_enxio(world: World) -> None:
    stranger = make_ifp("eth9", 9, MAC_B)
    with pytest.raises(RouterError) as caught:
        world.arp.set_static(stranger, ip("10.0.0.5"), MAC_A)
    assert caught.value.errno == ENXIO and caught.value.field == "interface"
    with pytest.raises(RouterError):
        world.arp.delete(stranger, ip("10.0.0.5"))


def test_delete_of_an_absent_entry_is_esrch_naming_the_address(world: World) -> None:
    with pytest.raises(RouterError) as caught:
        world.arp.delete(world.eth0, ip("10.0.0.77"))
    assert caught.value.errno == ESRCH
    assert (caught.value.field, caught.value.value) == ("addr", "10.0.0.77")


def test_delete_of_our_own_address_entry_is_eperm_and_keeps_it(world: World) -> None:
    with pytest.raises(RouterError) as caught:
        world.arp.delete(world.eth0, ip("10.0.0.1"))
    assert caught.value.errno == EPERM
    assert world.entry_state(ip("10.0.0.1")) == "PERMANENT"


def test_delete_removes_a_static_entry_and_tells(world: World) -> None:
    world.arp.set_static(world.eth0, ip("10.0.0.5"), MAC_A)
    world.arp.delete(world.eth0, ip("10.0.0.5"))
    assert world.entry_state(ip("10.0.0.5")) is None
    assert world.sink.events[-1].kind is EventKind.ARP_DELETED


def test_flush_spares_static_entries_unless_asked(world: World) -> None:
    world.arp.set_static(world.eth0, ip("10.0.0.5"), MAC_A)
    world.receive(request(MAC_B, "10.0.0.6", "10.0.0.1"))
    assert world.arp.flush(world.eth0) == 1
    assert {i.addr for i in world.arp.entries()} == {ip("10.0.0.1"), ip("10.0.0.5")}
    assert world.arp.flush(world.eth0, include_static=True) == 2
    assert world.arp.entries() == []


def test_flush_of_a_prefix_leaves_other_prefixes(world: World) -> None:
    world.routes.add(ip("10.0.0.0"), 16, ifindex=1)
    world.receive(request(MAC_A, "10.0.0.6", "10.0.0.1"))
    world.receive(request(MAC_A, "10.0.9.6", "10.0.0.1"))
    assert world.arp.flush(prefix=ip("10.0.9.0"), mask=0xFFFFFF00) == 1
    assert world.entry_state(ip("10.0.0.6")) == "STALE"
    assert world.arp.flush(prefix=ip("10.0.0.6")) == 1  # no mask: that one host


def test_flush_drops_held_packets_and_counts_them(world: World) -> None:
    world.resolve(ip("10.0.0.9"), ipv4("10.0.0.1", "10.0.0.9"))
    world.arp.flush()
    assert world.arp.stats.held_dropped == 1
    world.advance(30)
    assert world.sink.unreachable_ == [] and world.sink.frames[1:] == []


def test_entries_dump_every_interface_in_index_order(world: World) -> None:
    _second_interface(world)
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    rows = world.arp.entries()
    assert [r.ifindex for r in rows] == sorted(r.ifindex for r in rows)
    assert {(r.ifname, r.addr) for r in rows} == {
        ("eth0", ip("10.0.0.1")), ("eth0", ip("10.0.0.2")), ("eth1", ip("10.0.1.1"))}
    assert world.arp.entries(make_ifp("eth9", 9, MAC_B)) == []


# -- NeighborHooks -------------------------------------------------------------------


def test_address_added_creates_our_entry_and_answers_for_it(world: World) -> None:
    world.add_address(world.eth0, ip("10.0.0.20"))
    table = world.arp.table(world.eth0)
    assert table is not None
    own = table.lookup(ip("10.0.0.20"))
    assert own is not None and own.flags & LleFlags.IFADDR and own.lladdr == MAC_US
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.20"))
    assert len(world.sink.take_frames()) == 1


def test_address_added_replaces_a_learned_entry_for_that_address(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.20", "10.0.0.1"))
    world.add_address(world.eth0, ip("10.0.0.20"))
    assert world.resolve(ip("10.0.0.20")) == (0, MAC_US)


def test_address_added_on_an_interface_without_table_is_ignored(world: World) -> None:
    stranger = make_ifp("eth9", 9, MAC_B)
    world.arp.address_added(stranger, IfAddr(ip("10.9.9.9")))
    assert world.arp.table(stranger) is None


def test_scrub_address_removes_our_entry_even_though_static(world: World) -> None:
    world.arp.scrub_address(world.eth0, ip("10.0.0.1"))
    assert world.entry_state(ip("10.0.0.1")) is None
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.sink.frames == []  # no longer ours


def test_scrub_of_an_unknown_address_is_harmless(world: World) -> None:
    world.arp.scrub_address(world.eth0, ip("10.0.0.99"))
    world.arp.scrub_address(make_ifp("eth9", 9, MAC_B), ip("10.0.0.99"))
    assert world.entry_state(ip("10.0.0.1")) == "PERMANENT"


def test_flush_prefix_hook_reaches_every_interface(world: World) -> None:
    eth1 = _second_interface(world)
    world.routes.add(ip("10.0.1.0"), 24, ifindex=1, multipath=True)
    world.receive(request(MAC_A, "10.0.1.7", "10.0.1.1"), eth1)
    world.arp.set_static(world.eth0, ip("10.0.1.8"), MAC_B)
    world.arp.flush_prefix(ip("10.0.1.0"), 0xFFFFFF00, False)
    assert world.entry_state(ip("10.0.1.7"), eth1) is None
    assert world.entry_state(ip("10.0.1.8")) == "PERMANENT"
    world.arp.flush_prefix(ip("10.0.1.0"), 0xFFFFFF00, True)
    assert world.entry_state(ip("10.0.1.8")) is None
    # our own address keeps its entry: it goes with the address (scrub_address)
    assert world.entry_state(ip("10.0.1.1"), eth1) == "PERMANENT"


def test_flush_prefix_spares_interface_address_entries(world: World) -> None:
    eth1 = _second_interface(world)
    world.arp.flush_prefix(ip("10.0.1.0"), 0xFFFFFF00, True)
    assert world.entry_state(ip("10.0.1.1"), eth1) == "PERMANENT"
    world.arp.scrub_address(eth1, ip("10.0.1.1"))
    assert world.entry_state(ip("10.0.1.1"), eth1) is None


def test_group_membership_is_counted(world: World) -> None:
    group = ip("224.0.0.1")
    world.arp.join_group(world.eth0, group)
    world.arp.join_group(world.eth0, group)
    world.arp.leave_group(world.eth0, group)
    assert world.arp.groups(world.eth0) == {group: 1}
    world.arp.leave_group(world.eth0, group)
    world.arp.leave_group(world.eth0, group)
    assert world.arp.groups(world.eth0) == {}


# -- in_domifattach / in_domifdetach -------------------------------------------------


def test_attach_gives_each_interface_one_table(world: World) -> None:
    table = world.arp.table(world.eth0)
    assert world.arp.attach_interface(world.eth0) is table
    world.resolve(ip("10.0.0.2"))
    recycled = make_ifp("eth0", 1, MAC_US)  # same index, new interface object
    assert world.arp.attach_interface(recycled) is not table
    assert world.arp.stats.held_dropped == 1  # the old table was freed, not forgotten


def test_detach_frees_the_table_and_counts_dropped_packets(world: World) -> None:
    for host in (2, 3):
        world.resolve(ip(f"10.0.0.{host}"), ipv4("10.0.0.1", f"10.0.0.{host}"))
    world.arp.join_group(world.eth0, ip("224.0.0.1"))
    table = world.arp.table(world.eth0)
    assert table is not None
    assert world.arp.detach_interface(world.eth0) == 2
    assert world.arp.stats.held_dropped == 2
    assert world.arp.table(world.eth0) is None and len(table) == 0
    assert world.arp.groups(world.eth0) == {}
    assert world.arp.next_deadline() is None
    world.advance(30)
    assert world.sink.unreachable_ == []
    assert world.arp.detach_interface(world.eth0) == 0


def test_arp_after_detach_is_dropped(world: World) -> None:
    world.arp.detach_interface(world.eth0)
    world.receive(reply(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.arp.stats.drops[ArpDrop.NO_TABLE] == 1


def test_new_link_address_is_taken_by_our_entries_and_announced(world: World) -> None:
    world.eth0.lladdr = MAC_US2
    world.arp.link_address_changed(world.eth0)
    assert world.resolve(ip("10.0.0.1")) == (0, MAC_US2)
    [frame] = world.sink.take_frames()
    assert frame.src == MAC_US2.hex(":") and frame[ARP].psrc == frame[ARP].pdst == "10.0.0.1"
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.sink.take_frames()[0][ARP].hwsrc == MAC_US2.hex(":")


def test_the_fast_path_lookup_sees_only_usable_entries(world: World) -> None:
    table = world.arp.table(world.eth0)
    assert table is not None
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert table.ready_lladdr(ip("10.0.0.2")) is None  # STALE: must go through resolve
    assert world.resolve(ip("10.0.0.2")) == (0, MAC_A)
    assert table.ready_lladdr(ip("10.0.0.2")) == MAC_A  # DELAY
    assert table.ready_lladdr(ip("10.0.0.3")) is None

"""Received ARP: what is answered, what is learned, what is dropped and counted."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.l2 import ARP

from router.arp.config import ArpDrop
from router.link.ifnet import IfFlags
from tests.unit.arp.support import (
    MAC_A,
    MAC_B,
    MAC_US,
    World,
    ip,
    make_ifp,
    reply,
    request,
    text,
)


@pytest.fixture
def world() -> World:
    return World()


# -- answering -----------------------------------------------------------------------


def test_answers_request_for_our_address_with_our_mac(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    [frame] = world.sink.take_frames()
    assert frame.src == text(MAC_US) and frame.dst == text(MAC_A)
    answer = frame[ARP]
    assert answer.op == 2 and answer.hwsrc == text(MAC_US) and answer.psrc == "10.0.0.1"
    assert answer.hwdst == text(MAC_A) and answer.pdst == "10.0.0.2"
    assert world.arp.stats.requests_in == 1 and world.arp.stats.replies_out == 1


def test_answers_an_arp_probe_for_our_address_with_target_zero(world: World) -> None:
    world.receive(request(MAC_A, "0.0.0.0", "10.0.0.1"))
    [frame] = world.sink.take_frames()
    assert frame[ARP].op == 2 and frame[ARP].pdst == "0.0.0.0"
    assert frame.dst == text(MAC_A)
    assert world.entry_state(0) is None  # a probe teaches nothing


def test_does_not_answer_request_for_another_host(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.3"))
    assert world.sink.frames == [] and world.arp.stats.replies_out == 0


def test_answers_request_for_published_entry_with_published_mac(world: World) -> None:
    world.arp.set_static(world.eth0, ip("10.0.0.3"), MAC_B, published=True)
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.3"))
    [frame] = world.sink.take_frames()
    assert frame[ARP].op == 2 and frame[ARP].hwsrc == text(MAC_B)
    assert frame[ARP].psrc == "10.0.0.3" and frame.src == text(MAC_US)
    assert world.arp.stats.proxy_replies_out == 1


def test_never_answers_the_proxied_host_itself(world: World) -> None:
    world.arp.set_static(world.eth0, ip("10.0.0.3"), MAC_B, published=True)
    world.receive(request(MAC_B, "10.0.0.3", "10.0.0.3"))
    world.receive(request(MAC_B, "0.0.0.0", "10.0.0.3"))
    assert world.sink.frames == []


def test_unpublished_static_entry_is_not_answered_for(world: World) -> None:
    world.arp.set_static(world.eth0, ip("10.0.0.3"), MAC_B)
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.3"))
    assert world.sink.frames == []


def test_gratuitous_request_is_not_answered(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.2"))
    assert world.sink.frames == [] and world.arp.stats.requests_in == 1


def test_replies_are_never_answered(world: World) -> None:
    world.receive(reply(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.sink.frames == [] and world.arp.stats.replies_in == 1


# -- learning ------------------------------------------------------------------------


def test_request_for_us_creates_the_senders_entry_as_stale(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.entry_state(ip("10.0.0.2")) == "STALE"
    assert world.resolve(ip("10.0.0.2")) == (0, MAC_A)


def test_request_from_stranger_does_not_create_entry(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.3"))
    assert world.entry_state(ip("10.0.0.2")) is None


def test_request_from_stranger_refreshes_an_existing_entry(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    world.receive(request(MAC_B, "10.0.0.2", "10.0.0.3"))
    assert world.resolve(ip("10.0.0.2")) == (0, MAC_B)


def test_reply_for_us_confirms_the_neighbour(world: World) -> None:
    world.resolve(ip("10.0.0.2"))
    world.receive(reply(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.entry_state(ip("10.0.0.2")) == "REACHABLE"


def test_unsolicited_reply_for_us_creates_an_unverified_entry(world: World) -> None:
    world.receive(reply(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.entry_state(ip("10.0.0.2")) == "STALE"


def test_reply_for_another_host_does_not_create_entry(world: World) -> None:
    world.receive(reply(MAC_A, "10.0.0.2", "10.0.0.3", tha=MAC_B))
    assert world.entry_state(ip("10.0.0.2")) is None


def test_gratuitous_arp_updates_an_existing_entry(world: World) -> None:
    world.resolve(ip("10.0.0.2"))
    world.receive(reply(MAC_A, "10.0.0.2", "10.0.0.1"))
    world.receive(request(MAC_B, "10.0.0.2", "10.0.0.2"))
    table = world.arp.table(world.eth0)
    assert table is not None
    entry = table.lookup(ip("10.0.0.2"))
    assert entry is not None and entry.lladdr == MAC_B and entry.state.value == "STALE"


def test_received_arp_never_overwrites_static_entry(world: World) -> None:
    world.arp.set_static(world.eth0, ip("10.0.0.2"), MAC_A)
    world.receive(reply(MAC_B, "10.0.0.2", "10.0.0.1"))
    world.receive(request(MAC_B, "10.0.0.2", "10.0.0.1"))
    world.receive(request(MAC_B, "10.0.0.2", "10.0.0.2"))
    assert world.resolve(ip("10.0.0.2")) == (0, MAC_A)
    assert world.entry_state(ip("10.0.0.2")) == "PERMANENT"
    assert world.arp.stats.static_kept == 3


def test_learning_needs_a_route_but_the_request_is_still_answered(world: World) -> None:
    world.receive(request(MAC_A, "192.168.9.9", "10.0.0.1"))
    assert world.entry_state(ip("192.168.9.9")) is None
    assert world.arp.stats.learn_refused == 1
    [frame] = world.sink.take_frames()
    assert frame[ARP].pdst == "192.168.9.9"


def test_staticarp_interface_answers_but_never_learns(world: World) -> None:
    world.eth0.flags |= IfFlags.STATICARP
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.entry_state(ip("10.0.0.2")) is None
    assert len(world.sink.take_frames()) == 1


def test_arp_from_one_of_our_addresses_is_not_learned(world: World) -> None:
    world.receive(request(MAC_A, "10.0.0.1", "10.0.0.7"))
    table = world.arp.table(world.eth0)
    assert table is not None
    own = table.lookup(ip("10.0.0.1"))
    assert own is not None and own.lladdr == MAC_US
    assert world.arp.stats.duplicate_address == 1


def test_each_interface_learns_into_its_own_table(world: World) -> None:
    eth1 = make_ifp("eth1", 2, bytes.fromhex("020000000002"))
    world.arp.attach_interface(eth1)
    world.routes.add(ip("10.0.1.0"), 24, ifindex=2)
    world.add_address(eth1, ip("10.0.1.1"))
    world.receive(request(MAC_A, "10.0.1.2", "10.0.1.1"), eth1)
    assert world.entry_state(ip("10.0.1.2"), eth1) == "STALE"
    assert world.entry_state(ip("10.0.1.2")) is None


# -- drops ---------------------------------------------------------------------------


def _raw(htype: int = 1, ptype: int = 0x0800, hlen: int = 6, plen: int = 4,
         op: int = 1) -> bytes:
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + MAC_A + bytes(4) + bytes(10)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x00\x01", ArpDrop.TRUNCATED),
        (_raw()[:20], ArpDrop.TRUNCATED),
        (_raw(htype=6), ArpDrop.BAD_HTYPE),
        (_raw(ptype=0x86DD), ArpDrop.BAD_PTYPE),
        (_raw(hlen=8), ArpDrop.BAD_HLEN),
        (_raw(plen=16), ArpDrop.BAD_PLEN),
        (_raw(op=9), ArpDrop.BAD_OPCODE),
        (request(b"\xff" * 6, "10.0.0.2", "10.0.0.1"), ArpDrop.BAD_SENDER_HW),
        (request(bytes.fromhex("01005e000001"), "10.0.0.2", "10.0.0.1"),
         ArpDrop.BAD_SENDER_HW),
        (request(bytes(6), "10.0.0.2", "10.0.0.1"), ArpDrop.BAD_SENDER_HW),
        (request(MAC_US, "10.0.0.2", "10.0.0.1"), ArpDrop.OWN_FRAME),
        (request(MAC_A, "224.0.0.1", "10.0.0.1"), ArpDrop.BAD_SENDER_IP),
        (request(MAC_A, "255.255.255.255", "10.0.0.1"), ArpDrop.BAD_SENDER_IP),
        (request(MAC_A, "127.0.0.1", "10.0.0.1"), ArpDrop.BAD_SENDER_IP),
    ],
    ids=lambda v: v.value if isinstance(v, ArpDrop) else "",
)
def test_bad_arp_is_counted_by_reason_and_dropped(world: World, payload: bytes,
                                                   reason: ArpDrop) -> None:
    world.receive(payload)
    assert world.arp.stats.drops[reason] == 1
    assert sum(world.arp.stats.drops.values()) == 1
    assert world.sink.frames == [] and world.arp.stats.requests_in == 0
    table = world.arp.table(world.eth0)
    assert table is not None and set(table.entries) == {ip("10.0.0.1")}


def test_noarp_interface_drops_arp(world: World) -> None:
    world.eth0.flags |= IfFlags.NOARP
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"))
    assert world.arp.stats.drops[ArpDrop.NOARP] == 1 and world.sink.frames == []


def test_arp_on_an_interface_without_table_is_dropped(world: World) -> None:
    stranger = make_ifp("eth9", 9, bytes.fromhex("020000000009"))
    world.receive(request(MAC_A, "10.0.0.2", "10.0.0.1"), stranger)
    assert world.arp.stats.drops[ArpDrop.NO_TABLE] == 1


def test_counters_flatten_for_metrics(world: World) -> None:
    world.receive(b"")
    flat = world.arp.stats.as_dict()
    assert flat["drop_truncated"] == 1 and flat["requests_in"] == 0

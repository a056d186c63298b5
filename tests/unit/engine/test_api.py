"""The Engine facade's API: interfaces, addresses, routes, ARP, policy, queries, errors."""

from __future__ import annotations

import ipaddress

import pytest

from router import Engine, EngineConfig
from router.errors import (
    EADDRNOTAVAIL,
    EBUSY,
    EDESTADDRREQ,
    EEXIST,
    EINVAL,
    EISCONN,
    ENETDOWN,
    ENETUNREACH,
    ENXIO,
    EPFNOSUPPORT,
    EPROTONOSUPPORT,
    ESRCH,
    RouterError,
)
from router.events import EventKind
from router.inet.domain import SamePrefixPolicy
from router.inet.route import RouteFlags
from router.link.ifnet import IfFamily, IfFlags, IfState
from router.wire import ipv4 as ip_wire

MAC = "02:00:00:00:00:01"


def errno_of(call: object, *args: object, **kwargs: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(RouterError) as info:
        call(*args, **kwargs)
    return info.value.errno, info.value.field


def router() -> Engine:
    engine = Engine()
    engine.add_ethernet("eth0", MAC)
    engine.add_ethernet("eth1", "02:00:00:00:00:02")
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    return engine


def test_add_ethernet_attaches_up_with_ipv4_and_arp() -> None:
    engine = Engine()
    ifp = engine.add_ethernet("eth0", MAC, mtu=9000)
    assert ifp.state is IfState.ATTACHED and ifp.index == 1
    assert ifp.flags & IfFlags.UP and ifp.flags & IfFlags.RUNNING
    assert ifp.flags & IfFlags.BROADCAST
    assert ifp.lladdr == bytes.fromhex("020000000001") and ifp.mtu == 9000
    assert engine.arp.table(ifp) is not None
    kinds = [e.kind for e in engine.drain_events()]
    assert kinds[:4] == [EventKind.IF_ATTACHED, EventKind.PROTO_ATTACHED,
                         EventKind.IF_FLAGS_CHANGED, EventKind.LINK_UP]


def test_add_ethernet_down_stays_down() -> None:
    engine = Engine()
    assert not engine.add_ethernet("eth0", MAC, up=False).flags & IfFlags.UP


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "mac": MAC}, "name"),
        ({"name": "e", "mac": "zz"}, "mac"),
        ({"name": "e", "mac": "01:00:5e:00:00:01"}, "mac"),
        ({"name": "e", "mac": b"\x02"}, "mac"),
        ({"name": "e", "mac": MAC, "mtu": 67}, "mtu"),
        ({"name": "e", "mac": MAC, "mtu": 9217}, "mtu"),
    ],
)
def test_add_ethernet_refuses_bad_input_with_einval_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    assert errno_of(Engine().add_ethernet, **kwargs) == (EINVAL, field)


def test_add_ethernet_twice_is_eexist() -> None:
    engine = Engine()
    engine.add_ethernet("eth0", MAC)
    assert errno_of(engine.add_ethernet, "eth0", MAC)[0] == EEXIST


def test_removed_interface_is_gone_and_its_name_gets_the_old_index_back() -> None:
    engine = router()
    engine.add_ethernet("eth2", "02:00:00:00:00:03")
    engine.remove_interface("eth0")
    assert engine.interface("eth0") is None
    assert all(r.ifname != "eth0" for r in engine.routes())
    again = engine.add_ethernet("eth0", MAC)
    assert again.index == 1 and again.reused
    assert engine.inet.addresses(again) == []


def test_remove_unknown_interface_is_enxio() -> None:
    assert errno_of(Engine().remove_interface, "eth9") == (ENXIO, "interface")


def test_set_interface_mtu_and_up_down() -> None:
    engine = router()
    engine.set_interface("eth0", mtu=1400)
    assert engine.interface("eth0").mtu == 1400  # type: ignore[union-attr]
    assert errno_of(engine.set_interface, "eth0", mtu=20) == (EINVAL, "mtu")
    engine.set_interface("eth0", up=False)
    ifp = engine.interface("eth0")
    assert ifp is not None and not ifp.flags & (IfFlags.UP | IfFlags.RUNNING)
    engine.set_interface("eth0", up=True)
    assert ifp.flags & IfFlags.UP


@pytest.mark.parametrize(("kind", "mtu", "bounds"), [("ethernet", 9217, "68..9216"),
                                                      ("ng", 71, "72..65535")])
def test_an_mtu_out_of_range_names_the_drivers_bounds(kind: str, mtu: int, bounds: str) -> None:
    engine = router()
    name = "eth0" if kind == "ethernet" else engine.create_ng()
    with pytest.raises(RouterError) as info:
        engine.set_interface(name, mtu=mtu)
    assert (info.value.errno, info.value.field) == (EINVAL, "mtu")
    assert f"not within {bounds}" in str(info.value)


def test_point_to_point_switch_is_only_for_ng() -> None:
    assert errno_of(router().set_interface, "eth0", point_to_point=True)[0] == EINVAL


def test_alias_forms_and_the_address_record() -> None:
    engine = router()
    engine.add_alias("eth0", "10.0.0.9", mask="255.255.0.0")
    engine.add_alias("eth0", ipaddress.IPv4Interface("10.5.0.1/30"))
    engine.add_alias("eth1", "172.16.1.1")  # classful: /16
    record = engine.get_address("eth1", "172.16.1.1")
    assert record == {"address": "172.16.1.1", "netmask": "255.255.0.0", "plen": 16,
                      "broadcast": "172.16.255.255", "dest": None, "vhid": 0,
                      "owns_route": True}
    assert engine.get_address("eth0", "10.5.0.1")["broadcast"] == "10.5.0.3"
    assert engine.get_address("eth0")["address"] == "10.0.0.1"  # the first address


def test_get_address_field_rules() -> None:
    engine = router()
    assert errno_of(engine.get_address, "eth0", "10.0.0.1", "destination")[0] == EINVAL
    assert errno_of(engine.get_address, "eth0", "10.9.9.9")[0] == EADDRNOTAVAIL
    assert errno_of(engine.get_address, "eth0", None, "colour") == (EINVAL, "which")
    assert engine.get_address("eth0", "10.0.0.1", "broadcast")["broadcast"] == "10.0.0.255"


@pytest.mark.parametrize(
    ("address", "kwargs", "expected"),
    [("10.0.0.300/24", {}, (EINVAL, "address")), ("10.0.0.3/24", {"mask": "255.0.0.0"},
                                                   (EINVAL, "mask")),
     ("10.0.0.3", {"broadcast": "x"}, (EINVAL, "broadcast")),
     ("10.0.0.3/24", {"vhid": 1}, (EPROTONOSUPPORT, "vhid"))],
)
def test_add_alias_errors_name_the_field(address: str, kwargs: dict[str, object],
                                         expected: tuple[int, str]) -> None:
    assert errno_of(router().add_alias, "eth0", address, **kwargs) == expected


def test_delete_alias_first_and_unknown() -> None:
    engine = router()
    engine.add_alias("eth0", "10.0.0.2/24")
    assert engine.delete_alias("eth0").addr == int(ipaddress.IPv4Address("10.0.0.1"))
    assert errno_of(engine.delete_alias, "eth0", "10.9.9.9")[0] == EADDRNOTAVAIL


def test_policy_refuse_makes_same_prefix_eexist() -> None:
    engine = router()
    engine.set_policy("refuse")
    assert engine.get_policy() == "refuse"
    assert errno_of(engine.add_alias, "eth1", "10.0.0.2/24")[0] == EEXIST
    engine.set_policy(SamePrefixPolicy.ALLOW)
    engine.add_alias("eth1", "10.0.0.2/24")
    assert not engine.get_address("eth1", "10.0.0.2")["owns_route"]
    assert errno_of(engine.set_policy, "sometimes") == (EINVAL, "policy")


def test_queries() -> None:
    engine = router()
    assert engine.query("local-address", "10.0.0.1")
    assert engine.query("local-subnet", "10.1.0.77")
    assert not engine.query("local-subnet", "10.2.0.77")
    assert engine.query("can-forward", "8.8.8.8") and not engine.query("can-forward", "127.0.0.1")
    assert engine.query("broadcast", "10.0.0.255", "eth0")
    assert not engine.query("broadcast", "10.0.0.255", "eth1")
    assert errno_of(engine.query, "broadcast", "10.0.0.255") == (EINVAL, "ifname")
    assert errno_of(engine.query, "nearby", "10.0.0.1") == (EINVAL, "kind")


def test_static_routes_via_gateway_or_interface() -> None:
    engine = router()
    via = engine.add_route("192.168.0.0/16", gateway="10.1.0.254")
    assert (via.ifname, via.gateway) == ("eth1", int(ipaddress.IPv4Address("10.1.0.254")))
    assert via.flags & RouteFlags.STATIC and via.flags & RouteFlags.GATEWAY
    onlink = engine.add_route("172.20.0.0/24", ifname="eth0")
    assert onlink.ifname == "eth0" and not onlink.flags & RouteFlags.GATEWAY
    host = engine.add_route("172.21.0.9", gateway="10.0.0.254")
    assert host.plen == 32 and host.flags & RouteFlags.HOST
    listed = [(r.prefix, r.plen) for r in engine.routes()]
    assert (int(ipaddress.IPv4Address("192.168.0.0")), 16) in listed
    engine.delete_route("192.168.0.0/16")
    assert errno_of(engine.delete_route, "192.168.0.0/16")[0] == ESRCH


def test_route_errors() -> None:
    engine = router()
    assert errno_of(engine.add_route, "1.0.0.0/8") == (EINVAL, "gateway")
    assert errno_of(engine.add_route, "1.0.0.0/8", gateway="9.9.9.9") == (ENETUNREACH, "gateway")
    assert errno_of(engine.add_route, "1.0.0.0/33", gateway="10.0.0.9") == (EINVAL, "prefix")
    engine.add_route("1.0.0.0/8", gateway="10.0.0.9")
    assert errno_of(engine.add_route, "1.0.0.0/8", gateway="10.0.0.8")[0] == EEXIST
    assert errno_of(engine.add_route, "1.0.0.0/8", ifname="nope")[0] == ENXIO


def test_an_existing_route_is_named_with_its_interface() -> None:
    engine = router()
    with pytest.raises(RouterError) as info:
        engine.add_route("10.0.0.0/24", ifname="eth0")  # eth0's connected route
    assert info.value.errno == EEXIST
    assert "route 10.0.0.0/24 on eth0" in str(info.value)


def test_arp_static_entries_list_delete_flush() -> None:
    engine = router()
    entry = engine.set_arp("eth0", "10.0.0.7", "02:aa:00:00:00:07", published=True)
    assert entry.static and entry.published and entry.lladdr == bytes.fromhex("02aa00000007")
    assert any(e.addr == entry.addr for e in engine.arp_entries("eth0"))
    assert all(e.ifname == "eth1" for e in engine.arp_entries("eth1"))
    assert errno_of(engine.set_arp, "eth0", "10.0.0.8", "01:00:00:00:00:01")[0] == EINVAL
    engine.delete_arp("eth0", "10.0.0.7")
    assert errno_of(engine.delete_arp, "eth0", "10.0.0.7")[0] == ESRCH
    assert engine.flush_arp() == 0


def test_counters_and_drop_counts() -> None:
    engine = router()
    engine.receive(99, b"\x00" * 60, 1.0)
    assert engine.drop_counts()["engine.no_interface"] == 1
    engine.receive(1, b"\x00" * 10, 1.0)
    assert engine.counters("eth0")["ierrors"] == 1
    assert engine.drop_counts()["link.runt"] == 1


def test_events_are_sequence_numbered_and_resumable() -> None:
    engine = Engine(EngineConfig(event_history=5))
    engine.add_ethernet("eth0", MAC)
    engine.add_alias("eth0", "10.0.0.1/24")
    events = engine.drain_events()
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert engine.drain_events() == []
    later, lost = engine.events_after(seqs[-3])
    assert [e.seq for e in later] == seqs[-2:] and not lost
    _, lost = engine.events_after(0)
    assert lost  # the ring keeps only the last 5


def test_ng_interfaces_hooks_and_errors() -> None:
    engine = Engine()
    name = engine.create_ng()
    assert name == "ng0" and engine.create_ng() == "ng1"
    ifp = engine.interface("ng0")
    assert ifp is not None and ifp.family is IfFamily.NETGRAPH
    handle = engine.hook_connect("ng0", "inet")
    assert errno_of(engine.hook_connect, "ng0", "inet")[0] == EISCONN
    assert errno_of(engine.hook_connect, "ng0", "ipx")[0] == EPFNOSUPPORT
    assert errno_of(engine.hook_send, handle, b"\x45" + bytes(19))[0] == ENETDOWN
    engine.set_interface("ng0", up=False, point_to_point=False)
    assert ifp.flags & IfFlags.BROADCAST
    engine.set_interface("ng0", up=True)
    assert errno_of(engine.set_interface, "ng0", point_to_point=True)[0] == EBUSY
    assert errno_of(engine.destroy_ng, "ng9")[0] == ENXIO
    engine.hook_disconnect(handle)
    engine.destroy_ng("ng0")
    assert engine.interface("ng0") is None
    assert engine.create_ng() == "ng0"  # the unit is free again


def test_alias_on_ng_needs_a_destination_and_brings_it_up() -> None:
    engine = Engine()
    engine.create_ng()
    assert errno_of(engine.add_alias, "ng0", "10.9.0.1/32")[0] == EDESTADDRREQ
    engine.add_alias("ng0", "10.9.0.1/32", dest="10.9.0.2")
    ifp = engine.interface("ng0")
    assert ifp is not None and ifp.flags & IfFlags.UP and ifp.flags & IfFlags.RUNNING
    assert engine.get_address("ng0", which="destination")["dest"] == "10.9.0.2"


def test_send_datagram_refuses_a_malformed_header() -> None:
    assert errno_of(router().send_datagram, b"\x45\x00") == (EINVAL, "datagram")


def test_send_datagram_without_a_route_is_enetunreach() -> None:
    engine = router()
    datagram = ip_wire.emit(src=0x0A000001, dst=0xAC100001, protocol=17, payload=bytes(8))
    assert engine.send_datagram(datagram) == ENETUNREACH
    assert engine.drop_counts()["ipv4.no_route"] == 1


def test_deleting_a_same_prefix_address_keeps_the_other_interfaces_own_arp_entry() -> None:
    """Multipath: 10.0.0.7 goes from b; a still owns 10.0.0.1 and must keep answering ARP."""
    engine = Engine()
    engine.add_ethernet("a", mac=b"\x02\0\0\0\0\x01")
    engine.add_ethernet("b", mac=b"\x02\0\0\0\0\x02")
    engine.add_alias("a", "10.0.0.1/24")
    engine.set_policy("multipath")
    engine.add_alias("b", "10.0.0.7/24")
    engine.delete_alias("b", "10.0.0.7")
    own = [entry for entry in engine.arp_entries("a") if entry.ifaddr]
    assert [str(ipaddress.IPv4Address(entry.addr)) for entry in own] == ["10.0.0.1"]
    assert not [entry for entry in engine.arp_entries("b") if entry.ifaddr]


@pytest.mark.parametrize("mac", [
    "\u0660\u0662:00:00:00:00:01",  # Arabic-Indic digits: int(.., 16) takes them
    "+2:00:00:00:00:01",
    " 2:00:00:00:00:01",
    "02:00:00:00:00:0\uff11",  # fullwidth one
    "02:00:00:00:00:g1",
])
def test_a_mac_is_six_ascii_hex_bytes(mac: str) -> None:
    """Issue 11 item 7 in the engine's own parser (``Engine.set_arp``)."""
    engine = router()
    assert errno_of(engine.set_arp, "eth0", "10.0.0.9", mac) == (EINVAL, "mac")
    assert [e.addr for e in engine.arp_entries("eth0") if not e.ifaddr] == []  # none added


def _eth(ethertype: int, payload: bytes) -> bytes:
    return bytes.fromhex("020000000001" "020000000009") + ethertype.to_bytes(2, "big") + payload


@pytest.mark.parametrize(("payload", "ethertype", "reason"), [
    (b"\x45\x00\x00", 0x0800, "ipv4.short"),
    (b"\x65" + bytes(19), 0x0800, "ipv4.bad_version"),
    (b"\x45\x00\x00\x14" + bytes(6) + b"\x12\x34" + bytes(8), 0x0800, "ipv4.bad_checksum"),
    (b"\x00\x01\x08", 0x0806, "arp.truncated"),
    (bytes.fromhex("0001080007040001") + bytes(22), 0x0806, "arp.bad_hlen"),
])
def test_malformed_frames_count_in_the_interfaces_input_errors(
    payload: bytes, ethertype: int, reason: str
) -> None:
    """Issue 11 item 11: a malformed header is a drop with its reason and an input error,
    as the kernel counts it in rx_errors-style if_data (``if_ierrors``)."""
    engine = router()
    frame = _eth(ethertype, payload)  # unpadded, as veth delivers a short frame
    before = engine.counters("eth0")["ierrors"]
    engine.receive(1, frame, 1.0)
    assert engine.drop_counts()[reason] == 1
    assert engine.counters("eth0")["ierrors"] == before + 1


def test_a_well_formed_frame_that_is_dropped_is_not_an_input_error() -> None:
    """ierrors means malformed: a packet to an unroutable address is a drop, not an error."""
    engine = router()
    from router.wire.checksum import internet_checksum

    header = bytearray(b"\x45\x00\x00\x14" + bytes(4) + b"\x40\x01\x00\x00"
                       + bytes([10, 0, 0, 9]) + bytes([192, 0, 2, 1]))
    header[10:12] = internet_checksum(header).to_bytes(2, "big")
    engine.receive(1, _eth(0x0800, bytes(header)), 1.0)
    assert engine.drop_counts()["ipv4.no_route"] == 1
    assert engine.counters("eth0")["ierrors"] == 0

"""Interface filters: order, family scope, take/drop, VLAN bypass, safe detach."""

from __future__ import annotations

import pytest

from router.contracts import InterfaceFilter, Packet, PacketFlags
from router.errors import EEXIST, EINVAL, EJUSTRETURN, EPERM, RouterError
from router.link.ether import ETHERTYPE_IP
from router.link.ifnet import AF_INET, Interface
from tests.unit.link.support import (
    AF_TEST,
    ETHERTYPE_TEST,
    MAC_A,
    MAC_PEER,
    Harness,
    eth_frame,
    make_proto,
    recording_filter,
    vlan_frame,
)


def _setup() -> tuple[Harness, Interface]:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(family=AF_INET, ethertypes=(ETHERTYPE_IP,))[0])
    h.dl.attach_protocol(ifp, make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST,))[0])
    return h, ifp


def _resolved(ifp: Interface, fam: int, pkt: Packet, dest: object) -> tuple[int, bytes, int]:
    return 0, MAC_PEER, ETHERTYPE_IP


def test_filters_run_in_attach_order_on_input_and_output() -> None:
    h, ifp = _setup()
    log: list[str] = []
    for name in ("a", "b", "c"):
        h.dl.attach_filter(ifp, recording_filter(name, log))
    h.dl.input(ifp, [eth_frame(MAC_A)])
    ifp.protocols[AF_INET].pre_output = _resolved
    h.dl.output(ifp, AF_INET, [Packet(b"ip")], None)
    assert log == ["a:in", "b:in", "c:in", "a:out", "b:out", "c:out"]


def test_filter_scoped_to_a_family_sees_only_that_family() -> None:
    h, ifp = _setup()
    log: list[str] = []
    h.dl.attach_filter(ifp, recording_filter("inet", log, family=AF_INET))
    h.dl.attach_filter(ifp, recording_filter("all", log, family=0))
    h.dl.input(ifp, [eth_frame(MAC_A, ethertype=ETHERTYPE_TEST), eth_frame(MAC_A)])
    assert log == ["all:in", "inet:in", "all:in"]


def test_filter_returning_ejustreturn_took_the_packet_without_a_drop() -> None:
    h, ifp = _setup()
    log: list[str] = []
    h.dl.attach_filter(ifp, recording_filter("taker", log, result=EJUSTRETURN))
    h.dl.attach_filter(ifp, recording_filter("after", log))
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert log == ["taker:in"]
    assert ifp.counters.iqdrops == 0
    assert ifp.protocols[AF_INET].refcount == 1  # nothing was delivered


def test_filter_error_drops_the_input_packet_and_counts_it() -> None:
    h, ifp = _setup()
    log: list[str] = []
    proto, plog = make_proto(family=AF_INET, ethertypes=(ETHERTYPE_IP,))
    h.dl.detach_protocol(ifp, AF_INET)
    h.dl.attach_protocol(ifp, proto)
    h.dl.attach_filter(ifp, recording_filter("deny", log, result=EPERM))
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert plog.packets == [] and ifp.counters.iqdrops == 1


def test_filter_error_drops_the_output_packet_before_the_driver() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    proto, _ = make_proto(pre_output=_resolved)
    h.dl.attach_protocol(ifp, proto)
    log: list[str] = []
    h.dl.attach_filter(ifp, recording_filter("deny", log, result=EPERM))
    assert h.dl.output(ifp, AF_INET, [Packet(b"ip")], None) == EPERM
    assert driver.calls == [] and log == ["deny:out"]


def test_filter_ejustreturn_on_output_took_the_packet_and_output_returns_zero() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(pre_output=_resolved)[0])
    h.dl.attach_filter(ifp, recording_filter("taker", [], result=EJUSTRETURN))
    assert h.dl.output(ifp, AF_INET, [Packet(b"ip")], None) == 0
    assert driver.calls == []


def test_vlan_tagged_packets_skip_input_filters() -> None:
    h, ifp = _setup()
    log: list[str] = []
    h.dl.attach_filter(ifp, recording_filter("f", log, result=EPERM))
    h.dl.input(ifp, [vlan_frame(MAC_A, 7)])
    assert log == [] and ifp.counters.iqdrops == 0


def test_vlan_tagged_packets_skip_output_filters() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    log: list[str] = []
    h.dl.attach_filter(ifp, recording_filter("f", log, result=EPERM))
    pkt = Packet(vlan_frame(MAC_PEER, 7), flags=PacketFlags.VLAN_TAGGED)
    assert h.dl.output(ifp, AF_INET, [pkt], None, raw=True) == 0
    assert log == [] and len(driver.calls) == 1


def test_filter_detached_during_a_pass_is_not_called_again() -> None:
    h, ifp = _setup()
    log: list[str] = []
    second = recording_filter("second", log)

    def first_input(i: Interface, fam: int, pkt: Packet) -> int:
        log.append("first:in")
        h.dl.detach_filter(second)
        return 0

    h.dl.attach_filter(ifp, recording_filter("first", log, input=first_input))
    h.dl.attach_filter(ifp, second)
    h.dl.attach_filter(ifp, recording_filter("third", log))
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert log == ["first:in", "second:detached", "third:in"]
    assert [f.name for f in ifp.filters] == ["first", "third"]


def test_filter_attached_during_a_pass_waits_for_the_next_packet() -> None:
    h, ifp = _setup()
    log: list[str] = []
    late = recording_filter("late", log)

    def first_input(i: Interface, fam: int, pkt: Packet) -> int:
        log.append("first:in")
        if late not in i.filters:
            h.dl.attach_filter(i, late)
        return 0

    h.dl.attach_filter(ifp, recording_filter("first", log, input=first_input))
    h.dl.input(ifp, [eth_frame(MAC_A), eth_frame(MAC_A)])
    assert log == ["first:in", "first:in", "late:in"]


def test_detach_unknown_filter_is_einval() -> None:
    h, _ = _setup()
    with pytest.raises(RouterError) as info:
        h.dl.detach_filter(InterfaceFilter("stranger"))
    assert info.value.errno == EINVAL


def test_detach_filter_twice_is_einval_and_detached_callback_ran_once() -> None:
    h, ifp = _setup()
    log: list[str] = []
    filt = recording_filter("f", log)
    h.dl.attach_filter(ifp, filt)
    h.dl.detach_filter(filt)
    with pytest.raises(RouterError) as info:
        h.dl.detach_filter(filt)
    assert info.value.errno == EINVAL
    h.dl.detach(ifp)
    h.dl.run_deferred()
    assert log == ["f:detached"]


def test_attach_same_filter_object_twice_is_eexist() -> None:
    h, ifp = _setup()
    filt = recording_filter("f", [])
    h.dl.attach_filter(ifp, filt)
    with pytest.raises(RouterError) as info:
        h.dl.attach_filter(ifp, filt)
    assert info.value.errno == EEXIST


def test_detached_filter_can_be_attached_again() -> None:
    h, ifp = _setup()
    log: list[str] = []
    filt = recording_filter("f", log)
    h.dl.attach_filter(ifp, filt)
    h.dl.detach_filter(filt)
    h.dl.attach_filter(ifp, filt)
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert log == ["f:detached", "f:in"]


def test_attach_filter_replaces_the_chain_tuple() -> None:
    h, ifp = _setup()
    before = ifp.filters
    h.dl.attach_filter(ifp, recording_filter("f", []))
    assert before == () and isinstance(ifp.filters, tuple) and len(ifp.filters) == 1


def test_filter_on_a_detaching_interface_cannot_be_attached_elsewhere() -> None:
    h, ifp = _setup()
    other, _ = h.ethernet("eth1", bytes.fromhex("020000000009"))
    log: list[str] = []
    filt = recording_filter("f", log)
    h.dl.attach_filter(ifp, filt)
    h.dl.detach(ifp)
    with pytest.raises(RouterError) as info:
        h.dl.attach_filter(other, filt)
    assert info.value.errno == EEXIST
    h.dl.run_deferred()
    h.dl.attach_filter(other, filt)
    h.dl.input(other, [eth_frame(bytes.fromhex("020000000009"))])
    assert log == ["f:detached", "f:in"]

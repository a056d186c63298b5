"""Protocol attachment per (interface, family): attach, detach, references, freeing."""

from __future__ import annotations

from typing import Any

import pytest

from router.contracts import IoctlCmd, Packet, ProtoAttachment
from router.errors import EADDRINUSE, EEXIST, EINVAL, ENXIO, RouterError
from router.events import EventKind
from router.link.ether import ETHERTYPE_ARP, ETHERTYPE_IP
from router.link.ifnet import AF_INET, IfFamily, Interface, LinkState
from tests.unit.link.support import (
    AF_TEST,
    ETHERTYPE_TEST,
    MAC_A,
    Harness,
    eth_frame,
    make_proto,
)


def test_attach_protocol_family_zero_is_einval() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    proto, _ = make_proto(family=0)
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(ifp, proto)
    assert info.value.errno == EINVAL and info.value.field == "family"


@pytest.mark.parametrize("version", [1, 2])
def test_attach_protocol_without_its_input_is_einval(version: int) -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    proto = ProtoAttachment(family=AF_INET, version=version)
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(ifp, proto)
    assert info.value.errno == EINVAL and info.value.field == "input"


def test_attach_protocol_unknown_version_is_einval() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    proto, _ = make_proto()
    proto.version = 3
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(ifp, proto)
    assert info.value.errno == EINVAL


def test_attach_protocol_on_an_interface_not_attached_is_enxio() -> None:
    h = Harness()
    embryo = h.dl.acquire(IfFamily.ETHERNET, b"e", name="eth9")
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(embryo, make_proto()[0])
    assert info.value.errno == ENXIO
    ifp, _ = h.ethernet()
    h.dl.detach(ifp)
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(ifp, make_proto()[0])
    assert info.value.errno == ENXIO


def test_attach_protocol_twice_is_eexist() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto()[0])
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(ifp, make_proto()[0])
    assert info.value.errno == EEXIST


def test_family_module_add_proto_error_aborts_the_attach() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(family=AF_INET, ethertypes=(ETHERTYPE_IP,))[0])
    clash, _ = make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST, ETHERTYPE_IP))
    before = len(h.events)
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(ifp, clash)
    assert info.value.errno == EADDRINUSE
    assert AF_TEST not in ifp.protocols
    assert ETHERTYPE_TEST not in ifp.demux_table
    assert len(h.events) == before


def test_attach_protocol_registers_its_ethertypes() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(family=AF_INET)[0])
    assert ifp.demux_table == {ETHERTYPE_IP: AF_INET, ETHERTYPE_ARP: AF_INET}


def test_attach_protocol_posts_proto_attached_with_the_count() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(family=AF_INET, ethertypes=(ETHERTYPE_IP,))[0])
    h.dl.attach_protocol(ifp, make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST,))[0])
    attached = [e for e in h.events if e.kind is EventKind.PROTO_ATTACHED]
    assert [(e.data["family"], e.data["count"]) for e in attached] == [(AF_INET, 1), (AF_TEST, 2)]


def test_detach_protocol_absent_is_enxio() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    with pytest.raises(RouterError) as info:
        h.dl.detach_protocol(ifp, AF_INET)
    assert info.value.errno == ENXIO


def test_detach_protocol_family_zero_is_einval() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    with pytest.raises(RouterError) as info:
        h.dl.detach_protocol(ifp, 0)
    assert info.value.errno == EINVAL


def test_detach_protocol_removes_its_demux_descriptors() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(family=AF_INET)[0])
    h.dl.detach_protocol(ifp, AF_INET)
    assert ifp.demux_table == {} and h.dl.find_protocol(ifp, AF_INET) is None


def test_detached_protocol_callbacks_are_enxio_stubs() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    proto, log = make_proto()
    h.dl.attach_protocol(ifp, proto)
    h.dl.detach_protocol(ifp, AF_INET)
    pkt = Packet(b"x")
    assert proto.detached
    assert proto.input is not None and proto.input(ifp, AF_INET, pkt) == ENXIO
    assert proto.input_list is not None and proto.input_list(ifp, AF_INET, [pkt]) == ENXIO
    assert proto.pre_output is not None and proto.pre_output(ifp, AF_INET, pkt, 1)[0] == ENXIO
    assert proto.ioctl is not None and proto.ioctl(ifp, AF_INET, IoctlCmd.SIOCGIFMTU, 0) == ENXIO
    assert proto.resolve_multi is not None and proto.resolve_multi(ifp, 1)[0] == ENXIO
    assert proto.send_arp is not None and proto.send_arp(ifp, 1, b"", 1, b"", 2) == ENXIO
    assert proto.event is not None
    proto.event(ifp, AF_INET, h.events[-1])
    assert log.events[-1].kind is EventKind.PROTO_ATTACHED  # the stub recorded nothing


def test_detach_protocol_frees_it_runs_hooks_and_posts_remaining_count() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    freed: list[tuple[str, int]] = []
    h.dl.on_proto_freed = lambda i, fam: freed.append((i.name, fam))
    h.dl.attach_protocol(ifp, make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST,))[0])
    proto, log = make_proto(family=AF_INET)
    h.dl.attach_protocol(ifp, proto)
    h.dl.detach_protocol(ifp, AF_INET)
    assert log.detached == 1 and proto.refcount == 0
    assert freed == [("eth0", AF_INET)]
    last = h.events[-1]
    assert last.kind is EventKind.PROTO_DETACHED
    assert last.data == {"family": AF_INET, "count": 1}


def test_fresh_attachment_can_replace_a_detached_one_but_the_old_cannot_return() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    old, _ = make_proto()
    h.dl.attach_protocol(ifp, old)
    h.dl.detach_protocol(ifp, AF_INET)
    with pytest.raises(RouterError) as info:
        h.dl.attach_protocol(ifp, old)
    assert info.value.errno == EINVAL
    new, _ = make_proto()
    h.dl.attach_protocol(ifp, new)
    assert h.dl.find_protocol(ifp, AF_INET) is new


def test_protocol_detached_during_its_input_list_is_freed_only_afterwards() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    order: list[str] = []

    def input_list(i: Interface, fam: int, pkts: list[Packet]) -> int:
        h.dl.detach_protocol(i, fam)
        order.append(f"delivered {len(pkts)} refcount={proto.refcount}")
        return 0

    proto, _ = make_proto(input_list=input_list,
                          detached_cb=lambda i, f: order.append("detached_cb"))
    h.dl.on_proto_freed = lambda i, f: order.append("route cleanup")
    h.dl.attach_protocol(ifp, proto)
    h.dl.input(ifp, [eth_frame(MAC_A), eth_frame(MAC_A)])
    assert order == ["delivered 2 refcount=1", "detached_cb", "route cleanup"]
    assert h.kinds()[-1] is EventKind.PROTO_DETACHED


def test_v1_protocol_detached_mid_run_gets_no_more_packets() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    seen: list[Packet] = []

    def input_one(i: Interface, fam: int, pkt: Packet) -> int:
        seen.append(pkt)
        if len(seen) == 1:
            h.dl.detach_protocol(i, fam)
        return 0

    proto, log = make_proto(version=1, input=input_one)
    h.dl.attach_protocol(ifp, proto)
    h.dl.input(ifp, [eth_frame(MAC_A)] * 3)
    assert len(seen) == 1
    assert ifp.counters.iqdrops == 2  # the stub answered ENXIO for the rest of the run
    assert log.detached == 1


def test_protocol_referenced_by_an_event_callback_is_freed_after_it() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    order: list[str] = []

    def on_event(i: Interface, fam: int, event: Any) -> None:
        if event.kind is EventKind.LINK_UP:
            h.dl.detach_protocol(i, fam)
            order.append("event done")

    proto, _ = make_proto(event=on_event, detached_cb=lambda i, f: order.append("freed"))
    h.dl.attach_protocol(ifp, proto)
    h.dl.set_link_state(ifp, LinkState.UP)
    assert order == ["event done", "freed"]

"""Event delivery: filters, protocols, the driver, then subscribers."""

from __future__ import annotations

from collections.abc import Callable

from router.contracts import InterfaceFilter
from router.events import Event, EventKind
from router.link.ifnet import AF_INET, AF_INET6, Interface
from tests.unit.link.support import (
    AF_TEST,
    ETHERTYPE_TEST,
    Harness,
    RecordingDriver,
    make_proto,
)


def _logged(h: Harness) -> tuple[Interface, list[str]]:
    log: list[str] = []

    class Driver(RecordingDriver):
        def event(self, ifp: Interface, event: Event) -> None:
            log.append(f"driver {event.kind.value}")

    ifp, _ = h.ethernet(driver=Driver())

    def filt_event(name: str) -> Callable[[Interface, int, Event], None]:
        def on_event(i: Interface, fam: int, event: Event) -> None:
            log.append(f"{name}({fam}) {event.kind.value}")
        return on_event

    h.dl.attach_filter(ifp, InterfaceFilter("a", 0, event=filt_event("a")))
    h.dl.attach_filter(ifp, InterfaceFilter("b", AF_TEST, event=filt_event("b")))
    for family, ethertype in ((AF_INET, 0x0800), (AF_TEST, ETHERTYPE_TEST)):
        def on_proto_event(i: Interface, fam: int, event: Event) -> None:
            log.append(f"proto{fam} {event.kind.value}")
        h.dl.attach_protocol(ifp, make_proto(family=family, ethertypes=(ethertype,),
                                             event=on_proto_event)[0])
    h.dl.subscribe(lambda event: log.append(f"subscriber {event.kind.value}"))
    log.clear()
    return ifp, log


def test_event_goes_to_filters_then_protocols_then_driver_then_subscribers() -> None:
    h = Harness()
    ifp, log = _logged(h)
    h.dl.post_event(ifp, EventKind.MULTICAST_JOIN, {"group": "224.0.0.1"})
    assert log == [
        "a(0) MULTICAST_JOIN", f"b({AF_TEST}) MULTICAST_JOIN",
        f"proto{AF_INET} MULTICAST_JOIN", f"proto{AF_TEST} MULTICAST_JOIN",
        "driver MULTICAST_JOIN", "subscriber MULTICAST_JOIN",
    ]


def test_event_about_a_detaching_interface_goes_only_to_subscribers() -> None:
    h = Harness()
    ifp, log = _logged(h)
    h.dl.detach(ifp)
    log.clear()
    h.dl.post_event(ifp, EventKind.MULTICAST_LEAVE, {})
    assert log == ["subscriber MULTICAST_LEAVE"]


def test_event_carries_interface_name_index_and_data() -> None:
    h = Harness()
    ifp, _ = h.ethernet("eth3")
    event = h.dl.post_event(ifp, EventKind.MULTICAST_JOIN, {"group": 1})
    assert (event.ifname, event.ifindex, event.data) == ("eth3", ifp.index, {"group": 1})
    assert h.events[-1] is event


def test_unsubscribed_callback_hears_nothing_more() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    heard: list[Event] = []
    unsubscribe = h.dl.subscribe(heard.append)
    h.dl.post_event(ifp, EventKind.LINK_UP, {})
    unsubscribe()
    unsubscribe()  # twice is harmless
    h.dl.post_event(ifp, EventKind.LINK_DOWN, {})
    assert [e.kind for e in heard] == [EventKind.LINK_UP]


def test_event_delivery_releases_its_io_reference() -> None:
    h = Harness()
    ifp, _ = _logged(h)
    h.dl.post_event(ifp, EventKind.LINK_UP, {})
    assert ifp.ioref == 0
    assert all(p.refcount == 1 for p in ifp.protocols.values())


def test_detached_filter_hears_no_more_events() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    heard: list[EventKind] = []
    filt = InterfaceFilter("f", event=lambda i, fam, ev: heard.append(ev.kind))
    h.dl.attach_filter(ifp, filt)
    h.dl.post_event(ifp, EventKind.LINK_UP, {})
    h.dl.detach_filter(filt)
    h.dl.post_event(ifp, EventKind.LINK_DOWN, {})
    assert heard == [EventKind.LINK_UP]


def test_event_filter_detached_earlier_in_the_pass_is_not_called() -> None:
    # a deliberate difference: the seed's event pass ignores filt_skip
    h = Harness()
    ifp, _ = h.ethernet()
    log: list[str] = []
    second = InterfaceFilter("second", event=lambda i, fam, ev: log.append("second"),
                             detached=lambda i: log.append("second:detached"))

    def first_event(i: Interface, fam: int, event: Event) -> None:
        log.append("first")
        if second in i.filters:
            h.dl.detach_filter(second)

    h.dl.attach_filter(ifp, InterfaceFilter("first", event=first_event))
    h.dl.attach_filter(ifp, second)
    h.dl.post_event(ifp, EventKind.LINK_UP, {})
    assert log == ["first", "second:detached"]


def test_protocols_hear_events_in_the_seeds_hash_order() -> None:
    # proto_hash_value: IPv4 and IPv6 buckets come before the shared last bucket
    h = Harness()
    ifp, _ = h.ethernet()
    log: list[int] = []
    for family, ethertype in ((AF_TEST, ETHERTYPE_TEST), (AF_INET6, 0x86DD),
                              (AF_TEST + 1, ETHERTYPE_TEST + 1), (AF_INET, 0x0800)):
        h.dl.attach_protocol(ifp, make_proto(
            family=family, ethertypes=(ethertype,),
            event=lambda i, fam, ev: log.append(fam))[0])
    log.clear()  # forget the PROTO_ATTACHED events
    h.dl.post_event(ifp, EventKind.LINK_UP, {})
    assert log == [AF_INET, AF_INET6, AF_TEST, AF_TEST + 1]

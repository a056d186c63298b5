"""The output path: pre-output, framer, output filters, driver, counters."""

from __future__ import annotations

from typing import Any

from router.contracts import Packet
from router.errors import EHOSTUNREACH, EINVAL, EJUSTRETURN, ENOBUFS, ENXIO
from router.link.ether import BROADCAST_MAC, ETHERTYPE_IP, EthernetFamily
from router.link.ifnet import AF_INET, IfExtFlags, IfFamily, Interface
from router.link.io import LinkDrop
from tests.unit.link.support import (
    MAC_A,
    MAC_PEER,
    Harness,
    RecordingDriver,
    make_proto,
)


def _resolved(ifp: Interface, fam: int, pkt: Packet, dest: Any) -> tuple[int, bytes, int]:
    return 0, MAC_PEER, ETHERTYPE_IP


def _by_payload(results: dict[bytes, tuple[int, bytes, int]]) -> Any:
    def pre_output(ifp: Interface, fam: int, pkt: Packet, dest: Any) -> tuple[int, bytes, int]:
        return results.get(bytes(pkt.data), (0, MAC_PEER, ETHERTYPE_IP))
    return pre_output


def _setup(eflags: IfExtFlags = IfExtFlags.NONE, pre_output: Any = _resolved,
           driver: RecordingDriver | None = None) -> tuple[Harness, Interface, RecordingDriver]:
    h = Harness()
    ifp, drv = h.ethernet(eflags=eflags, driver=driver)
    h.dl.attach_protocol(ifp, make_proto(pre_output=pre_output)[0])
    return h, ifp, drv


def test_output_on_a_detaching_interface_is_enxio() -> None:
    h, ifp, driver = _setup()
    h.dl.detach(ifp)
    assert h.dl.output(ifp, AF_INET, [Packet(b"p")], None) == ENXIO
    assert driver.calls == []


def test_output_for_a_protocol_not_attached_is_enxio() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    assert h.dl.output(ifp, AF_INET, [Packet(b"p")], None) == ENXIO
    assert driver.calls == [] and ifp.ioref == 0


def test_output_frames_the_packet_for_the_driver() -> None:
    h, ifp, driver = _setup()
    assert h.dl.output(ifp, AF_INET, [Packet(b"payload")], 0x0A000002) == 0
    assert driver.frames == [MAC_PEER + MAC_A + b"\x08\x00" + b"payload"]


def test_pre_output_ejustreturn_holds_the_packet_and_goes_on() -> None:
    held = (EJUSTRETURN, b"", 0)
    h, ifp, driver = _setup(pre_output=_by_payload({b"held": held}))
    assert h.dl.output(ifp, AF_INET, [Packet(b"held"), Packet(b"one"), Packet(b"two")], 1) == 0
    assert [f[14:] for f in driver.frames] == [b"one", b"two"]


def test_rest_of_the_list_reuses_the_link_destination_without_asking_pre_output() -> None:
    asked: list[bytes] = []
    elsewhere = bytes.fromhex("02000000abcd")

    def pre_output(ifp: Interface, fam: int, pkt: Packet, dest: Any) -> tuple[int, bytes, int]:
        asked.append(bytes(pkt.data))
        if pkt.data == b"held":
            return EJUSTRETURN, b"", 0
        return (0, MAC_PEER, ETHERTYPE_IP) if len(asked) == 2 else (EHOSTUNREACH, elsewhere, 0)

    h, ifp, driver = _setup(pre_output=pre_output)
    pkts = [Packet(b"held"), Packet(b"one"), Packet(b"two"), Packet(b"three")]
    assert h.dl.output(ifp, AF_INET, pkts, 1) == 0
    assert asked == [b"held", b"one"]
    assert driver.frames == [MAC_PEER + MAC_A + b"\x08\x00" + p for p in (b"one", b"two", b"three")]


def test_pre_output_ejustreturn_on_the_last_packet_returns_zero() -> None:
    h, ifp, driver = _setup(pre_output=_by_payload({b"held": (EJUSTRETURN, b"", 0)}))
    assert h.dl.output(ifp, AF_INET, [Packet(b"held")], 1) == 0
    assert driver.calls == []


def test_pre_output_error_drops_that_packet_stops_and_returns_it() -> None:
    h, ifp, driver = _setup(pre_output=_by_payload({
        b"held": (EJUSTRETURN, b"", 0), b"bad": (EHOSTUNREACH, b"", 0)}))
    pkts = [Packet(b"held"), Packet(b"bad"), Packet(b"never")]
    assert h.dl.output(ifp, AF_INET, pkts, 1) == EHOSTUNREACH
    assert driver.calls == []
    assert h.dl.drops[LinkDrop.PRE_OUTPUT] == 2
    assert ifp.counters.opackets == 0


def test_pre_output_error_on_the_first_packet_sends_nothing() -> None:
    h, ifp, driver = _setup(pre_output=_by_payload({b"bad": (EHOSTUNREACH, b"", 0)}))
    assert h.dl.output(ifp, AF_INET, [Packet(b"bad"), Packet(b"good")], 1) == EHOSTUNREACH
    assert driver.calls == [] and h.dl.drops[LinkDrop.PRE_OUTPUT] == 2


class PickyFramer(EthernetFamily):
    """Frames like Ethernet but refuses a packet whose payload is ``bad``."""

    __slots__ = ()

    def framer(self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int) -> int:
        if pkt.data == b"bad":
            return EINVAL
        return super().framer(ifp, pkt, lldst, frame_type)


def _picky() -> tuple[Harness, Interface, RecordingDriver]:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"p", name="eth0")
    driver = RecordingDriver()
    h.dl.attach(ifp, MAC_A, PickyFramer(), driver)
    h.dl.attach_protocol(ifp, make_proto(pre_output=_resolved)[0])
    return h, ifp, driver


def test_framer_error_drops_that_packet_and_goes_on_with_the_next() -> None:
    h, ifp, driver = _picky()
    assert h.dl.output(ifp, AF_INET, [Packet(b"bad"), Packet(b"good")], 1) == 0
    assert [f[14:] for f in driver.frames] == [b"good"]
    assert h.dl.drops[LinkDrop.FRAMER] == 1


def test_framer_error_on_the_last_packet_is_the_result() -> None:
    h, ifp, driver = _picky()
    assert h.dl.output(ifp, AF_INET, [Packet(b"good"), Packet(b"bad")], 1) == EINVAL
    assert len(driver.frames) == 1


def test_framer_refusing_the_link_destination_refuses_the_whole_list() -> None:
    short = (0, b"\x01\x02", ETHERTYPE_IP)  # not an Ethernet address: framer says EINVAL
    h, ifp, driver = _setup(pre_output=lambda ifp, fam, pkt, dest: short)
    assert h.dl.output(ifp, AF_INET, [Packet(b"a"), Packet(b"b")], 1) == EINVAL
    assert driver.calls == [] and h.dl.drops[LinkDrop.FRAMER] == 2


class SwallowingFramer(EthernetFamily):
    __slots__ = ()

    def framer(self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int) -> int:
        return EJUSTRETURN


def test_framer_that_consumes_the_packet_is_not_an_error() -> None:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"s", name="eth0")
    driver = RecordingDriver()
    h.dl.attach(ifp, MAC_A, SwallowingFramer(), driver)
    h.dl.attach_protocol(ifp, make_proto(pre_output=_resolved)[0])
    assert h.dl.output(ifp, AF_INET, [Packet(b"x")], 1) == 0
    assert driver.calls == [] and h.dl.drops[LinkDrop.FRAMER] == 0


def test_driver_is_called_once_per_packet_without_sendlist() -> None:
    h, ifp, driver = _setup()
    h.dl.output(ifp, AF_INET, [Packet(b"a"), Packet(b"b"), Packet(b"c")], 1)
    assert [len(call) for call in driver.calls] == [1, 1, 1]


def test_sendlist_driver_gets_the_whole_list_in_one_call() -> None:
    h, ifp, driver = _setup(eflags=IfExtFlags.SENDLIST)
    h.dl.output(ifp, AF_INET, [Packet(b"a"), Packet(b"b"), Packet(b"c")], 1)
    assert [len(call) for call in driver.calls] == [3]


def test_output_counts_packets_bytes_and_multicasts() -> None:
    bcast = (0, BROADCAST_MAC, ETHERTYPE_IP)
    h, ifp, _ = _setup(pre_output=_by_payload({b"everyone": bcast}))
    h.dl.output(ifp, AF_INET, [Packet(b"everyone")], 1)
    h.dl.output(ifp, AF_INET, [Packet(b"you")], 1)
    c = ifp.counters
    assert (c.opackets, c.obytes, c.omcasts) == (2, 14 * 2 + 8 + 3, 1)


def test_driver_error_counts_oerrors_and_is_returned() -> None:
    h, ifp, _ = _setup(driver=RecordingDriver(output_result=ENOBUFS))
    assert h.dl.output(ifp, AF_INET, [Packet(b"a")], 1) == ENOBUFS
    assert ifp.counters.oerrors == 1 and ifp.counters.opackets == 0


def test_raw_output_skips_pre_output_and_framer() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    frame = BROADCAST_MAC + MAC_A + b"\x08\x06" + b"arp"
    assert h.dl.output(ifp, AF_INET, [Packet(frame)], None, raw=True) == 0
    assert driver.frames == [frame]


def test_output_releases_its_references() -> None:
    h, ifp, _ = _setup(pre_output=_by_payload({b"bad": (EHOSTUNREACH, b"", 0)}))
    h.dl.output(ifp, AF_INET, [Packet(b"bad")], 1)
    h.dl.output(ifp, AF_INET, [Packet(b"ok")], 1)
    assert ifp.ioref == 0 and ifp.protocols[AF_INET].refcount == 1


def test_output_asking_a_protocol_detached_in_flight_is_enxio() -> None:
    def detaching(ifp: Interface, fam: int, pkt: Packet, dest: Any) -> tuple[int, bytes, int]:
        h.dl.detach_protocol(ifp, fam)
        return EJUSTRETURN, b"", 0  # held; the next packet meets the ENXIO stub

    h, ifp, driver = _setup(pre_output=detaching)
    assert h.dl.output(ifp, AF_INET, [Packet(b"a"), Packet(b"b")], 1) == ENXIO
    assert driver.calls == [] and h.dl.drops[LinkDrop.PRE_OUTPUT] == 1


def test_output_resolved_before_its_protocol_detached_sends_the_whole_list() -> None:
    def detaching(ifp: Interface, fam: int, pkt: Packet, dest: Any) -> tuple[int, bytes, int]:
        h.dl.detach_protocol(ifp, fam)
        return 0, MAC_PEER, ETHERTYPE_IP

    h, ifp, driver = _setup(pre_output=detaching)
    assert h.dl.output(ifp, AF_INET, [Packet(b"a"), Packet(b"b")], 1) == 0
    assert len(driver.frames) == 2 and AF_INET not in ifp.protocols

"""The loopback family module and driver through the data link layer."""

from __future__ import annotations

from router.contracts import Packet, PacketFlags
from router.errors import EAFNOSUPPORT, EMSGSIZE, ENOBUFS, ENOENT
from router.link.ifnet import AF_INET, IfFamily, IfFlags, IfType, Interface
from router.link.loopback import NULL_HEADER_LEN, LoopbackDriver, LoopbackFamily
from tests.unit.link.support import Harness, make_proto


def _lo(h: Harness, limit: int = 4096) -> tuple[Interface, LoopbackDriver]:
    ifp = h.dl.acquire(IfFamily.LOOPBACK, b"lo0", name="lo0", type=IfType.LOOP,
                       flags=IfFlags.UP | IfFlags.LOOPBACK, mtu=16384)
    driver = LoopbackDriver(limit)
    h.dl.attach(ifp, None, LoopbackFamily(), driver)
    return ifp, driver


def test_loopback_output_comes_back_as_input_of_the_same_family() -> None:
    h = Harness()
    lo, driver = _lo(h)
    proto, log = make_proto(ethertypes=(), demux=())
    h.dl.attach_protocol(lo, proto)
    assert h.dl.output(lo, AF_INET, [Packet(b"\x45ping", family=AF_INET)], None) == 0
    h.dl.input(lo, driver.drain())
    (pkt,) = log.packets
    assert bytes(pkt.payload) == b"\x45ping" and pkt.l2len == NULL_HEADER_LEN
    assert pkt.flags & PacketFlags.LOOP and pkt.family == AF_INET
    assert driver.drain() == []


def test_loopback_attaches_without_a_link_address() -> None:
    h = Harness()
    lo, _ = _lo(h)
    assert lo.addrlen == 0 and lo.lladdr == b"" and lo.addresses[0].lladdr == b""


def test_loopback_frame_of_a_family_without_protocol_is_noproto() -> None:
    h = Harness()
    lo, _ = _lo(h)
    fam = LoopbackFamily()
    pkt = Packet(b"data", family=AF_INET)
    assert fam.framer(lo, pkt, b"", 0) == 0
    assert fam.demux(lo, Packet(pkt.data)) == (ENOENT, 0)
    h.dl.input(lo, [pkt.data, b"\x02"])
    assert lo.counters.noproto == 1 and lo.counters.ierrors == 1
    assert fam.demux(lo, Packet(b"\x02")) == (EMSGSIZE, 0)


def test_loopback_framer_needs_a_family() -> None:
    assert LoopbackFamily().framer(Interface("lo0"), Packet(b"x"), b"", 0) == EAFNOSUPPORT


def test_loopback_queue_is_bounded() -> None:
    driver = LoopbackDriver(limit=2)
    ifp = Interface("lo0")
    assert driver.output(ifp, [b"a"]) == 0
    assert driver.output(ifp, [b"b", b"c"]) == ENOBUFS
    assert driver.drain() == [b"a", b"b"] and driver.dropped == 1

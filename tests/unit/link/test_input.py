"""The input path: demux, counters, filters, promiscuous drop, protocol runs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.contracts import DemuxDesc, Packet
from router.errors import EJUSTRETURN, ENOENT, EPERM
from router.link.ether import BROADCAST_MAC, ETHERTYPE_IP, EthernetFamily, ipv4_multicast_mac
from router.link.ifnet import AF_INET, IfFamily, IfState, Interface
from router.link.io import LinkDrop
from tests.unit.link.support import (
    AF_TEST,
    ETHERTYPE_TEST,
    MAC_A,
    MAC_B,
    Harness,
    ProtoLog,
    RecordingDriver,
    eth_frame,
    make_proto,
    recording_filter,
)


def _two_protocols(version: int = 2) -> tuple[Harness, Interface, ProtoLog, ProtoLog]:
    h = Harness()
    ifp, _ = h.ethernet()
    inet, inet_log = make_proto(family=AF_INET, ethertypes=(ETHERTYPE_IP,), version=version)
    test, test_log = make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST,), version=version)
    h.dl.attach_protocol(ifp, inet)
    h.dl.attach_protocol(ifp, test)
    return h, ifp, inet_log, test_log


def test_input_counts_packets_and_bytes() -> None:
    h, ifp, _, _ = _two_protocols()
    frames = [eth_frame(MAC_A), eth_frame(MAC_A, payload=b"y" * 100)]
    h.dl.input(ifp, frames)
    assert ifp.counters.ipackets == 2
    assert ifp.counters.ibytes == sum(len(f) for f in frames)


def test_input_hands_packets_with_rcvif_l2len_and_family() -> None:
    h, ifp, inet_log, _ = _two_protocols()
    frame = eth_frame(MAC_A)
    h.dl.input(ifp, [frame])
    (pkt,) = inet_log.packets
    assert (pkt.rcvif, pkt.l2len, pkt.family, pkt.data) == (ifp.index, 14, AF_INET, frame)
    assert bytes(pkt.payload) == frame[14:]


def test_input_on_a_detaching_interface_is_dropped_silently() -> None:
    h, ifp, inet_log, _ = _two_protocols()
    h.dl.detach(ifp)
    h.dl.input(ifp, [eth_frame(MAC_A)] * 3)
    assert inet_log.packets == []
    assert h.dl.drops[LinkDrop.NOT_ATTACHED] == 3
    c = ifp.counters
    assert c.noproto == c.iqdrops == c.ierrors == 0


def test_frames_on_a_detaching_interface_still_count_as_received() -> None:
    # ifnet_input adds the driver's receive statistics before the attach check
    h, ifp, _, _ = _two_protocols()
    h.dl.detach(ifp)
    frames = [eth_frame(MAC_A), eth_frame(MAC_A, payload=b"z" * 50)]
    h.dl.input(ifp, frames)
    assert (ifp.counters.ipackets, ifp.counters.ibytes) == (2, sum(map(len, frames)))


def test_runt_frame_counts_an_input_error_and_is_dropped() -> None:
    h, ifp, inet_log, _ = _two_protocols()
    h.dl.input(ifp, [b"\x01\x02\x03", MAC_A + MAC_B + b"\x81\x00\x00"])
    assert ifp.counters.ierrors == 2 and inet_log.packets == []
    assert h.dl.drops[LinkDrop.RUNT] == 2


class ConsumingFamily(EthernetFamily):
    """Ethernet, except that demux swallows every frame (like the detached stub)."""

    __slots__ = ()

    def demux(self, ifp: Interface, pkt: Packet) -> tuple[int, int]:
        return EJUSTRETURN, 0

    def add_proto(self, ifp: Interface, family: int, demux: Sequence[DemuxDesc]) -> int:
        return 0


def test_demux_consumed_frame_is_forgotten_without_a_drop() -> None:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"c", name="eth0")
    h.dl.attach(ifp, MAC_A, ConsumingFamily(), RecordingDriver())
    proto, log = make_proto()
    h.dl.attach_protocol(ifp, proto)
    filt_log: list[str] = []
    h.dl.attach_filter(ifp, recording_filter("f", filt_log))
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert log.packets == [] and filt_log == []
    assert ifp.counters.noproto == 0 and ifp.counters.iqdrops == 0


def test_unknown_ethertype_goes_through_filters_as_family_zero_then_noproto() -> None:
    h, ifp, _, _ = _two_protocols()
    seen: list[int] = []

    def spy(i: Interface, fam: int, pkt: Packet) -> int:
        seen.append(fam)
        return 0

    h.dl.attach_filter(ifp, recording_filter("spy", [], input=spy))
    h.dl.input(ifp, [eth_frame(MAC_A, ethertype=0x9999)])
    assert seen == [0]
    assert ifp.counters.noproto == 1


def test_family_without_protocol_attached_counts_noproto() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    ifp.demux_table[ETHERTYPE_IP] = AF_INET  # demux knows it, nobody attached
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert ifp.counters.noproto == 1
    assert h.dl.drops[LinkDrop.NO_PROTO] == 1


def test_broadcast_and_multicast_frames_are_counted_in_imcasts() -> None:
    h, ifp, inet_log, _ = _two_protocols()
    h.dl.input(ifp, [eth_frame(BROADCAST_MAC), eth_frame(ipv4_multicast_mac(0xE0000001)),
                     eth_frame(MAC_A)])
    assert ifp.counters.imcasts == 2
    assert len(inet_log.packets) == 3


def test_promiscuous_frame_is_filtered_then_dropped() -> None:
    h, ifp, inet_log, _ = _two_protocols()
    filt_log: list[str] = []
    h.dl.attach_filter(ifp, recording_filter("f", filt_log))
    h.dl.input(ifp, [eth_frame(MAC_B)])
    assert filt_log == ["f:in"]
    assert inet_log.packets == []
    assert h.dl.drops[LinkDrop.PROMISC] == 1 and ifp.counters.iqdrops == 0


def test_consecutive_packets_for_the_same_protocol_are_delivered_as_one_list() -> None:
    h, ifp, inet_log, test_log = _two_protocols()
    ip, other = eth_frame(MAC_A), eth_frame(MAC_A, ethertype=ETHERTYPE_TEST)
    h.dl.input(ifp, [ip, ip, other, other, other, ip])
    assert [len(lst) for lst in inet_log.lists] == [2, 1]
    assert [len(lst) for lst in test_log.lists] == [3]


def test_a_dropped_frame_does_not_break_a_run() -> None:
    h, ifp, inet_log, _ = _two_protocols()
    ip = eth_frame(MAC_A)
    h.dl.input(ifp, [ip, eth_frame(MAC_A, ethertype=0x9999), b"runt", ip])
    assert [len(lst) for lst in inet_log.lists] == [2]


def test_v1_protocol_gets_packets_one_at_a_time() -> None:
    h, ifp, inet_log, _ = _two_protocols(version=1)
    h.dl.input(ifp, [eth_frame(MAC_A)] * 3)
    assert len(inet_log.packets) == 3 and inet_log.lists == []


@pytest.mark.parametrize("version", [1, 2])
def test_protocol_error_drops_and_counts_iqdrops(version: int) -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(version=version, result=EPERM)[0])
    h.dl.input(ifp, [eth_frame(MAC_A)] * 3)
    assert ifp.counters.iqdrops == 3
    assert h.dl.drops[LinkDrop.PROTO_ERROR] == 3


def test_protocol_ejustreturn_is_not_a_drop() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(result=EJUSTRETURN)[0])
    h.dl.input(ifp, [eth_frame(MAC_A)] * 2)
    assert ifp.counters.iqdrops == 0


def test_input_releases_its_io_reference_and_protocol_references() -> None:
    h, ifp, _, _ = _two_protocols()
    h.dl.input(ifp, [eth_frame(MAC_A), eth_frame(MAC_A, ethertype=ETHERTYPE_TEST)])
    assert ifp.ioref == 0
    assert [p.refcount for p in ifp.protocols.values()] == [1, 1]


def test_input_releases_references_even_when_a_protocol_raises() -> None:
    h = Harness()
    ifp, _ = h.ethernet()

    def boom(i: Interface, fam: int, pkts: list[Packet]) -> int:
        raise RuntimeError("protocol bug")

    h.dl.attach_protocol(ifp, make_proto(input_list=boom)[0])
    with pytest.raises(RuntimeError):
        h.dl.input(ifp, [eth_frame(MAC_A)])
    assert ifp.ioref == 0 and ifp.protocols[AF_INET].refcount == 1


def test_interface_detached_mid_batch_drops_the_rest() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    delivered: list[int] = []

    def input_one(i: Interface, fam: int, pkt: Packet) -> int:
        delivered.append(fam)
        if i.state is IfState.ATTACHED:
            h.dl.detach(i)
        return 0

    h.dl.attach_protocol(ifp, make_proto(version=1, input=input_one)[0])
    other, other_log = make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST,))
    h.dl.attach_protocol(ifp, other)
    ip, test = eth_frame(MAC_A), eth_frame(MAC_A, ethertype=ETHERTYPE_TEST)
    # the IPv4 run [ip] is delivered when the test frame is classified; its
    # protocol detaches the interface, so the last frame is never looked at
    h.dl.input(ifp, [ip, test, ip])
    assert delivered == [AF_INET]
    assert len(other_log.packets) == 1
    assert ifp.counters.ipackets == 3  # received, even the frame dropped unlooked-at
    assert h.dl.drops[LinkDrop.NOT_ATTACHED] == 1
    assert ifp.ioref == 0 and h.dl.run_deferred() == [ifp]


_frames = st.lists(st.binary(min_size=0, max_size=64), max_size=20)


@settings(max_examples=200, deadline=None)
@given(frames=_frames)
def test_random_frames_never_raise_and_every_frame_is_accounted_for(frames: list[bytes]) -> None:
    h, ifp, inet_log, test_log = _two_protocols()
    h.dl.input(ifp, frames)
    c = ifp.counters
    assert c.ipackets == len(frames)
    runts = sum(1 for f in frames if len(f) < 14 or (f[12:14] == b"\x81\x00" and len(f) < 18))
    assert c.ierrors == runts
    delivered = len(inet_log.packets) + len(test_log.packets)
    others = c.noproto + h.dl.drops[LinkDrop.PROMISC]
    assert delivered + others + runts == len(frames)
    assert ifp.ioref == 0


def test_enoent_from_demux_is_family_zero() -> None:
    h, ifp, _, _ = _two_protocols()
    pkt = Packet(eth_frame(MAC_A, ethertype=0x9999))
    assert h.ether.demux(ifp, pkt) == (ENOENT, 0)

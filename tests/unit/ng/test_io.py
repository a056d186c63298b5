"""ngN packet paths: ng_iface_output, ng_iface_send, ng_iface_rcvdata, ng_iface_bpftap, nesting."""

from __future__ import annotations

import errno
import io

import pytest
from scapy.all import IP

from router.contracts import Packet, ProtoAttachment
from router.errors import EAFNOSUPPORT, ENETDOWN, ENOBUFS, ENXIO
from router.link.ifnet import AF_INET, AF_INET6, IfFlags, Interface
from router.ng.backtoback import link_back_to_back
from router.ng.hooks import NgFrame
from router.ng.iface import ENOTCONN
from router.ng.pcap import DLT_NULL, PcapReader, null_header
from router.ng.tap import Direction, write_records
from tests.unit.ng.support import (
    NgBench,
    RecordingPeer,
    ipv4_packet,
    ipv6_packet,
    make_bench,
)

EIO = errno.EIO


def _no_input(ifp: Interface, family: int, pkt: Packet) -> int:
    return 0


def _p2p_pre_output(ifp: Interface, family: int, pkt: Packet, dest: object) -> tuple[int, bytes,
                                                                                        int]:
    return 0, b"", 0  # NOARP: nothing to resolve


# -- ng_iface_output -------------------------------------------------------


def test_output_when_not_up_is_enetdown() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    peer = RecordingPeer()
    bench.ngs.connect(ifp, "inet", peer)
    assert bench.ngs.output(ifp, AF_INET, ipv4_packet()) == ENETDOWN
    assert peer.packets == []


def test_output_up_but_not_running_is_enetdown() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    peer = RecordingPeer()
    bench.ngs.connect(ifp, "inet", peer)
    bench.dl.set_up(ifp, True)  # UP without the driver started
    assert not ifp.flags & IfFlags.RUNNING
    assert bench.ngs.output(ifp, AF_INET, ipv4_packet()) == ENETDOWN
    assert peer.packets == []


def test_output_without_hook_is_enetdown() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    assert bench.ngs.output(ifp, AF_INET, ipv4_packet()) == ENETDOWN
    assert ifp.counters.opackets == 0


def test_output_of_family_without_hook_name_is_eafnosupport() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    bench.ngs.connect(ifp, "inet", RecordingPeer())
    assert bench.ngs.output(ifp, 99, b"\x00" * 20) == EAFNOSUPPORT
    assert ifp.counters.opackets == 0


def test_output_goes_to_the_hook_of_its_family() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    inet, inet6 = RecordingPeer(), RecordingPeer()
    bench.ngs.connect(ifp, "inet", inet)
    bench.ngs.connect(ifp, "inet6", inet6)
    assert bench.ngs.output(ifp, AF_INET6, ipv6_packet()) == 0
    assert bench.ngs.output(ifp, AF_INET, ipv4_packet()) == 0
    assert inet.packets == [(AF_INET, ipv4_packet())]
    assert inet6.packets == [(AF_INET6, ipv6_packet())]


def test_output_counts_packets_and_bytes_only_on_success() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    peer = RecordingPeer(answer=ENOBUFS)
    bench.ngs.connect(ifp, "inet", peer)
    packet = ipv4_packet()
    assert bench.ngs.output(ifp, AF_INET, packet) == ENOBUFS
    assert (ifp.counters.opackets, ifp.counters.obytes) == (0, 0)
    peer.answer = 0
    assert bench.ngs.output(ifp, AF_INET, packet) == 0
    # no link header: the bytes counted are the network-layer packet's
    assert (ifp.counters.opackets, ifp.counters.obytes) == (1, len(packet))


def test_stack_output_through_datalink_reaches_the_hook_without_link_header() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    peer = RecordingPeer()
    bench.ngs.connect(ifp, "inet", peer)
    bench.dl.attach_protocol(ifp, ProtoAttachment(AF_INET, 1, input=_no_input,
                                                  pre_output=_p2p_pre_output))
    packet = ipv4_packet()
    assert bench.dl.output(ifp, AF_INET, [Packet(packet)], 0x0A000002) == 0
    assert peer.packets == [(AF_INET, packet)]
    assert ifp.counters.obytes == len(packet)


def test_raw_write_carries_its_family_in_a_null_header() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    inet6 = RecordingPeer()
    bench.ngs.connect(ifp, "inet6", inet6)
    frame = null_header(AF_INET6) + ipv6_packet()
    assert bench.dl.output(ifp, 0, [Packet(frame)], None, raw=True) == 0
    assert inet6.packets == [(AF_INET6, ipv6_packet())]


def test_output_on_shut_down_interface_is_enxio() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.ngs.shutdown(ifp)
    assert bench.ngs.output(ifp, AF_INET, ipv4_packet()) == ENXIO


# -- ng_iface_bpftap -------------------------------------------------------


def test_tap_sees_output_with_null_family_header_even_without_hook() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    tap = bench.taps.open(ifp)
    bench.now = 123.5
    assert bench.ngs.output(ifp, AF_INET, ipv4_packet()) == ENETDOWN
    [record] = tap.drain()
    assert (record.timestamp, record.direction) == (123.5, Direction.OUT)
    assert record.frame == null_header(AF_INET) + ipv4_packet()


def test_tap_does_not_see_output_refused_as_down() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    tap = bench.taps.open(ifp)
    assert bench.ngs.output(ifp, AF_INET, ipv4_packet()) == ENETDOWN
    assert tap.drain() == []


def test_tapped_traffic_writes_a_dlt_null_pcap() -> None:
    bench = make_bench()
    ng0, ng1 = bench.ngs.create(), bench.ngs.create()
    bench.up(ng0)
    bench.up(ng1)
    link_back_to_back(bench.ngs, ng0, bench.ngs, ng1)
    tap = bench.taps.open(ng1)
    assert bench.ngs.output(ng0, AF_INET, ipv4_packet(ttl=9)) == 0
    out = io.BytesIO()
    write_records(tap.pcap_writer(out), tap.drain())
    out.seek(0)
    reader = PcapReader(out)
    [record] = list(reader)
    assert reader.linktype == DLT_NULL
    assert reader.family(record) == AF_INET
    assert IP(record.data[4:]).ttl == 9


# -- ng_iface_rcvdata ------------------------------------------------------


def test_input_when_not_up_is_enetdown_and_not_counted() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    hook = bench.ngs.connect(ifp, "inet", RecordingPeer())
    assert hook.inject(ipv4_packet()) == ENETDOWN
    assert ifp.counters.ipackets == 0
    assert bench.delivered == []


def test_input_is_counted_tapped_and_delivered_to_the_stack() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    hook = bench.ngs.connect(ifp, "inet", RecordingPeer())
    tap = bench.taps.open(ifp)
    bench.now = 7.25
    packet = ipv4_packet()
    assert hook.inject(bytearray(packet)) == 0
    assert bench.delivered == [(ifp, AF_INET, packet)]
    assert (ifp.counters.ipackets, ifp.counters.ibytes) == (1, len(packet))
    [record] = tap.drain()
    assert (record.timestamp, record.direction, record.frame) == (
        7.25, Direction.IN, null_header(AF_INET) + packet)


def test_input_of_family_without_handler_is_eafnosupport_after_counting() -> None:
    bench = make_bench()  # the engine handles AF_INET only
    ifp = bench.ngs.create()
    bench.up(ifp)
    hook = bench.ngs.connect(ifp, "inet6", RecordingPeer())
    assert hook.inject(ipv6_packet()) == EAFNOSUPPORT
    assert ifp.counters.ipackets == 1
    assert bench.delivered == []


def test_input_families_are_configurable() -> None:
    bench = make_bench(input_families=(AF_INET, AF_INET6))
    ifp = bench.ngs.create()
    bench.up(ifp)
    hook = bench.ngs.connect(ifp, "inet6", RecordingPeer())
    assert hook.inject(ipv6_packet()) == 0
    assert bench.delivered == [(ifp, AF_INET6, ipv6_packet())]


def test_input_on_a_cut_hook_is_enotconn() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    hook = bench.ngs.connect(ifp, "inet", RecordingPeer())
    bench.ngs.disconnect(hook)
    assert hook.inject(ipv4_packet()) == ENOTCONN
    assert bench.delivered == []


# -- if_tunnel_check_nesting -----------------------------------------------


def _forwarding_bench(
    route: dict[str, str], copy: bool = False, **options: object
) -> tuple[NgBench, list[tuple[str, int]]]:
    """A bench whose stack sends what arrives on ``ngX`` out of ``route[ngX]``."""
    bench = make_bench(**options)
    results: list[tuple[str, int]] = []

    def forward(ifp: Interface, family: int, packet: bytes) -> None:
        out = route.get(ifp.name)
        if out is None:
            bench.delivered.append((ifp, family, bytes(packet)))
            return
        target = bench.ngs.find(out)
        assert target is not None
        data = bytes(bytearray(packet)) if copy else packet
        results.append((out, bench.ngs.output(target, family, data)))

    bench.stack = forward
    return bench, results


def test_nesting_limit_stops_loops() -> None:
    # ng0 <-> ng1; whatever arrives on ng1 is routed back out of ng0: a loop
    bench, results = _forwarding_bench({"ng1": "ng0"})
    ng0, ng1 = bench.ngs.create(), bench.ngs.create()
    bench.up(ng0)
    bench.up(ng1)
    link_back_to_back(bench.ngs, ng0, bench.ngs, ng1)
    assert bench.ngs.output(ng0, AF_INET, ipv4_packet()) == 0
    assert results == [("ng0", EIO)]  # the second crossing of ng0 is refused, once


@pytest.mark.parametrize("copy", [False, True])
def test_nesting_deeper_than_the_limit_is_eio(copy: bool) -> None:
    # ng0 -> ng1, forwarded out ng2 -> ng3, forwarded out ng4: three ngN crossings
    bench, results = _forwarding_bench({"ng1": "ng2", "ng3": "ng4"}, copy=copy)
    ifps = [bench.ngs.create() for _ in range(6)]
    for ifp in ifps:
        bench.up(ifp)
    link_back_to_back(bench.ngs, ifps[0], bench.ngs, ifps[1])
    link_back_to_back(bench.ngs, ifps[2], bench.ngs, ifps[3])
    link_back_to_back(bench.ngs, ifps[4], bench.ngs, ifps[5])
    assert bench.ngs.output(ifps[0], AF_INET, ipv4_packet()) == 0
    # innermost first: the third crossing (ng4) is refused, the second (ng2) went through
    assert results == [("ng4", EIO), ("ng2", 0)]
    assert bench.delivered == []


def test_raising_max_nesting_lets_the_deeper_nest_through() -> None:
    bench, results = _forwarding_bench({"ng1": "ng2", "ng3": "ng4"}, max_nesting=3)
    ifps = [bench.ngs.create() for _ in range(6)]
    for ifp in ifps:
        bench.up(ifp)
    for left in (0, 2, 4):
        link_back_to_back(bench.ngs, ifps[left], bench.ngs, ifps[left + 1])
    assert bench.ngs.output(ifps[0], AF_INET, ipv4_packet()) == 0
    assert results == [("ng4", 0), ("ng2", 0)]
    assert [ifp.name for ifp, _, _ in bench.delivered] == ["ng5"]


def test_packet_from_outside_starts_with_no_tags() -> None:
    bench, results = _forwarding_bench({"ng0": "ng1"})
    ng0, ng1 = bench.ngs.create(), bench.ngs.create()
    bench.up(ng0)
    bench.up(ng1)
    hook = bench.ngs.connect(ng0, "inet", RecordingPeer())
    peer = RecordingPeer()
    bench.ngs.connect(ng1, "inet", peer)
    for _ in range(3):  # unrelated packets never inherit each other's tags
        assert hook.inject(ipv4_packet()) == 0
    assert results == [("ng1", 0)] * 3
    assert len(peer.packets) == 3


def test_tags_travel_on_the_frame_between_engines() -> None:
    left, right = make_bench(), make_bench()
    a, b = left.ngs.create(), right.ngs.create()
    left.up(a)
    right.up(b)
    link_back_to_back(left.ngs, a, right.ngs, b)
    assert left.ngs.output(a, AF_INET, ipv4_packet()) == 0
    [(_, _, _)] = right.delivered
    # the object the peer engine's stack got still says which ngN it crossed
    seen: list[NgFrame] = []
    right.stack = lambda ifp, family, packet: seen.append(packet)  # type: ignore[arg-type]
    assert left.ngs.output(a, AF_INET, ipv4_packet()) == 0
    assert isinstance(seen[0], NgFrame) and seen[0].crossed == (a,)


# -- PointToPointFamily.demux (frames that come through DataLink.input) ----


def test_frames_through_datalink_input_are_demuxed_by_their_null_header() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    got: list[tuple[int, bytes]] = []

    def take(ifp: Interface, family: int, pkt: Packet) -> int:
        got.append((family, bytes(pkt.payload)))
        return 0

    bench.dl.attach_protocol(ifp, ProtoAttachment(AF_INET, 1, input=take))
    bench.dl.input(ifp, [null_header(AF_INET) + ipv4_packet(), b"\x02\x00"])
    assert got == [(AF_INET, ipv4_packet())]
    assert ifp.counters.ierrors == 1  # the 2-byte frame is shorter than the family header

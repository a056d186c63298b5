"""router.ng.tap: per-interface taps with bounded queues and pcap output."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.errors import EINVAL, ENXIO, RouterError
from router.link.ifnet import AF_INET, IfFamily, IfState, IfType, Interface
from router.ng.pcap import DLT_EN10MB, DLT_NULL, PcapReader, null_header
from router.ng.tap import Direction, Taps, linktype_for, write_records


def _attached(name: str, index: int, *, ng: bool = False) -> Interface:
    if ng:
        ifp = Interface(name, family=IfFamily.NETGRAPH, type=IfType.PROPVIRTUAL)
    else:
        ifp = Interface(name)
    ifp.index = index
    ifp.state = IfState.ATTACHED
    return ifp


def test_linktype_is_en10mb_for_ethernet_and_null_for_ng() -> None:
    assert linktype_for(_attached("eth0", 1)) == DLT_EN10MB
    assert linktype_for(_attached("ng0", 2, ng=True)) == DLT_NULL
    assert linktype_for(Interface("lo0", family=IfFamily.LOOPBACK, type=IfType.LOOP)) == DLT_NULL


def test_open_on_unattached_interface_is_enxio() -> None:
    with pytest.raises(RouterError) as caught:
        Taps().open(Interface("eth9"))
    assert caught.value.errno == ENXIO


@pytest.mark.parametrize(("snaplen", "max_queued", "field"),
                         [(0, 10, "snaplen"), (100, 0, "max_queued")])
def test_open_with_non_positive_bounds_is_einval(snaplen: int, max_queued: int,
                                                 field: str) -> None:
    with pytest.raises(RouterError) as caught:
        Taps().open(_attached("eth0", 1), snaplen=snaplen, max_queued=max_queued)
    assert caught.value.errno == EINVAL
    assert caught.value.field == field


def test_tap_records_time_index_and_direction() -> None:
    taps = Taps()
    ifp = _attached("eth0", 4)
    tap = taps.open(ifp)
    taps.tap_input(ifp, b"in-frame", 10.25)
    taps.tap_output(ifp, bytearray(b"out-frame"), 10.5)
    records = tap.drain()
    assert [(r.timestamp, r.ifindex, r.direction, r.frame) for r in records] == [
        (10.25, 4, Direction.IN, b"in-frame"),
        (10.5, 4, Direction.OUT, b"out-frame"),
    ]
    assert tap.drain() == []


def test_untapped_interface_records_nothing_and_is_not_tapped() -> None:
    taps = Taps()
    eth0, eth1 = _attached("eth0", 1), _attached("eth1", 2)
    tap = taps.open(eth0)
    taps.tap_input(eth1, b"x", 1.0)
    assert not taps.is_tapped(eth1)
    assert taps.is_tapped(eth0)
    assert tap.drain() == []


def test_full_queue_drops_oldest_and_counts_it() -> None:
    taps = Taps()
    ifp = _attached("eth0", 1)
    tap = taps.open(ifp, max_queued=3)
    for n in range(5):
        taps.tap_input(ifp, bytes([n]), float(n))
    assert [r.frame for r in tap.drain()] == [b"\x02", b"\x03", b"\x04"]
    assert (tap.dropped, tap.seen) == (2, 5)


def test_snaplen_cuts_frame_and_keeps_length() -> None:
    taps = Taps()
    ifp = _attached("eth0", 1)
    tap = taps.open(ifp, snaplen=4)
    taps.tap_output(ifp, b"0123456789", 1.0)
    [record] = tap.drain()
    assert (record.frame, record.length) == (b"0123", 10)


def test_closed_tap_records_nothing_but_keeps_its_queue() -> None:
    taps = Taps()
    ifp = _attached("eth0", 1)
    tap = taps.open(ifp)
    other = taps.open(ifp)
    taps.tap_input(ifp, b"a", 1.0)
    assert taps.close(tap) is True
    assert taps.close(tap) is False
    taps.tap_input(ifp, b"b", 2.0)
    assert [r.frame for r in tap.drain()] == [b"a"]
    assert [r.frame for r in other.drain()] == [b"a", b"b"]


def test_close_interface_closes_every_tap_on_it() -> None:
    taps = Taps()
    ifp = _attached("eth0", 1)
    first, second = taps.open(ifp), taps.open(ifp)
    assert taps.close_interface(ifp) == [first, second]
    assert first.closed and second.closed
    assert not taps.is_tapped(ifp)


def test_ng_tap_writes_dlt_null_pcap_with_family_header() -> None:
    taps = Taps()
    ifp = _attached("ng0", 3, ng=True)
    tap = taps.open(ifp)
    taps.tap_output(ifp, null_header(AF_INET) + b"\x45\x00", 5.0)
    out = io.BytesIO()
    assert write_records(tap.pcap_writer(out), tap.drain()) == 1
    out.seek(0)
    reader = PcapReader(out)
    [record] = list(reader)
    assert reader.linktype == DLT_NULL
    assert reader.family(record) == AF_INET
    assert record.data[4:] == b"\x45\x00"


@settings(max_examples=50, deadline=None)
@given(bound=st.integers(1, 8), count=st.integers(0, 30))
def test_queue_never_exceeds_bound_and_drops_add_up(bound: int, count: int) -> None:
    taps = Taps()
    ifp = _attached("eth0", 1)
    tap = taps.open(ifp, max_queued=bound)
    for n in range(count):
        taps.tap_input(ifp, n.to_bytes(2, "big"), float(n))
    drained = tap.drain()
    assert len(drained) == min(bound, count)
    assert tap.dropped == count - len(drained)
    assert [r.frame for r in drained] == [n.to_bytes(2, "big")
                                          for n in range(count - len(drained), count)]

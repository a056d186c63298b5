"""The engine with frames that carry offload work (router/offload.py), both paths.

A TCP super-frame of 5,000 payload bytes (four 1448-byte segments' worth,
larger than the 1500-byte MTU) and a UDP datagram with its checksum left to
offload, forwarded by an engine whose interfaces hand offload work on
(``offload=True``, as the agent's links) or do not (the engine finishes it),
through the fast path and the generic path alike.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from router import Engine, EngineConfig
from router.arp.config import ArpConfig
from router.offload import (
    F_NEEDS_CSUM,
    GSO_NONE,
    GSO_TCPV4,
    SPLICE_MIN,
    OffloadFrame,
    SplicedFrame,
)
from router.wire.checksum import ones_complement_sum

R0, R1 = "02:00:00:00:01:00", "02:00:00:00:01:01"
H0, H1 = "02:00:00:00:02:00", "02:00:00:00:03:02"
PAYLOAD = bytes(range(250)) * 20
TS = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]


def router(fast: bool, offload_out: bool, mtu_out: int = 1500) -> Engine:
    engine = Engine(EngineConfig(fast_path=fast, arp=ArpConfig(seed=3)))
    engine.add_ethernet("eth0", R0, offload=True)
    engine.add_ethernet("eth1", R1, mtu=mtu_out, offload=offload_out)
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    engine.set_arp("eth0", "10.0.0.2", H0)
    engine.set_arp("eth1", "10.1.0.2", H1)
    engine.transmit()  # the new addresses' gratuitous ARPs: not the traffic under test
    return engine


def _partial(packet: bytes, protocol: int, field: int) -> bytes:
    raw = bytearray(packet)
    pseudo = raw[26:34] + bytes((0, protocol)) + (len(raw) - 34).to_bytes(2, "big")
    raw[34 + field : 36 + field] = ones_complement_sum(bytes(pseudo)).to_bytes(2, "big")
    return bytes(raw)


def tcp_super(ttl: int = 64) -> OffloadFrame:
    packet = bytes(Ether(src=H0, dst=R0) / IP(src="10.0.0.2", dst="10.1.0.2", ttl=ttl, id=40,
                                             flags="DF")
                   / TCP(sport=40000, dport=5201, seq=1, flags="PA", options=TS) / PAYLOAD)
    return OffloadFrame.make(_partial(packet, 6, 16), F_NEEDS_CSUM, GSO_TCPV4, 66, 1448, 34, 16)


def udp_partial() -> OffloadFrame:
    packet = bytes(Ether(src=H0, dst=R0) / IP(src="10.0.0.2", dst="10.1.0.2")
                   / UDP(sport=5, dport=6) / (b"d" * 1200))
    return OffloadFrame.make(_partial(packet, 17, 6), F_NEEDS_CSUM, GSO_NONE, 0, 0, 34, 6)


def _checksums_valid(frame: bytes) -> bool:
    packet = Ether(frame)
    rebuilt = packet.copy()
    del rebuilt[IP].chksum
    del rebuilt[TCP if TCP in rebuilt else UDP].chksum
    return bytes(Ether(bytes(rebuilt))) == frame


def _forward(engine: Engine, frame: bytes) -> list[bytes]:
    engine.receive_batch(engine.interface("eth0").index, [frame], 1.0)  # type: ignore[union-attr]
    return [out for _ifindex, out in engine.transmit()]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "generic-path"])
def test_a_super_frame_leaves_whole_with_its_description_and_one_ttl_decrement(
        fast: bool) -> None:
    engine = router(fast, offload_out=True)
    received = tcp_super()
    (out,) = _forward(engine, received)
    if fast:  # queued in two pieces for the driver: the payload is a view, never copied
        assert type(out) is SplicedFrame and out.rest.obj is received
        assert len(out) == len(received) and out.vnet_header() == received.vnet_header()
        out = out.joined()
    assert isinstance(out, OffloadFrame)
    assert (out.gso_type, out.gso_size, out.csum_start, out.csum_offset, out.hdr_len) == (
        GSO_TCPV4, 1448, 34, 16, 66)
    packet = Ether(out)
    assert (packet.src, packet.dst) == (R1, H1)
    assert packet[IP].ttl == 63 and packet[IP].len == len(out) - 14
    assert bytes(packet[TCP].payload) == PAYLOAD
    rebuilt = packet.copy()
    del rebuilt[IP].chksum
    assert Ether(bytes(rebuilt))[IP].chksum == packet[IP].chksum  # header checksum fixed
    assert out[34 + 16 : 34 + 18] == tcp_super()[50:52]  # partial sum handed on untouched
    assert engine.ipv4.stats.forwarded == 1 and engine.ipv4.stats.offload_finished == 0


def test_the_spliced_super_frame_is_the_generic_paths_frame_byte_for_byte() -> None:
    fast, generic = router(True, offload_out=True), router(False, offload_out=True)
    (spliced,) = _forward(fast, tcp_super())
    (whole,) = _forward(generic, tcp_super())
    assert type(spliced) is SplicedFrame and type(whole) is OffloadFrame
    joined = spliced.joined()
    assert bytes(joined) == bytes(whole) == b"".join((spliced.head, spliced.rest))
    assert joined.vnet_header() == whole.vnet_header() == spliced.vnet_header()
    assert fast.counters("eth1")["obytes"] == generic.counters("eth1")["obytes"]


def test_frames_below_the_splice_size_are_queued_joined() -> None:
    engine = router(True, offload_out=True)
    small = udp_partial()
    assert len(small) < SPLICE_MIN
    (out,) = _forward(engine, small)
    assert type(out) is OffloadFrame


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "generic-path"])
def test_out_of_an_interface_without_offload_the_engine_cuts_the_segments(fast: bool) -> None:
    engine = router(fast, offload_out=False)
    sent_before = engine.counters("eth1")["opackets"]  # the gratuitous ARP of 10.1.0.1
    out = _forward(engine, tcp_super())
    assert [type(f) for f in out] == [bytes] * 4
    parsed = [Ether(f) for f in out]
    assert b"".join(bytes(p[TCP].payload) for p in parsed) == PAYLOAD
    assert {p[IP].ttl for p in parsed} == {63}
    assert max(p[IP].len for p in parsed) <= 1500
    assert all(_checksums_valid(f) for f in out)
    assert engine.ipv4.stats.offload_finished == 1
    assert engine.counters("eth1")["opackets"] - sent_before == 4


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "generic-path"])
def test_a_partial_checksum_is_completed_for_an_interface_without_offload(fast: bool) -> None:
    engine = router(fast, offload_out=False)
    (out,) = _forward(engine, udp_partial())
    assert type(out) is bytes
    assert _checksums_valid(out)
    engine = router(fast, offload_out=True)
    (kept,) = _forward(engine, udp_partial())
    assert isinstance(kept, OffloadFrame) and kept.needs_csum


def test_segments_larger_than_the_output_mtu_get_fragmentation_needed() -> None:
    """One ICMP error per super-frame (as Linux sends for a GSO packet), nothing forwarded."""
    engine = router(True, offload_out=True, mtu_out=1000)
    (error,) = [Ether(f) for f in _forward(engine, tcp_super())]
    assert (error[ICMP].type, error[ICMP].code, error[ICMP].nexthopmtu) == (3, 4, 1000)
    assert error.dst == H0
    assert engine.ipv4.stats.forwarded == 0
    assert engine.drop_counts()["ipv4.too_big"] == 1


def test_an_expiring_super_frame_gets_time_exceeded_and_is_not_forwarded() -> None:
    engine = router(True, offload_out=True)
    (error,) = [Ether(f) for f in _forward(engine, tcp_super(ttl=1))]
    assert error[ICMP].type == 11 and error.dst == H0


def test_a_description_the_headers_contradict_is_dropped_and_counted() -> None:
    engine = router(True, offload_out=False)
    frame = udp_partial()  # fits the MTU; the checksum's place is beyond the frame
    broken = OffloadFrame.make(bytes(frame), F_NEEDS_CSUM, GSO_NONE, 0, 0, 34, 60000)
    assert _forward(engine, broken) == []
    assert engine.drop_counts()["ipv4.bad_offload"] == 1


def test_an_ngn_hook_gets_finished_segments() -> None:
    engine = Engine(EngineConfig(arp=ArpConfig(seed=3)))
    engine.add_ethernet("eth0", R0, offload=True)
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.set_arp("eth0", "10.0.0.2", H0)
    name = engine.create_ng()
    engine.add_alias(name, "10.9.0.1/32", dest="10.1.0.2")
    handle = engine.hook_connect(name, "inet")
    _forward(engine, tcp_super())
    packets = [p for h, p in engine.drain_hook_output() if h == handle]
    assert len(packets) == 4
    assert all(type(p) is not OffloadFrame for p in packets)
    for raw in packets:
        ip = IP(bytes(raw))
        rebuilt = ip.copy()
        del rebuilt.chksum
        del rebuilt[TCP].chksum
        assert bytes(IP(bytes(rebuilt))) == bytes(raw)
    assert b"".join(bytes(IP(bytes(p))[TCP].payload) for p in packets) == PAYLOAD

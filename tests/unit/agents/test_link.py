"""The ring walkers of agents/link.py over synthetic rings in memory (no sockets, no root).

The layouts written here follow include/uapi/linux/if_packet.h and
linux/virtio_net.h independently of the module's own constants, so an offset
mistake in either shows up.
"""

from __future__ import annotations

import mmap
import struct
from typing import Any

from agents.link import (
    PACKET_OUTGOING,
    TP_STATUS_AVAILABLE,
    TP_STATUS_SEND_REQUEST,
    TP_STATUS_WRONG_FORMAT,
    NicInfo,
    PacketLink,
    RingConfig,
    RxRing,
    TxRing,
)
from router.offload import OffloadFrame, SplicedFrame

SLOT = 2048
MAC_OFFSET = 76  # tpacket_rcv: TPACKET_ALIGN(52 + 16) + 10 (vnet header) - 14
USER, CSUMNOTREADY, VLAN_VALID, GSO_TCP = 1, 8, 16, 256


def _slot(ring: mmap.mmap, index: int, data: bytes, status: int = USER, pkttype: int = 0,
          vnet: tuple[int, ...] = (0, 0, 0, 0, 0, 0), vlan_tci: int = 0, mac: int = MAC_OFFSET,
          length: int | None = None) -> None:
    """A slot as the kernel fills it; ``length``: the frame's length when ``data`` was cut."""
    base = index * SLOT
    # tp_status, tp_len, tp_snaplen, tp_mac, tp_net, tp_sec, tp_nsec, tp_vlan_tci, tp_vlan_tpid
    struct.pack_into("=IIIHHIIHH", ring, base, status, length or len(data), len(data), mac,
                     mac + 14, 1, 2, vlan_tci, 0)
    ring[base + 32 + 10] = pkttype  # sockaddr_ll.sll_pkttype
    struct.pack_into("=BBHHHH", ring, base + mac - 10, *vnet)
    ring[base + mac : base + mac + len(data)] = data


def _rx_link(slots: int, check_outgoing: bool = False, control_slots: int = 4) -> Any:
    # anonymous mappings: slices of them are bytes, as of the kernel's rings
    ring = RxRing(mm=mmap.mmap(-1, slots * SLOT), frame_size=SLOT, frame_count=slots)
    control = RxRing(mm=mmap.mmap(-1, control_slots * SLOT), frame_size=SLOT,
                      frame_count=control_slots)
    local = RxRing(mm=mmap.mmap(-1, control_slots * SLOT), frame_size=SLOT,
                   frame_count=control_slots)
    nic = NicInfo("eth9", 9, b"\x02" * 6, 1500)
    return PacketLink(nic, RingConfig(frame_count=slots), None,  # type: ignore[arg-type]
                      ring, None, None, check_outgoing, None, control,  # type: ignore[arg-type]
                      None, local)  # type: ignore[arg-type]


def _status(link: Any, index: int) -> int:
    (status,) = struct.unpack_from("=I", link._rx_ring.mm, index * SLOT)
    return int(status)


def test_recv_batch_copies_every_user_slot_in_order_and_releases_it() -> None:
    link = _rx_link(4)
    frames = [bytes([n]) * (60 + n) for n in range(3)]
    for index, frame in enumerate(frames):
        _slot(link._rx_ring.mm, index, frame)
    assert link.recv_batch() == frames
    assert [_status(link, i) for i in range(3)] == [0, 0, 0]  # TP_STATUS_KERNEL
    assert link._rx_ring.slot == 3
    assert link.pending() is False


def test_control_ring_frames_come_first_and_share_the_batch_limit() -> None:
    """ARP waiting on the control ring is taken before the main ring's frames, so a flood
    that keeps the main ring full cannot hold it back; the batch limit counts both."""
    link = _rx_link(8)
    for index in range(4):
        _slot(link._rx_ring.mm, index, bytes([index]) * 64)
    _slot(link._ctl_ring.mm, 0, b"arp1" * 15)
    _slot(link._ctl_ring.mm, 1, b"arp2" * 15)
    assert link.pending() is True
    assert link.recv_batch(3) == [b"arp1" * 15, b"arp2" * 15, b"\x00" * 64]
    assert link._ctl_ring.slot == 2 and link._rx_ring.slot == 1
    assert link.recv_batch(10) == [bytes([n]) * 64 for n in range(1, 4)]
    _slot(link._ctl_ring.mm, 2, b"arp3" * 15)
    assert link.pending() is True  # the control ring alone makes the link readable
    assert link.recv_batch(10) == [b"arp3" * 15]
    assert link.pending() is False


def test_local_ring_frames_come_after_arp_and_before_the_main_ring() -> None:
    """Frames to our own addresses wait on the local ring: read after ARP, before the
    flood on the main ring, inside the same batch limit, and counted."""
    link = _rx_link(8)
    for index in range(3):
        _slot(link._rx_ring.mm, index, bytes([index]) * 64)
    _slot(link._local_ring.mm, 0, b"ping" * 16)
    assert link.pending() is True
    assert link.recv_batch(2) == [b"ping" * 16, b"\x00" * 64]
    _slot(link._ctl_ring.mm, 0, b"arp1" * 15)
    _slot(link._local_ring.mm, 1, b"pong" * 16)
    assert link.recv_batch(10) == [b"arp1" * 15, b"pong" * 16, b"\x01" * 64, b"\x02" * 64]
    assert link.stats.rx_local == 2 and link.stats.rx_frames == 6
    assert link.pending() is False


def test_recv_batch_stops_at_a_kernel_owned_slot_and_respects_max() -> None:
    link = _rx_link(8)
    for index in range(5):
        _slot(link._rx_ring.mm, index, bytes([index]) * 64)
    assert link.recv_batch(2) == [b"\x00" * 64, b"\x01" * 64]
    assert link.pending() is True
    assert link.recv_batch(10) == [bytes([n]) * 64 for n in range(2, 5)]
    assert link.recv_batch(10) == []


def test_a_batch_mixing_plain_and_special_slots_keeps_ring_order_across_the_wrap() -> None:
    """Plain slots are taken a run at a time, the others one by one: one call returns them
    all, in ring order, each slot given back, whatever each slot's MAC offset."""
    link = _rx_link(8)
    link._rx_ring.slot = 3  # the batch starts near the ring's end and wraps
    plain = [bytes([n]) * 60 for n in range(6)]
    _slot(link._rx_ring.mm, 3, plain[0])
    _slot(link._rx_ring.mm, 4, plain[1], mac=90)
    _slot(link._rx_ring.mm, 5, b"\xab" * 1514, USER | CSUMNOTREADY, vnet=(1, 0, 0, 0, 34, 6))
    _slot(link._rx_ring.mm, 6, plain[2], USER | 1 << 7)  # TP_STATUS_CSUM_VALID: still plain
    _slot(link._rx_ring.mm, 7, b"\xcd" * 100, length=5000)  # cut, no copy: dropped
    _slot(link._rx_ring.mm, 0, plain[3])
    _slot(link._rx_ring.mm, 1, plain[4], mac=80)
    _slot(link._rx_ring.mm, 2, plain[5])
    got = link.recv_batch(64)
    assert [bytes(f) for f in got] == [plain[0], plain[1], b"\xab" * 1514, *plain[2:]]
    assert isinstance(got[2], OffloadFrame) and got[2].needs_csum
    assert link.stats.rx_truncated == 1 and link.stats.rx_frames == 7
    assert all(_status(link, index) == 0 for index in range(8))
    assert link._rx_ring.slot == 3 and link.recv_batch(64) == []


def test_a_run_stops_at_the_batch_limit_and_the_rest_waits() -> None:
    link = _rx_link(8)
    for index in range(8):
        _slot(link._rx_ring.mm, index, bytes([index]) * 60)
    assert link.recv_batch(5) == [bytes([n]) * 60 for n in range(5)]
    assert [_status(link, index) for index in range(8)] == [0] * 5 + [USER] * 3
    assert link.recv_batch(5) == [bytes([n]) * 60 for n in range(5, 8)]


def test_slot_index_wraps_to_the_first_slot() -> None:
    link = _rx_link(2)
    _slot(link._rx_ring.mm, 0, b"x" * 60)
    _slot(link._rx_ring.mm, 1, b"y" * 60)
    assert link.recv_batch() == [b"x" * 60, b"y" * 60]
    assert link._rx_ring.slot == 0


def test_outgoing_frames_are_skipped_when_the_kernel_cannot_ignore_them() -> None:
    link = _rx_link(4, check_outgoing=True)
    _slot(link._rx_ring.mm, 0, b"in" * 30)
    _slot(link._rx_ring.mm, 1, b"out" * 20, pkttype=PACKET_OUTGOING)
    _slot(link._rx_ring.mm, 2, b"in2" * 20)
    assert link.recv_batch() == [b"in" * 30, b"in2" * 20]
    assert link.stats.rx_outgoing_skipped == 1


def test_a_frame_left_to_offload_carries_the_kernels_description() -> None:
    link = _rx_link(4)
    frame = b"\xab" * 1514
    # flags NEEDS_CSUM, gso_type TCPV4, hdr_len 66, gso_size 1448, csum_start 34, offset 16
    _slot(link._rx_ring.mm, 0, frame, USER | CSUMNOTREADY | GSO_TCP, vnet=(1, 1, 66, 1448, 34, 16))
    _slot(link._rx_ring.mm, 1, frame, USER | CSUMNOTREADY, vnet=(1, 0, 0, 0, 34, 6))
    _slot(link._rx_ring.mm, 2, frame, USER, vnet=(2, 0, 0, 0, 0, 0))  # DATA_VALID: finished
    got = link.recv_batch()
    assert got == [frame] * 3
    assert [type(f) for f in got] == [OffloadFrame, OffloadFrame, bytes]
    first, second = got[0], got[1]
    assert isinstance(first, OffloadFrame) and isinstance(second, OffloadFrame)
    assert (first.flags, first.gso_type, first.hdr_len, first.gso_size, first.csum_start,
            first.csum_offset) == (1, 1, 66, 1448, 34, 16)
    assert (second.gso_type, second.csum_start, second.csum_offset) == (0, 34, 6)
    assert link.stats.rx_offload == 2


def test_a_vlan_tag_the_nic_took_off_is_put_back_and_offsets_move_with_it() -> None:
    link = _rx_link(2)
    frame = b"\x01" * 6 + b"\x02" * 6 + b"\x08\x00" + b"\x45" * 50
    _slot(link._rx_ring.mm, 0, frame, USER | VLAN_VALID | CSUMNOTREADY, vnet=(1, 0, 0, 0, 34, 6),
          vlan_tci=0x0123)
    (got,) = link.recv_batch()
    assert got == frame[:12] + b"\x81\x00\x01\x23" + frame[12:]
    assert isinstance(got, OffloadFrame) and got.csum_start == 38


def test_a_frame_cut_short_without_a_copy_is_dropped_never_handed_on() -> None:
    link = _rx_link(2)
    _slot(link._rx_ring.mm, 0, b"z" * 100)
    struct.pack_into("=I", link._rx_ring.mm, 4, 5000)  # tp_len 5000 > tp_snaplen 100
    _slot(link._rx_ring.mm, 1, b"ok" * 40)
    assert link.recv_batch() == [b"ok" * 40]
    assert link.stats.rx_truncated == 1
    assert _status(link, 0) == 0


def _tx_ring(slots: int, statuses: list[int], next_slot: int = 0) -> TxRing:
    mm = bytearray(slots * 2048)
    for slot, status in enumerate(statuses):
        struct.pack_into("=I", mm, slot * 2048, status)
    return TxRing(sock=None, mm=mm, frame_size=2048, frame_count=slots,  # type: ignore[arg-type]
                   next_slot=next_slot)


def test_failed_flush_resumes_at_the_slot_the_kernel_stopped_at() -> None:
    # The kernel sent slots 2 and 3, then refused slot 0 (wrapped); slot 1 was never tried.
    ring = _tx_ring(4, [TP_STATUS_WRONG_FORMAT, TP_STATUS_SEND_REQUEST,
                        TP_STATUS_AVAILABLE, TP_STATUS_AVAILABLE], next_slot=2)
    link = _rx_link(1)
    sent = link._recover(ring, first=2, queued=4)
    assert sent == 2
    assert ring.next_slot == 0
    statuses = [struct.unpack_from("=I", ring.mm, s * 2048)[0] for s in range(4)]
    assert statuses == [TP_STATUS_AVAILABLE] * 4


def test_flush_that_failed_after_sending_everything_moves_past_the_batch() -> None:
    ring = _tx_ring(4, [TP_STATUS_AVAILABLE] * 4, next_slot=1)
    link = _rx_link(1)
    assert link._recover(ring, first=1, queued=2) == 2
    assert ring.next_slot == 3


class _Sock:
    def __init__(self) -> None:
        self.flushes = 0
        self.sent: list[bytes] = []
        self.iovecs: list[int] = []  # buffers per sendmsg

    def send(self, data: bytes) -> int:
        if data:
            self.sent.append(bytes(data))
        else:
            self.flushes += 1
        return len(data)

    def sendmsg(self, buffers: tuple[bytes, ...]) -> int:
        self.iovecs.append(len(buffers))
        return self.send(b"".join(buffers))


def test_send_request_layout_is_status_length_then_vnet_header_and_data_at_32() -> None:
    sock = _Sock()
    ring = _tx_ring(4, [TP_STATUS_AVAILABLE] * 4)
    ring.sock = sock  # type: ignore[assignment]
    link = _rx_link(1)
    offloaded = OffloadFrame.make(b"\xbb" * 100, 1, 0, 0, 0, 34, 6)
    frames = [b"\xaa" * 60, offloaded, b"\xcc" * 70, b"\xdd" * 80, b"\xee" * 90]
    assert link._send_ring(ring, frames) == 5
    assert sock.flushes == 2  # the ring holds 4: flushed when full, then the rest
    status, length, snaplen = struct.unpack_from("=III", ring.mm, 1 * 2048)
    assert (status, length, snaplen) == (TP_STATUS_SEND_REQUEST, 110, 110)
    assert struct.unpack_from("=BBHHHH", ring.mm, 2048 + 32) == (1, 0, 0, 0, 34, 6)
    assert bytes(ring.mm[2048 + 42 : 2048 + 142]) == b"\xbb" * 100
    assert bytes(ring.mm[32:42]) == bytes(10)  # the fifth frame wrapped to slot 0: no work
    assert bytes(ring.mm[42:132]) == b"\xee" * 90
    assert ring.next_slot == 1


def _sending_link() -> tuple[Any, TxRing, _Sock, _Sock]:
    """A link with a 4-slot transmit ring on one recording socket, its plain socket on
    another: (link, ring, the ring's socket, the plain socket)."""
    sock, plain = _Sock(), _Sock()
    ring = _tx_ring(4, [TP_STATUS_AVAILABLE] * 4)
    ring.sock = sock  # type: ignore[assignment]
    link = _rx_link(1)
    link._tx = plain
    return link, ring, sock, plain


def test_a_frame_larger_than_a_slot_leaves_by_the_plain_socket_in_its_place() -> None:
    link, ring, sock, plain = _sending_link()
    big = OffloadFrame.make(b"\x77" * 30000, 1, 1, 66, 1448, 34, 16)
    assert link._send_ring(ring, [b"\x01" * 60, big, b"\x02" * 60]) == 3
    assert sock.flushes == 2  # the slot before the big frame left before it
    assert plain.sent == [struct.pack("=BBHHHH", 1, 1, 66, 1448, 34, 16) + bytes(big)]


def _spliced(payload: bytes) -> SplicedFrame:
    received = OffloadFrame.make(b"\x11" * 26 + payload, 1, 1, 66, 1448, 34, 16)
    return SplicedFrame(b"\x22" * 26, received, 26, len(received))


def test_a_spliced_super_frame_leaves_as_its_pieces_with_the_received_description() -> None:
    link, ring, _sock, plain = _sending_link()
    big = _spliced(b"\x77" * 30000)
    assert link._send_ring(ring, [b"\x01" * 60, big]) == 2
    assert plain.iovecs == [3]  # vnet header, new head, a view of the received rest
    assert plain.sent == [struct.pack("=BBHHHH", 1, 1, 66, 1448, 34, 16)
                          + b"\x22" * 26 + b"\x77" * 30000]


def test_a_spliced_frame_that_fits_a_slot_is_written_into_it_joined() -> None:
    link, ring, _sock, plain = _sending_link()
    small = _spliced(b"\x33" * 1000)
    assert link._send_ring(ring, [small]) == 1
    status, length, _snaplen = struct.unpack_from("=III", ring.mm, 0)
    assert (status, length) == (TP_STATUS_SEND_REQUEST, 10 + 26 + 1000)
    assert struct.unpack_from("=BBHHHH", ring.mm, 32) == (1, 1, 66, 1448, 34, 16)
    assert bytes(ring.mm[42 : 42 + 1026]) == b"\x22" * 26 + b"\x33" * 1000
    assert plain.sent == []  # it went by the ring, not the plain socket

"""The ring walkers of agents/link.py over synthetic rings in memory (no sockets, no root).

The layouts written here follow include/uapi/linux/if_packet.h independently
of the module's own constants, so an offset mistake in either shows up.
"""

from __future__ import annotations

import struct
from typing import Any

from agents.link import (
    PACKET_OUTGOING,
    TP_STATUS_AVAILABLE,
    TP_STATUS_SEND_REQUEST,
    TP_STATUS_WRONG_FORMAT,
    LinkStats,
    NicInfo,
    PacketLink,
    RingConfig,
    _RxCursor,
    _TxRing,
)

BLOCK = 4096
FIRST_PKT = 48  # after tpacket_block_desc (8) + tpacket_hdr_v1 (40), rounded to 16
TP3_HDR = 48  # sizeof(struct tpacket3_hdr)
MAC_OFFSET = 80  # TPACKET_ALIGN(48 + sizeof(sockaddr_ll) 20) = 80 (+ kernel padding)


def _block(frames: list[tuple[bytes, int]], status: int = 1) -> bytearray:
    """One user-owned V3 block holding ``frames`` as (data, sll_pkttype)."""
    block = bytearray(BLOCK)
    struct.pack_into("=III", block, 8, status, len(frames), FIRST_PKT)
    offset = FIRST_PKT
    for index, (data, pkttype) in enumerate(frames):
        size = MAC_OFFSET + len(data)
        next_offset = 0 if index == len(frames) - 1 else (size + 15) & ~15
        # tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status, tp_mac, tp_net
        struct.pack_into("=IIIIIIHH", block, offset, next_offset, 1, 2, len(data), len(data),
                         1, MAC_OFFSET, MAC_OFFSET + 14)
        block[offset + TP3_HDR + 10] = pkttype  # sockaddr_ll.sll_pkttype
        block[offset + MAC_OFFSET : offset + MAC_OFFSET + len(data)] = data
        offset += next_offset
    return block


def _rx_link(blocks: list[bytearray], check_outgoing: bool = False) -> Any:
    ring = bytearray().join(blocks)
    config = RingConfig(block_size=BLOCK, block_count=len(blocks))
    nic = NicInfo("eth9", 9, b"\x02" * 6, 1500)
    return PacketLink(nic, config, None, ring, None, None, check_outgoing,  # type: ignore[arg-type]
                      _RxCursor(), False, LinkStats())


def _status(ring: bytearray, block: int) -> int:
    (status,) = struct.unpack_from("=I", ring, block * BLOCK + 8)
    return int(status)


def test_recv_batch_copies_every_frame_of_a_user_block_and_releases_it() -> None:
    frames = [bytes([n]) * (60 + n) for n in range(3)]
    link = _rx_link([_block([(f, 0) for f in frames]), _block([], status=0)])
    assert link.recv_batch() == frames
    assert _status(link._rx_ring, 0) == 0  # TP_STATUS_KERNEL: back to the kernel
    assert link._cursor.block == 1


def test_recv_batch_stops_at_a_kernel_owned_block() -> None:
    link = _rx_link([_block([(b"a" * 60, 0)], status=0), _block([(b"b" * 60, 0)])])
    assert link.recv_batch() == []
    assert link.pending() is False


def test_recv_batch_resumes_inside_a_block_after_max_frames() -> None:
    frames = [bytes([n]) * 64 for n in range(5)]
    link = _rx_link([_block([(f, 0) for f in frames]), _block([], status=0)])
    assert link.recv_batch(2) == frames[:2]
    assert _status(link._rx_ring, 0) == 1  # still ours: three frames left
    assert link.pending() is True
    assert link.recv_batch(10) == frames[2:]
    assert _status(link._rx_ring, 0) == 0


def test_cursor_wraps_to_the_first_block() -> None:
    link = _rx_link([_block([(b"x" * 60, 0)]), _block([(b"y" * 60, 0)])])
    assert link.recv_batch() == [b"x" * 60, b"y" * 60]
    assert link._cursor.block == 0


def test_outgoing_frames_are_skipped_when_the_kernel_cannot_ignore_them() -> None:
    block = _block([(b"in" * 30, 0), (b"out" * 20, PACKET_OUTGOING), (b"in2" * 20, 0)])
    link = _rx_link([block, _block([], status=0)], check_outgoing=True)
    assert link.recv_batch() == [b"in" * 30, b"in2" * 20]
    assert link.stats.rx_outgoing_skipped == 1


def _tx_ring(slots: int, statuses: list[int], next_slot: int = 0) -> _TxRing:
    mm = bytearray(slots * 2048)
    for slot, status in enumerate(statuses):
        struct.pack_into("=I", mm, slot * 2048, status)
    return _TxRing(sock=None, mm=mm, frame_size=2048, frame_count=slots,  # type: ignore[arg-type]
                   next_slot=next_slot)


def test_failed_flush_resumes_at_the_slot_the_kernel_stopped_at() -> None:
    # The kernel sent slots 2 and 3, then refused slot 0 (wrapped); slot 1 was never tried.
    ring = _tx_ring(4, [TP_STATUS_WRONG_FORMAT, TP_STATUS_SEND_REQUEST,
                        TP_STATUS_AVAILABLE, TP_STATUS_AVAILABLE], next_slot=2)
    link = _rx_link([_block([], status=0)])
    sent = link._recover(ring, first=2, queued=4)
    assert sent == 2
    assert ring.next_slot == 0
    statuses = [struct.unpack_from("=I", ring.mm, s * 2048)[0] for s in range(4)]
    assert statuses == [TP_STATUS_AVAILABLE] * 4


def test_flush_that_failed_after_sending_everything_moves_past_the_batch() -> None:
    ring = _tx_ring(4, [TP_STATUS_AVAILABLE] * 4, next_slot=1)
    link = _rx_link([_block([], status=0)])
    assert link._recover(ring, first=1, queued=2) == 2
    assert ring.next_slot == 3


def test_send_request_layout_is_status_then_length_then_data_at_32() -> None:
    class Sock:
        def __init__(self) -> None:
            self.flushes = 0

        def send(self, data: bytes) -> int:
            self.flushes += 1
            return 0

    sock = Sock()
    ring = _tx_ring(4, [TP_STATUS_AVAILABLE] * 4)
    ring.sock = sock  # type: ignore[assignment]
    link = _rx_link([_block([], status=0)])
    frames = [b"\xaa" * 60, b"\xbb" * 100, b"\xcc" * 70, b"\xdd" * 80, b"\xee" * 90]
    assert link._send_ring(ring, frames) == 5
    assert sock.flushes == 2  # the ring holds 4: flushed when full, then the rest
    status, length, snaplen = struct.unpack_from("=III", ring.mm, 1 * 2048)
    assert (status, length, snaplen) == (TP_STATUS_SEND_REQUEST, 100, 100)
    assert bytes(ring.mm[2048 + 32 : 2048 + 132]) == b"\xbb" * 100
    assert bytes(ring.mm[32:122]) == b"\xee" * 90  # the fifth frame wrapped to slot 0
    assert ring.next_slot == 1

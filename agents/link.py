"""One host NIC as seen by the agent: AF_PACKET sockets with mmap'ed rings.

Receive: a ``TPACKET_V3`` ring. The kernel fills fixed-size blocks with
variable-length frames and hands a whole block over at once (when it is full,
or when the retire timeout expires); ``recv_batch`` walks the user-owned
blocks and gives each back to the kernel once every frame in it was copied.

Transmit: a second socket bound with protocol 0 (it never receives) with a
``TPACKET_V2`` ``PACKET_TX_RING``: ``send_batch`` writes each frame into a free
slot, marks it ``SEND_REQUEST`` and flushes the whole batch with one
``send()``. A socket has one ring version, hence two sockets.

Outgoing copies of our own frames would come back on the receive ring (an
``ETH_P_ALL`` tap sees both directions): ``PACKET_IGNORE_OUTGOING`` (Linux
4.20) stops them in the kernel; on older kernels the ring's
``sll_pkttype == PACKET_OUTGOING`` is checked per frame instead.

Layouts (``include/uapi/linux/if_packet.h``, ``Documentation/networking/
packet_mmap.rst``) are written below as ``struct`` formats with their offsets.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import mmap
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# --- socket options and constants (linux/if_packet.h, linux/if_ether.h) ---
SOL_PACKET = 263
ETH_P_ALL = 0x0003
PACKET_ADD_MEMBERSHIP = 1
PACKET_DROP_MEMBERSHIP = 2
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
TPACKET_V2 = 1
TPACKET_V3 = 2

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_SENDING = 2
TP_STATUS_WRONG_FORMAT = 4

TPACKET_ALIGNMENT = 16
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
ETH_HLEN = 14
PAGE_SIZE = mmap.PAGESIZE

# struct tpacket_req3 { block_size, block_nr, frame_size, frame_nr,
#                       retire_blk_tov, sizeof_priv, feature_req_word }
TPACKET_REQ3 = struct.Struct("=7I")
# struct tpacket_req { block_size, block_nr, frame_size, frame_nr }
TPACKET_REQ = struct.Struct("=4I")
# struct packet_mreq { int ifindex; u16 type; u16 alen; u8 address[8] }
PACKET_MREQ = struct.Struct("=iHH8s")
# struct tpacket_stats_v3 { packets, drops, freeze_q_cnt }
TPACKET_STATS_V3 = struct.Struct("=3I")

# struct tpacket_block_desc: version u32 @0, offset_to_priv u32 @4, then
# tpacket_hdr_v1: block_status u32 @8, num_pkts u32 @12, offset_to_first_pkt u32 @16.
BLOCK_HDR = struct.Struct("=3I")
BLOCK_HDR_OFFSET = 8
# struct tpacket3_hdr: tp_next_offset u32 @0, tp_sec @4, tp_nsec @8,
# tp_snaplen u32 @12, tp_len @16, tp_status @20, tp_mac u16 @24, tp_net @26; 48 bytes.
PKT_HDR = struct.Struct("=I8xI8xH")  # tp_next_offset @0, tp_snaplen @12, tp_mac @24
TPACKET3_HDR_LEN = 48
# sockaddr_ll follows the aligned header: sll_pkttype is its byte 10.
SLL_PKTTYPE_AT = TPACKET3_HDR_LEN + 10
# struct tpacket2_hdr: tp_status u32 @0, tp_len u32 @4, tp_snaplen u32 @8, ... 32 bytes.
TPACKET2_HDR_LEN = 32
TX_STATUS = struct.Struct("=I")
TX_HEADER = struct.Struct("=III")  # tp_status, tp_len, tp_snaplen
# Where the kernel expects TX data without PACKET_TX_HAS_OFF:
# TPACKET2_HDRLEN - sizeof(struct sockaddr_ll) = align(32) + 20 - 20.
TX_DATA_OFFSET = TPACKET2_HDR_LEN


class TxMode(enum.Enum):
    """How ``send_batch`` puts frames on the wire (docs/agent.md has the figures).

    Measured on veth (64-byte frames, 2 cores): one ``send()`` per frame runs
    at about 305k frames/s for lone frames against 190-200k through the ring,
    and the ring wins from batches of about 64 up (530k against 515k). AUTO
    takes the plain socket below ``RingConfig.ring_threshold`` frames and the
    ring at or above it.
    """

    AUTO = "auto"
    RING = "ring"  # PACKET_TX_RING, one send() per batch
    SEND = "send"  # one send() per frame on a plain socket


@dataclass(frozen=True, slots=True)
class RingConfig:
    """Ring geometry. The defaults keep 8 MiB of receive buffer per NIC.

    ``retire_ms`` bounds the latency a frame can sit in a half-filled block;
    it is the floor of the agent's added round-trip time at low rates.
    """

    block_size: int = 1 << 18
    block_count: int = 32
    frame_size: int = 2048
    retire_ms: int = 1
    tx_frame_count: int = 512
    tx_mode: TxMode = TxMode.AUTO
    ring_threshold: int = 32


@dataclass(slots=True)
class LinkStats:
    """What the link itself counted (the engine counts the rest)."""

    rx_frames: int = 0
    rx_outgoing_skipped: int = 0
    tx_frames: int = 0
    tx_errors: int = 0
    tx_oversize: int = 0
    kernel_drops: int = 0


@dataclass(frozen=True, slots=True)
class NicInfo:
    ifname: str
    ifindex: int
    mac: bytes
    mtu: int


def read_nic(ifname: str) -> NicInfo:
    """MAC and MTU of a host NIC through the SIOCGIFHWADDR/SIOCGIFMTU ioctls."""
    ifindex = socket.if_nametoindex(ifname)
    request = struct.pack("16s16x", ifname.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        hw = fcntl.ioctl(probe.fileno(), SIOCGIFHWADDR, request)
        mtu_reply = fcntl.ioctl(probe.fileno(), SIOCGIFMTU, request)
    # struct ifreq: name[16], then sockaddr { u16 family; u8 data[14] } / int mtu.
    mac = hw[18:24]
    (mtu,) = struct.unpack_from("=i", mtu_reply, 16)
    return NicInfo(ifname=ifname, ifindex=ifindex, mac=bytes(mac), mtu=mtu)


@dataclass(slots=True)
class _RxCursor:
    """Where ``recv_batch`` stopped inside the current user-owned block."""

    block: int = 0
    remaining: int = 0  # frames of the current block not yet copied
    offset: int = 0  # absolute offset of the next frame header in the ring


@dataclass(slots=True)
class _TxRing:
    sock: socket.socket
    mm: mmap.mmap
    frame_size: int
    frame_count: int
    next_slot: int = 0


@dataclass(slots=True)
class PacketLink:
    """An AF_PACKET link on one host NIC: ``recv_batch``, ``send_batch``, ``close``.

    Not thread safe: the data-plane loop is its only user. ``fileno()`` is the
    receive socket, readable when at least one block is user-owned.
    """

    nic: NicInfo
    config: RingConfig
    _rx: socket.socket
    _rx_ring: mmap.mmap
    _tx: socket.socket
    _tx_ring: _TxRing | None
    _check_outgoing: bool
    _cursor: _RxCursor = field(default_factory=_RxCursor)
    _promiscuous: bool = False
    stats: LinkStats = field(default_factory=LinkStats)
    closed: bool = False

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, ifname: str, config: RingConfig | None = None) -> PacketLink:
        """Open the receive ring and the transmit path on ``ifname`` (needs CAP_NET_RAW)."""
        config = config or RingConfig()
        nic = read_nic(ifname)
        rx, rx_ring, check_outgoing = _open_rx(nic, config)
        try:
            tx = _open_plain_tx(nic)
        except BaseException:
            _close_mapped(rx, rx_ring)
            raise
        try:
            tx_ring = _open_tx_ring(nic, config) if config.tx_mode is not TxMode.SEND else None
        except BaseException:
            _close_mapped(rx, rx_ring)
            tx.close()
            raise
        return cls(nic, config, rx, rx_ring, tx, tx_ring, check_outgoing)

    @property
    def ifname(self) -> str:
        return self.nic.ifname

    @property
    def ifindex(self) -> int:
        return self.nic.ifindex

    @property
    def mac(self) -> bytes:
        return self.nic.mac

    @property
    def mtu(self) -> int:
        return self.nic.mtu

    @property
    def promiscuous(self) -> bool:
        return self._promiscuous

    @property
    def tx_mode(self) -> TxMode:
        return self.config.tx_mode

    def fileno(self) -> int:
        return self._rx.fileno()

    # ------------------------------------------------------------ receive
    def recv_batch(self, max_frames: int = 256) -> list[bytes]:
        """Copy up to ``max_frames`` frames out of user-owned blocks; never blocks.

        A block goes back to the kernel (``block_status = TP_STATUS_KERNEL``)
        as soon as its last frame was copied; a batch that stops mid-block
        resumes there next time.
        """
        frames: list[bytes] = []
        cur = self._cursor
        while len(frames) < max_frames:
            if cur.remaining == 0 and not self._open_block():
                break
            take = min(cur.remaining, max_frames - len(frames))
            cur.offset = self._copy_frames(cur.offset, take, frames)
            cur.remaining -= take
            if cur.remaining == 0:
                self._release_block()
        self.stats.rx_frames += len(frames)
        return frames

    def _open_block(self) -> bool:
        """Point the cursor at the next block if the kernel handed it over."""
        cur = self._cursor
        while True:
            base = cur.block * self.config.block_size
            status, num_pkts, first = BLOCK_HDR.unpack_from(self._rx_ring, base + BLOCK_HDR_OFFSET)
            if not status & TP_STATUS_USER:
                return False
            if num_pkts:
                cur.remaining = num_pkts
                cur.offset = base + first
                return True
            self._release_block()

    def _copy_frames(self, offset: int, count: int, frames: list[bytes]) -> int:
        """The per-frame loop: one header unpack and one slice per frame (the hot path)."""
        ring = self._rx_ring
        header = PKT_HDR.unpack_from
        append = frames.append
        if self._check_outgoing:
            for _ in range(count):
                next_offset, snaplen, mac = header(ring, offset)
                if ring[offset + SLL_PKTTYPE_AT] == PACKET_OUTGOING:
                    self.stats.rx_outgoing_skipped += 1
                else:
                    append(ring[offset + mac : offset + mac + snaplen])
                offset += next_offset
            return offset
        for _ in range(count):
            next_offset, snaplen, mac = header(ring, offset)
            append(ring[offset + mac : offset + mac + snaplen])
            offset += next_offset
        return offset

    def _release_block(self) -> None:
        cur = self._cursor
        base = cur.block * self.config.block_size
        struct.pack_into("=I", self._rx_ring, base + BLOCK_HDR_OFFSET, TP_STATUS_KERNEL)
        cur.block = (cur.block + 1) % self.config.block_count
        cur.remaining = 0

    def pending(self) -> bool:
        """True if ``recv_batch`` would return something now."""
        if self._cursor.remaining:
            return True
        base = self._cursor.block * self.config.block_size
        (status,) = struct.unpack_from("=I", self._rx_ring, base + BLOCK_HDR_OFFSET)
        return bool(status & TP_STATUS_USER)

    # ------------------------------------------------------------ transmit
    def send_batch(self, frames: Sequence[bytes]) -> int:
        """Transmit ``frames``; returns how many the kernel took. Never raises."""
        if not frames:
            return 0
        ring = self._tx_ring
        if ring is None or (
            self.config.tx_mode is TxMode.AUTO and len(frames) < self.config.ring_threshold
        ):
            return self._send_each(frames)
        return self._send_ring(ring, frames)

    def _send_each(self, frames: Sequence[bytes]) -> int:
        sent = 0
        send = self._tx.send
        for frame in frames:
            try:
                send(frame)
                sent += 1
            except OSError:
                self.stats.tx_errors += 1
        self.stats.tx_frames += sent
        return sent

    def _send_ring(self, ring: _TxRing, frames: Sequence[bytes]) -> int:
        """Fill consecutive slots from where the kernel's ring head stands, then flush.

        The kernel walks the ring from its own head and stops at the first
        slot that is not SEND_REQUEST, so slots are used strictly in order. A
        blocking ``send()`` returns only when every requested frame has left
        (``tpacket_snd`` waits for the pending count to drop to zero), so
        after a successful flush the whole ring is free and no per-slot status
        read is needed; a failed one is repaired by ``_recover``.
        """
        room = ring.frame_size - TX_DATA_OFFSET
        mm, frame_size, count = ring.mm, ring.frame_size, ring.frame_count
        slot = ring.next_slot
        queued = sent = 0
        pack_header = TX_HEADER.pack_into
        for frame in frames:
            size = len(frame)
            if size > room:
                self.stats.tx_oversize += 1
                continue
            base = slot * frame_size
            data = base + TX_DATA_OFFSET
            mm[data : data + size] = frame
            pack_header(mm, base, TP_STATUS_SEND_REQUEST, size, size)
            slot = slot + 1 if slot + 1 < count else 0
            queued += 1
            if queued == count:
                sent += self._flush(ring, queued)
                slot = ring.next_slot
                queued = 0
        return sent + self._flush(ring, queued)

    def _flush(self, ring: _TxRing, queued: int) -> int:
        """One ``send()`` makes the kernel transmit the ``queued`` requested slots."""
        if queued == 0:
            return 0
        first = ring.next_slot
        try:
            ring.sock.send(b"")
        except OSError:
            sent = self._recover(ring, first, queued)
        else:
            sent = queued
            ring.next_slot = (first + queued) % ring.frame_count
        self.stats.tx_frames += sent
        self.stats.tx_errors += queued - sent
        return sent

    def _recover(self, ring: _TxRing, first: int, queued: int) -> int:
        """After a failed flush: find where the kernel stopped and take back the rest.

        The kernel's head stays on the first slot it did not send (still
        SEND_REQUEST, or WRONG_FORMAT when it rejected it), so our next slot
        must be that one; the unsent requests are withdrawn (dropped).
        """
        sent = queued
        for step in range(queued):
            slot = (first + step) % ring.frame_count
            base = slot * ring.frame_size
            (status,) = TX_STATUS.unpack_from(ring.mm, base)
            if status in (TP_STATUS_SEND_REQUEST, TP_STATUS_WRONG_FORMAT):
                if sent == queued:
                    sent = step
                    ring.next_slot = slot
                TX_STATUS.pack_into(ring.mm, base, TP_STATUS_AVAILABLE)
        if sent == queued:
            ring.next_slot = (first + queued) % ring.frame_count
        return sent

    # ------------------------------------------------------------ promiscuous
    def set_promiscuous(self, on: bool) -> None:
        """Join/leave the NIC's promiscuous membership (dropped by the kernel on close).

        Needed only when the engine must see frames for MACs other than the
        NIC's own; membership is reference-counted by the kernel, so this
        never turns off promiscuous mode another program asked for.
        """
        if on == self._promiscuous or self.closed:
            return
        option = PACKET_ADD_MEMBERSHIP if on else PACKET_DROP_MEMBERSHIP
        mreq = PACKET_MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b"")
        self._rx.setsockopt(SOL_PACKET, option, mreq)
        self._promiscuous = on

    # ------------------------------------------------------------ statistics
    def kernel_stats(self) -> tuple[int, int]:
        """(frames, drops) the kernel counted since the last call (it resets them)."""
        raw = self._rx.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS_V3.size)
        packets, drops, _freeze = TPACKET_STATS_V3.unpack(raw)
        self.stats.kernel_drops += drops
        return packets, drops

    # ------------------------------------------------------------ closing
    def close(self) -> None:
        """Unmap the rings and close both sockets (idempotent).

        Closing the receive socket also drops its promiscuous membership.
        """
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.set_promiscuous(False)
        self._promiscuous = False
        _close_mapped(self._rx, self._rx_ring)
        if self._tx_ring is not None:
            _close_mapped(self._tx_ring.sock, self._tx_ring.mm)
        self._tx.close()

    def __enter__(self) -> PacketLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_mapped(sock: socket.socket, ring: mmap.mmap) -> None:
    with contextlib.suppress(BufferError, ValueError):
        ring.close()
    sock.close()


def _open_rx(nic: NicInfo, config: RingConfig) -> tuple[socket.socket, mmap.mmap, bool]:
    """Receive socket: ring and options set before bind, so no frame slips past them."""
    _check_rx_geometry(config)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        check_outgoing = not _try_ignore_outgoing(sock)
        frame_nr = config.block_size * config.block_count // config.frame_size
        req = TPACKET_REQ3.pack(
            config.block_size, config.block_count, config.frame_size, frame_nr,
            config.retire_ms, 0, 0,
        )  # fmt: skip
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        size = config.block_size * config.block_count
        ring = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        sock.bind((nic.ifname, ETH_P_ALL))
    except BaseException:
        sock.close()
        raise
    return sock, ring, check_outgoing


def _try_ignore_outgoing(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError as exc:
        if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL):
            raise
        return False
    return True


def _check_rx_geometry(config: RingConfig) -> None:
    if config.block_size % PAGE_SIZE or config.frame_size % TPACKET_ALIGNMENT:
        raise ValueError("block size must be a page multiple, frame size 16-aligned")
    if config.block_size < config.frame_size or config.block_count < 1:
        raise ValueError("a block must hold at least one frame")


def _tx_frame_size(mtu: int) -> int:
    """Smallest power-of-two slot holding the header and a full-MTU frame (+VLAN tag).

    A power of two always divides the (power-of-two) block size, so slots
    never straddle blocks and slot ``i`` lives at ``i * frame_size``.
    """
    needed = TX_DATA_OFFSET + mtu + ETH_HLEN + 4
    return max(2048, 1 << (needed - 1).bit_length())


def _open_plain_tx(nic: NicInfo) -> socket.socket:
    """Per-frame transmit socket, bound with protocol 0 so it never receives."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((nic.ifname, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _open_tx_ring(nic: NicInfo, config: RingConfig) -> _TxRing:
    """A TPACKET_V2 transmit ring on its own socket (also bound with protocol 0)."""
    frame_size = _tx_frame_size(nic.mtu)
    block_size = max(PAGE_SIZE, frame_size)
    frames_per_block = block_size // frame_size
    block_count = max(1, -(-config.tx_frame_count // frames_per_block))
    frame_count = block_count * frames_per_block
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        req = TPACKET_REQ.pack(block_size, block_count, frame_size, frame_count)
        sock.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
        size = block_size * block_count
        mm = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        sock.bind((nic.ifname, 0))
    except BaseException:
        sock.close()
        raise
    return _TxRing(sock=sock, mm=mm, frame_size=frame_size, frame_count=frame_count)


def nic_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()

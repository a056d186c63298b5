"""One host NIC as seen by the agent: AF_PACKET sockets with mmap'ed rings.

Receive: a ``TPACKET_V2`` ring of fixed-size slots, each with its own status
word: the kernel hands a frame over the moment it is written (``tp_status``
gets ``TP_STATUS_USER``) and wakes ``poll`` per frame, so a lone frame is seen
within microseconds; ``recv_batch`` copies frames out of consecutive user-owned
slots and gives each slot back (``TP_STATUS_KERNEL``). ``PACKET_VNET_HDR``
puts the kernel's word on each frame's offload state (a ``virtio_net_hdr``
before the frame: partial checksum, GSO type and size) in the slot; frames
larger than a slot (GSO super-frames of up to 64 KiB) are marked
``TP_STATUS_COPY`` and their full copy, header included, waits on the
socket's receive queue in ring order (``PACKET_COPY_THRESH``), read with one
``recv_into``. ARP has a small ring of its own (classic BPF filters split the
two), read first, so a flood that keeps the main ring full cannot starve it.
docs/agent.md has the measurements behind these choices.

Transmit: every frame goes out with a ``virtio_net_hdr`` in front of it (all
zero for a finished frame, the received one for a frame with offload work
left, ``router.offload``), so the egress kernel checksums and segments what
the ingress kernel left undone. Two sockets bound with protocol 0 (they never
receive): a ``TPACKET_V2`` ``PACKET_TX_RING`` for batches (``send_batch``
writes each frame into a free slot, marks it ``SEND_REQUEST`` and flushes the
batch with one ``send()``) and a plain socket for lone frames and for frames
larger than a slot. A socket has one ring version, hence separate sockets.

Outgoing copies of our own frames would come back on the receive ring (an
``ETH_P_ALL`` tap sees both directions): ``PACKET_IGNORE_OUTGOING`` (Linux
4.20) stops them in the kernel; on older kernels the ring's
``sll_pkttype == PACKET_OUTGOING`` is checked per frame instead.

Layouts (``include/uapi/linux/if_packet.h``, ``Documentation/networking/
packet_mmap.rst``) are written below as ``struct`` formats with their offsets.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import fcntl
import mmap
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from router.offload import VNET_HDR_LEN, VNET_NONE, OffloadFrame, vnet_header

# --- socket options and constants (linux/if_packet.h, linux/if_ether.h) ---
SOL_PACKET = 263
ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
SO_ATTACH_FILTER = 26
PACKET_ADD_MEMBERSHIP = 1
PACKET_DROP_MEMBERSHIP = 2
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_COPY_THRESH = 7
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_VNET_HDR = 15
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
TPACKET_V2 = 1
SO_RCVBUFFORCE = 33

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_COPY = 1 << 1  # the frame did not fit its slot: a full copy is on the socket queue
TP_STATUS_CSUMNOTREADY = 1 << 3  # CHECKSUM_PARTIAL: the L4 checksum is left to offload
TP_STATUS_VLAN_VALID = 1 << 4  # the NIC took the 802.1Q tag off: it is in tp_vlan_tci
TP_STATUS_VLAN_TPID_VALID = 1 << 6
TP_STATUS_CSUM_VALID = 1 << 7
TP_STATUS_GSO_TCP = 1 << 8
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_SENDING = 2
TP_STATUS_WRONG_FORMAT = 4
#: Status bits that send a received frame off the plain copy-out path.
RX_SPECIAL = TP_STATUS_COPY | TP_STATUS_CSUMNOTREADY | TP_STATUS_VLAN_VALID | TP_STATUS_GSO_TCP

TPACKET_ALIGNMENT = 16
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
ETH_HLEN = 14
ETH_P_8021Q = 0x8100
PAGE_SIZE = mmap.PAGESIZE

# struct tpacket_req { block_size, block_nr, frame_size, frame_nr }
TPACKET_REQ = struct.Struct("=4I")
# struct packet_mreq { int ifindex; u16 type; u16 alen; u8 address[8] }
PACKET_MREQ = struct.Struct("=iHH8s")
# struct tpacket_stats { packets, drops }
TPACKET_STATS = struct.Struct("=2I")

# struct tpacket2_hdr: tp_status u32 @0, tp_len u32 @4, tp_snaplen u32 @8, tp_mac u16 @12,
# tp_net u16 @14, tp_sec @16, tp_nsec @20, tp_vlan_tci u16 @24, tp_vlan_tpid u16 @26; 32 bytes.
TPACKET2_HDR_LEN = 32
RX_HEADER = struct.Struct("=IIIH")  # tp_status, tp_len, tp_snaplen, tp_mac
RX_VLAN = struct.Struct("=HH")  # tp_vlan_tci, tp_vlan_tpid
RX_VLAN_AT = 24
# sockaddr_ll follows the aligned header: sll_pkttype is its byte 10.
SLL_PKTTYPE_AT = TPACKET2_HDR_LEN + 10
# The most the kernel puts before the MAC header in a slot: TPACKET_ALIGN(52 + 16)
# + the vnet header, rounded up (tpacket_rcv's macoff for a 14-byte link header is 76).
RX_SLOT_OVERHEAD = 96
TX_STATUS = struct.Struct("=I")
TX_HEADER = struct.Struct("=III")  # tp_status, tp_len, tp_snaplen
# Where the kernel expects TX data without PACKET_TX_HAS_OFF:
# TPACKET2_HDRLEN - sizeof(struct sockaddr_ll) = align(32) + 20 - 20.
TX_DATA_OFFSET = TPACKET2_HDR_LEN
TX_FRAME_AT = TX_DATA_OFFSET + VNET_HDR_LEN  # the frame itself, after the vnet header
#: Slots of the control ring (ARP only): a burst of answers, never a flood's worth.
CONTROL_SLOTS = 64


def _classic_bpf(*program: tuple[int, int, int, int]) -> bytes:
    """``struct sock_fprog`` contents for SO_ATTACH_FILTER: (code, jt, jf, k) each."""
    return b"".join(struct.pack("=HBBI", *insn) for insn in program)


# Classic BPF (linux/filter.h): load the "VLAN tag present" ancillary word, then the
# ethertype; return 0 to drop, anything else is the snap length (all of it).
_BPF_LD_W_ABS, _BPF_LD_H_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x28, 0x15, 0x06
_SKF_AD_VLAN_TAG_PRESENT = -0x1000 + 48
_ALL = 0xFFFFFFFF
#: On the main ring: every frame except untagged ARP (which the control ring takes).
NOT_ARP = _classic_bpf(
    (_BPF_LD_W_ABS, 0, 0, _SKF_AD_VLAN_TAG_PRESENT & _ALL),
    (_BPF_JEQ_K, 0, 3, 0),  # a tag the NIC took off: the main ring puts it back
    (_BPF_LD_H_ABS, 0, 0, 12),
    (_BPF_JEQ_K, 0, 1, ETH_P_ARP),
    (_BPF_RET_K, 0, 0, 0),
    (_BPF_RET_K, 0, 0, _ALL),
)
#: On the control ring: untagged ARP only. It is bound to ETH_P_ALL like the main ring,
#: not to ETH_P_ARP: only ETH_P_ALL taps are served before the ingress hook, where the
#: isolation's drop (agents/isolation.py) would take a protocol tap's frames away.
ONLY_ARP = _classic_bpf(
    (_BPF_LD_W_ABS, 0, 0, _SKF_AD_VLAN_TAG_PRESENT & _ALL),
    (_BPF_JEQ_K, 0, 3, 0),
    (_BPF_LD_H_ABS, 0, 0, 12),
    (_BPF_JEQ_K, 0, 1, ETH_P_ARP),
    (_BPF_RET_K, 0, 0, _ALL),
    (_BPF_RET_K, 0, 0, 0),
)

#: The largest frame a receive copy can hold: a 64 KiB GSO super-frame and more.
COPY_BUFFER = 1 << 18
_RECV_COPY_FLAGS = int(socket.MSG_DONTWAIT | socket.MSG_TRUNC)  # an int: no IntFlag per call


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
    """Ring geometry. The defaults keep 8 MiB of receive slots per NIC.

    ``frame_size`` is the receive slot (grown to fit the MTU); frames larger
    than a slot arrive through the socket queue, which may hold up to
    ``copy_buffer`` bytes of them.
    """

    frame_size: int = 2048
    frame_count: int = 4096
    copy_buffer: int = 32 << 20
    tx_frame_count: int = 512
    tx_mode: TxMode = TxMode.AUTO
    ring_threshold: int = 32
    qdisc_bypass: bool = False


@dataclass(slots=True)
class LinkStats:
    """What the link itself counted (the engine counts the rest)."""

    rx_frames: int = 0
    rx_outgoing_skipped: int = 0
    rx_offload: int = 0  # frames handed on with a partial checksum or GSO
    rx_copies: int = 0  # frames larger than a slot, read from the socket queue
    rx_truncated: int = 0  # larger than a slot and no room for a copy: dropped
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
class _RxRing:
    mm: mmap.mmap
    frame_size: int
    frame_count: int
    slot: int = 0  # the next slot to look at
    #: the ring as 32-bit words: a slot is given back with one item store (no slice object)
    words: memoryview = field(init=False)

    def __post_init__(self) -> None:
        self.words = memoryview(self.mm).cast("I")

    def close(self) -> None:
        self.words.release()  # the mapping cannot close while a view of it is exported
        with contextlib.suppress(BufferError, ValueError):
            self.mm.close()


@dataclass(slots=True)
class _TxRing:
    sock: socket.socket
    mm: mmap.mmap
    frame_size: int
    frame_count: int
    next_slot: int = 0
    #: frame size -> what goes before such a finished frame in a slot (``_tx_slot_head``)
    heads: dict[int, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class PacketLink:
    """An AF_PACKET link on one host NIC: ``recv_batch``, ``send_batch``, ``close``.

    Not thread safe: the data-plane loop is its only user. ``fileno()`` is the
    receive socket, readable when a slot (or a copy) is ready.
    """

    nic: NicInfo
    config: RingConfig
    _rx: socket.socket
    _rx_ring: _RxRing
    _tx: socket.socket
    _tx_ring: _TxRing | None
    _check_outgoing: bool
    #: ARP on a ring of its own, read before the main ring: a flood that fills the main
    #: ring cannot starve ARP answers (the kernel drops at a full ring, whatever the frame)
    _ctl: socket.socket
    _ctl_ring: _RxRing
    _copy: bytearray = field(default_factory=lambda: bytearray(COPY_BUFFER))
    _promiscuous: bool = False
    stats: LinkStats = field(default_factory=LinkStats)
    closed: bool = False

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, ifname: str, config: RingConfig | None = None) -> PacketLink:
        """Open the receive ring and the transmit path on ``ifname`` (needs CAP_NET_RAW)."""
        config = config or RingConfig()
        nic = read_nic(ifname)
        opened: list[Callable[[], None]] = []
        try:
            ctl, ctl_ring, _ = _open_rx(nic, config, CONTROL_SLOTS, ONLY_ARP)
            opened += (ctl_ring.close, ctl.close)
            rx, rx_ring, check_outgoing = _open_rx(nic, config, config.frame_count, NOT_ARP)
            opened += (rx_ring.close, rx.close)
            tx = _open_plain_tx(nic, config)
            opened.append(tx.close)
            tx_ring = _open_tx_ring(nic, config) if config.tx_mode is not TxMode.SEND else None
        except BaseException:
            for close in reversed(opened):
                close()
            raise
        return cls(nic, config, rx, rx_ring, tx, tx_ring, check_outgoing, ctl, ctl_ring)

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

    def control_fileno(self) -> int:
        """The control (ARP) ring's socket: readable when an ARP frame waits."""
        return self._ctl.fileno()

    # ------------------------------------------------------------ receive
    def recv_batch(self, max_frames: int = 256) -> list[bytes]:
        """Copy up to ``max_frames`` frames out of consecutive user-owned slots; never blocks.

        The control ring's ARP frames come first (one status byte read when it is
        empty), then the main ring's. The per-frame loop is the hot path: one header
        unpack, one slice and one status store per frame; an empty ring costs one byte
        read. A frame with offload work left comes back as an ``OffloadFrame``; one
        larger than its slot is read from the socket queue (:meth:`_special`).
        """
        ctl = self._ctl_ring
        if ctl.mm[ctl.slot * ctl.frame_size] & TP_STATUS_USER:
            frames = self._walk(ctl, self._ctl, max_frames)
            if len(frames) < max_frames:
                frames += self._walk(self._rx_ring, self._rx, max_frames - len(frames))
            return frames
        return self._walk(self._rx_ring, self._rx, max_frames)

    def _walk(self, ring: _RxRing, sock: socket.socket, max_frames: int) -> list[bytes]:
        """The frames of ``ring``'s consecutive user-owned slots (``sock``: its socket)."""
        mm = ring.mm
        slot = ring.slot
        frame_size = ring.frame_size
        base = slot * frame_size
        if not mm[base] & TP_STATUS_USER:  # the status word's low byte
            return []
        count = ring.frame_count
        words = ring.words
        header = RX_HEADER.unpack_from
        check_outgoing = self._check_outgoing
        frames: list[bytes] = []
        append = frames.append
        for _ in range(max_frames):
            status, length, snaplen, mac = header(mm, base)
            if not status & TP_STATUS_USER:
                break
            if check_outgoing and mm[base + SLL_PKTTYPE_AT] == PACKET_OUTGOING:
                self.stats.rx_outgoing_skipped += 1
                if status & TP_STATUS_COPY:
                    self._read_copy(sock, length)  # its copy waits on the queue: take it off
            elif status & RX_SPECIAL or snaplen != length:
                frame = self._special(ring, sock, base, status, length, snaplen, mac)
                if frame is not None:
                    append(frame)
            else:
                append(mm[base + mac : base + mac + snaplen])
            words[base >> 2] = TP_STATUS_KERNEL  # the slot is the kernel's again
            slot += 1
            if slot == count:
                slot = base = 0
            else:
                base += frame_size
        ring.slot = slot
        self.stats.rx_frames += len(frames)
        return frames

    def _special(self, ring: _RxRing, sock: socket.socket, base: int, status: int,
                 length: int, snaplen: int, mac: int) -> bytes | None:
        """A frame with offload work, a VLAN tag taken off, or too large for its slot."""
        mm = ring.mm
        if status & TP_STATUS_COPY:
            frame = self._read_copy(sock, length)
        elif snaplen < length:
            self.stats.rx_truncated += 1  # no room for a copy: never hand on a cut frame
            return None
        else:
            data = mm[base + mac : base + mac + snaplen]
            frame = OffloadFrame.from_vnet(data, mm, base + mac - VNET_HDR_LEN)
        if frame is not None and status & TP_STATUS_VLAN_VALID:
            frame = _with_vlan_tag(frame, status, *RX_VLAN.unpack_from(mm, base + RX_VLAN_AT))
        if type(frame) is OffloadFrame:
            self.stats.rx_offload += 1
        return frame

    def _read_copy(self, sock: socket.socket, length: int) -> bytes | None:
        """The full copy of a frame larger than its slot, vnet header first."""
        buf = self._copy
        try:
            got = sock.recv_into(buf, len(buf), _RECV_COPY_FLAGS)
        except OSError:
            self.stats.rx_truncated += 1
            return None
        if got > len(buf) or got - VNET_HDR_LEN != length:
            self.stats.rx_truncated += 1
            return None
        self.stats.rx_copies += 1
        return OffloadFrame.from_vnet(memoryview(buf)[VNET_HDR_LEN:got], buf, 0)  # one copy

    def pending(self) -> bool:
        """True if ``recv_batch`` would return something now."""
        ring, ctl = self._rx_ring, self._ctl_ring
        return bool(ring.mm[ring.slot * ring.frame_size] & TP_STATUS_USER
                    or ctl.mm[ctl.slot * ctl.frame_size] & TP_STATUS_USER)

    # ------------------------------------------------------------ transmit
    def send_batch(self, frames: Sequence[bytes]) -> int:
        """Transmit ``frames`` in order; returns how many the kernel took. Never raises."""
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
        send, sendmsg = self._tx.send, self._tx.sendmsg
        for frame in frames:
            try:
                if type(frame) is OffloadFrame:
                    sendmsg((frame.vnet_header(), frame))
                else:
                    send(VNET_NONE + frame)
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
        read is needed; a failed one is repaired by ``_recover``. A frame too
        large for a slot leaves through the plain socket, after the slots
        queued before it, so the order holds.
        """
        room = ring.frame_size - TX_DATA_OFFSET - VNET_HDR_LEN
        mm, frame_size, count = ring.mm, ring.frame_size, ring.frame_count
        slot = ring.next_slot
        base = slot * frame_size
        queued = sent = 0
        heads = ring.heads
        for frame in frames:
            size = len(frame)
            if size > room:
                sent += self._flush(ring, queued)
                slot = ring.next_slot
                base = slot * frame_size
                queued = 0
                sent += self._send_each((frame,))
                continue
            head = heads.get(size) if type(frame) is not OffloadFrame else None
            if head is None:
                head = _tx_slot_head(size, vnet_header(frame))
                if type(frame) is not OffloadFrame:
                    heads[size] = head
            # slot header, vnet header and frame in one store: the kernel reads the slot
            # only inside our send(), never while it is written
            mm[base : base + TX_FRAME_AT + size] = head + frame
            queued += 1
            slot += 1
            if slot == count:
                slot = base = 0
            else:
                base += frame_size
            if queued == count:
                sent += self._flush(ring, queued)
                slot = ring.next_slot
                base = slot * frame_size
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
        raw = self._rx.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS.size)
        packets, drops = TPACKET_STATS.unpack(raw)
        self.stats.kernel_drops += drops
        return packets, drops

    # ------------------------------------------------------------ closing
    def close(self) -> None:
        """Unmap the rings and close the sockets (idempotent).

        Closing the receive socket also drops its promiscuous membership.
        """
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.set_promiscuous(False)
        self._promiscuous = False
        self._rx_ring.close()
        self._rx.close()
        self._ctl_ring.close()
        self._ctl.close()
        if self._tx_ring is not None:
            _close_mapped(self._tx_ring.sock, self._tx_ring.mm)
        self._tx.close()

    def __enter__(self) -> PacketLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tx_slot_head(size: int, vnet: bytes) -> bytes:
    """The bytes before a ``size``-byte frame in a TX slot: the slot header (status
    SEND_REQUEST, ``tp_len`` and ``tp_snaplen`` counting the vnet header), zeros up to
    the data offset, the vnet header."""
    length = size + VNET_HDR_LEN
    header = TX_HEADER.pack(TP_STATUS_SEND_REQUEST, length, length)
    return header + bytes(TX_DATA_OFFSET - len(header)) + vnet


def _with_vlan_tag(frame: bytes, status: int, tci: int, tpid: int) -> bytes:
    """Put back the 802.1Q tag the NIC took off (rx-vlan-offload), 4 bytes after the MACs."""
    tag = struct.pack("!HH", tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q, tci)
    tagged = frame[:12] + tag + frame[12:]
    if type(frame) is OffloadFrame:
        return frame.derive(tagged, 4)
    return tagged


def _close_mapped(sock: socket.socket, ring: mmap.mmap) -> None:
    with contextlib.suppress(BufferError, ValueError):
        ring.close()
    sock.close()


def _open_rx(nic: NicInfo, config: RingConfig, slots: int,
             program: bytes) -> tuple[socket.socket, _RxRing, bool]:
    """Receive socket (every frame the classic BPF ``program`` accepts): filter, ring and
    options set before bind, so no frame slips past them."""
    frame_size = _rx_frame_size(nic.mtu, config.frame_size)
    block_size = max(PAGE_SIZE, frame_size)
    frames_per_block = block_size // frame_size
    block_count = max(1, -(-slots // frames_per_block))
    frame_count = block_count * frames_per_block
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)  # before the ring: EBUSY after
        sock.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, 1)
        _set_rcvbuf(sock, config.copy_buffer)
        check_outgoing = not _try_ignore_outgoing(sock)
        _attach_filter(sock, program)
        req = TPACKET_REQ.pack(block_size, block_count, frame_size, frame_count)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        size = block_size * block_count
        mm = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        sock.bind((nic.ifname, ETH_P_ALL))
    except BaseException:
        sock.close()
        raise
    return sock, _RxRing(mm=mm, frame_size=frame_size, frame_count=frame_count), check_outgoing


def _attach_filter(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_FILTER with a classic BPF ``program`` (the kernel copies it at once)."""
    code = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _set_rcvbuf(sock: socket.socket, size: int) -> None:
    """Room on the socket queue for copies of frames larger than a slot (root may force)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _try_ignore_outgoing(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError as exc:
        if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL):
            raise
        return False
    return True


def _rx_frame_size(mtu: int, configured: int) -> int:
    """A receive slot for a full-MTU frame (+VLAN tag) after the kernel's headers."""
    if configured % TPACKET_ALIGNMENT:
        raise ValueError("frame size must be 16-aligned")
    needed = RX_SLOT_OVERHEAD + mtu + ETH_HLEN + 4
    return max(configured, 1 << (needed - 1).bit_length())


def _tx_frame_size(mtu: int) -> int:
    """Smallest power-of-two slot holding the headers and a full-MTU frame (+VLAN tag).

    A power of two always divides the (power-of-two) block size, so slots
    never straddle blocks and slot ``i`` lives at ``i * frame_size``.
    """
    needed = TX_DATA_OFFSET + VNET_HDR_LEN + mtu + ETH_HLEN + 4
    return max(2048, 1 << (needed - 1).bit_length())


def _open_plain_tx(nic: NicInfo, config: RingConfig) -> socket.socket:
    """Per-frame transmit socket, bound with protocol 0 so it never receives."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        if config.qdisc_bypass:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
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
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        if config.qdisc_bypass:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
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

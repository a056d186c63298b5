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
``recv_into``. ARP has a small ring of its own, and so has IPv4 to the engine's
own addresses (the local ring: pings to the router itself); classic BPF filters
split the three, and the small rings are read first, so a flood that keeps the
main ring full cannot starve ARP nor delay traffic to the router.
:meth:`PacketLink.set_local_addresses` rewrites the local and main filters when the
addresses change.
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

The constants, slot layouts, filters and socket openers live in
:mod:`agents.packet_socket`; this module is the per-frame path over them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from agents.packet_socket import (
    CONTROL_SLOTS,
    COPY_BUFFER,
    ETH_P_8021Q,
    LOCAL_FILTER_MAX,
    LOCAL_SLOTS,
    NOT_ARP,
    ONLY_ARP,
    PACKET_ADD_MEMBERSHIP,
    PACKET_DROP_MEMBERSHIP,
    PACKET_MR_PROMISC,
    PACKET_MREQ,
    PACKET_OUTGOING,
    PACKET_STATISTICS,
    RECV_COPY_FLAGS,
    RX_HEADER,
    RX_MAC_AT,
    RX_PLAIN,
    RX_SPECIAL,
    RX_VLAN,
    RX_VLAN_AT,
    SLL_PKTTYPE_AT,
    SOL_PACKET,
    TP_STATUS_AVAILABLE,
    TP_STATUS_COPY,
    TP_STATUS_KERNEL,
    TP_STATUS_SEND_REQUEST,
    TP_STATUS_USER,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    TP_STATUS_WRONG_FORMAT,
    TPACKET_STATS,
    TX_DATA_OFFSET,
    TX_FRAME_AT,
    TX_HEADER,
    TX_STATUS,
    NicInfo,
    RingConfig,
    RxRing,
    TxMode,
    TxRing,
    attach_filter,
    close_mapped,
    local_filter,
    main_filter,
    open_plain_tx,
    open_rx,
    open_tx_ring,
    read_nic,
)
from router.offload import (
    VNET_HDR_LEN,
    VNET_NONE,
    OffloadFrame,
    Outgoing,
    SplicedFrame,
    vnet_header,
)


@dataclass(slots=True)
class LinkStats:
    """What the link itself counted (the engine counts the rest)."""

    rx_frames: int = 0
    rx_local: int = 0  # of them, from the local ring (IPv4 to the engine's own addresses)
    rx_outgoing_skipped: int = 0
    rx_offload: int = 0  # frames handed on with a partial checksum or GSO
    rx_copies: int = 0  # frames larger than a slot, read from the socket queue
    rx_truncated: int = 0  # larger than a slot and no room for a copy: dropped
    tx_frames: int = 0
    tx_errors: int = 0
    tx_oversize: int = 0
    kernel_drops: int = 0


@dataclass(slots=True)
class PacketLink:
    """An AF_PACKET link on one host NIC: ``recv_batch``, ``send_batch``, ``close``.

    Not thread safe: the data-plane loop is its only user. ``fileno()`` is the
    receive socket, readable when a slot (or a copy) is ready.
    """

    nic: NicInfo
    config: RingConfig
    _rx: socket.socket
    _rx_ring: RxRing
    _tx: socket.socket
    _tx_ring: TxRing | None
    _check_outgoing: bool
    #: ARP on a ring of its own, read before the main ring: a flood that fills the main
    #: ring cannot starve ARP answers (the kernel drops at a full ring, whatever the frame)
    _ctl: socket.socket
    _ctl_ring: RxRing
    #: IPv4 to the engine's own addresses on a ring of its own, read after ARP: a flood
    #: through the router cannot delay traffic to it (the addresses: ``set_local_addresses``)
    _local: socket.socket
    _local_ring: RxRing
    _local_addresses: tuple[bytes, ...] = ()
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
            ctl, ctl_ring, _ = open_rx(nic, config, CONTROL_SLOTS, ONLY_ARP)
            opened += (ctl_ring.close, ctl.close)
            local, local_ring, _ = open_rx(nic, config, LOCAL_SLOTS, local_filter(()))
            opened += (local_ring.close, local.close)
            rx, rx_ring, check_outgoing = open_rx(nic, config, config.frame_count, NOT_ARP)
            opened += (rx_ring.close, rx.close)
            tx = open_plain_tx(nic, config)
            opened.append(tx.close)
            tx_ring = open_tx_ring(nic, config) if config.tx_mode is not TxMode.SEND else None
        except BaseException:
            for close in reversed(opened):
                close()
            raise
        return cls(nic, config, rx, rx_ring, tx, tx_ring, check_outgoing, ctl, ctl_ring,
                   local, local_ring)

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

    def local_fileno(self) -> int:
        """The local ring's socket: readable when a frame to one of our addresses waits."""
        return self._local.fileno()

    @property
    def local_addresses(self) -> tuple[bytes, ...]:
        """The addresses whose frames the local ring takes (sorted, 4 bytes each)."""
        return self._local_addresses

    def set_local_addresses(self, addresses: Collection[bytes]) -> bool:
        """Give IPv4 frames to ``addresses`` (4 bytes each) the local ring.

        False, and no local ring at all, for more than ``LOCAL_FILTER_MAX`` addresses:
        the filters run on every received frame. The two filters cannot change at
        once, so the local ring first takes the old and the new addresses, then the
        main ring lets the new ones go and takes back the old, then the local ring
        keeps the new only: a frame to an address coming or going may meanwhile be read
        from both rings (answered twice), never from neither (lost).
        """
        fits = len(addresses) <= LOCAL_FILTER_MAX
        wanted = tuple(sorted(addresses)) if fits else ()
        old = self._local_addresses
        if wanted == old or self.closed:
            return fits
        both = tuple(sorted({*old, *wanted}))
        if both != old:
            attach_filter(self._local, local_filter(both))
        attach_filter(self._rx, main_filter(wanted))
        if both != wanted:
            attach_filter(self._local, local_filter(wanted))
        self._local_addresses = wanted
        return fits

    # ------------------------------------------------------------ receive
    def recv_batch(self, max_frames: int = 256) -> list[bytes]:
        """Copy up to ``max_frames`` frames out of consecutive user-owned slots; never blocks.

        The control ring's ARP frames come first, then the local ring's, then the main
        ring's (a status byte read each for the two small rings when they are empty).
        Plain slots are read a run at a time (:meth:`_take_plain_runs`), the others one
        by one (:meth:`_walk_each`); an empty ring costs one byte read. A frame with
        offload work left comes back as an ``OffloadFrame``; one larger than its slot is
        read from the socket queue (:meth:`_special`).
        """
        ctl, local = self._ctl_ring, self._local_ring
        if (ctl.mm[ctl.slot * ctl.frame_size] & TP_STATUS_USER
                or local.mm[local.slot * local.frame_size] & TP_STATUS_USER):
            return self._recv_priority_first(max_frames)
        return self._walk(self._rx_ring, self._rx, max_frames)

    def _recv_priority_first(self, max_frames: int) -> list[bytes]:
        """ARP, then frames to our own addresses, then the main ring, up to ``max_frames``."""
        frames = self._walk(self._ctl_ring, self._ctl, max_frames)
        local = self._walk(self._local_ring, self._local, max_frames - len(frames))
        self.stats.rx_local += len(local)
        frames += local
        if len(frames) < max_frames:
            frames += self._walk(self._rx_ring, self._rx, max_frames - len(frames))
        return frames

    def _walk(self, ring: RxRing, sock: socket.socket, max_frames: int) -> list[bytes]:
        """The frames of ``ring``'s consecutive user-owned slots (``sock``: its socket)."""
        mm = ring.mm
        slot = ring.slot
        frame_size = ring.frame_size
        base = slot * frame_size
        if not mm[base] & TP_STATUS_USER:  # the status word's low byte
            return []
        if self._check_outgoing:
            return self._walk_each(ring, sock, max_frames)
        frames = self._take_plain_runs(ring, max_frames)
        if len(frames) < max_frames and mm[ring.slot * frame_size] & TP_STATUS_USER:
            frames += self._walk_each(ring, sock, max_frames - len(frames))  # from a special
        return frames

    def _take_plain_runs(self, ring: RxRing, max_frames: int) -> list[bytes]:
        """The frames of the run of user-owned slots from ``ring.slot`` on, read a whole run
        at a time: every status, length and MAC offset with one strided slice each, the
        frames with one comprehension, the slots given back with one strided store (about
        0.3 µs a frame less than a slot at a time). It stops at the first slot that is not
        plain (``RX_PLAIN``: offload work, a copy, a VLAN tag, a cut frame), which the
        per-slot walk then takes; at most two runs, the ring's end between them."""
        frames: list[bytes] = []
        words, mm = ring.words, ring.mm
        frame_size = ring.frame_size
        stride = frame_size >> 2
        while len(frames) < max_frames:
            slot = ring.slot
            first = slot * stride
            room = min(max_frames - len(frames), ring.frame_count - slot)
            statuses = words[first : first + room * stride : stride].tolist()
            count = statuses.index(TP_STATUS_KERNEL) if TP_STATUS_KERNEL in statuses else room
            if not RX_PLAIN.issuperset(statuses[:count]):
                count = _plain_prefix(statuses, count)
            if count == 0:
                break
            end = first + count * stride
            lengths = words[first + 1 : end : stride].tolist()
            snaplens = words[first + 2 : end : stride].tolist()
            if lengths != snaplens:  # a frame cut to its slot: the per-slot walk decides
                count = _first_difference(lengths, snaplens)
                if count == 0:
                    break
                end = first + count * stride
            at = first * 2 + RX_MAC_AT // 2
            macs = ring.halves[at : at + count * stride * 2 : stride * 2].tolist()
            base = slot * frame_size
            frames += [mm[start + mac : start + mac + size] for start, mac, size
                       in zip(range(base, base + count * frame_size, frame_size), macs,
                              snaplens, strict=False)]  # snaplens may run past ``count``
            words[first:end:stride] = ring.zeros[:count]  # the slots are the kernel's again
            ring.slot = (slot + count) % ring.frame_count
            self.stats.rx_frames += count
            if ring.slot != 0 or count < room:
                break
        return frames

    def _walk_each(self, ring: RxRing, sock: socket.socket, max_frames: int) -> list[bytes]:
        """One slot at a time: frames with offload work, copies, VLAN tags, cut frames."""
        mm = ring.mm
        slot = ring.slot
        frame_size = ring.frame_size
        base = slot * frame_size
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

    def _special(self, ring: RxRing, sock: socket.socket, base: int, status: int,
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
            got = sock.recv_into(buf, len(buf), RECV_COPY_FLAGS)
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
        ring, ctl, local = self._rx_ring, self._ctl_ring, self._local_ring
        return bool(ring.mm[ring.slot * ring.frame_size] & TP_STATUS_USER
                    or ctl.mm[ctl.slot * ctl.frame_size] & TP_STATUS_USER
                    or local.mm[local.slot * local.frame_size] & TP_STATUS_USER)

    # ------------------------------------------------------------ transmit
    def send_batch(self, frames: Sequence[Outgoing]) -> int:
        """Transmit ``frames`` in order; returns how many the kernel took. Never raises."""
        if not frames:
            return 0
        ring = self._tx_ring
        if ring is None or (
            self.config.tx_mode is TxMode.AUTO and len(frames) < self.config.ring_threshold
        ):
            return self._send_each(frames)
        return self._send_ring(ring, frames)

    def _send_each(self, frames: Sequence[Outgoing]) -> int:
        sent = 0
        send, sendmsg = self._tx.send, self._tx.sendmsg
        for frame in frames:
            try:
                if type(frame) is SplicedFrame:  # its pieces as iovecs: the kernel joins them
                    sendmsg((frame.vnet_header(), frame.head, frame.rest))
                elif type(frame) is OffloadFrame:
                    sendmsg((frame.vnet_header(), frame))
                else:
                    send(VNET_NONE + frame)
                sent += 1
            except OSError:
                self.stats.tx_errors += 1
        self.stats.tx_frames += sent
        return sent

    def _send_ring(self, ring: TxRing, frames: Sequence[Outgoing]) -> int:
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
            if type(frame) is SplicedFrame:  # fits a slot: its one copy is the join
                frame = frame.joined()
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

    def _flush(self, ring: TxRing, queued: int) -> int:
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

    def _recover(self, ring: TxRing, first: int, queued: int) -> int:
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
        """(frames, drops) the kernel counted on the three rings since the last call (it
        resets them)."""
        packets = drops = 0
        for sock in (self._rx, self._ctl, self._local):
            raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS.size)
            ring_packets, ring_drops = TPACKET_STATS.unpack(raw)
            packets += ring_packets
            drops += ring_drops
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
        self._local_ring.close()
        self._local.close()
        if self._tx_ring is not None:
            close_mapped(self._tx_ring.sock, self._tx_ring.mm)
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


def _plain_prefix(statuses: list[int], count: int) -> int:
    """How many of the first ``count`` statuses are plain (``RX_PLAIN``) in a row."""
    for index in range(count):
        if statuses[index] not in RX_PLAIN:
            return index
    return count


def _first_difference(first: list[int], second: list[int]) -> int:
    """The first index where the two lists (of one length) differ."""
    for index, (one, other) in enumerate(zip(first, second, strict=True)):
        if one != other:
            return index
    return len(first)

"""The kernel's AF_PACKET interface as the agent uses it: constants, layouts, rings, sockets.

What :mod:`agents.link` (the per-frame hot path) stands on and sets up once
per NIC: the socket options and ``tp_status`` bits of
``include/uapi/linux/if_packet.h``, the slot layouts as ``struct`` formats
with their offsets (``Documentation/networking/packet_mmap.rst``), the
classic BPF programs that split ARP onto its control ring, the ring
geometry (:class:`RingConfig`), and opening the receive ring, the transmit
ring and the plain transmit socket with every option set before ``bind``
so no frame slips past them.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import enum
import errno
import fcntl
import mmap
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from router.offload import VNET_HDR_LEN

# --- socket options and constants (linux/if_packet.h, linux/if_ether.h) ---
SOL_PACKET = 263
ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
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
#: The statuses of a user-owned slot holding a plain frame (no special bit; any other bit
#: we know of). A status outside it takes the per-slot walk, which looks at each bit.
RX_PLAIN = frozenset(status for status in range(1 << 9)
                     if status & TP_STATUS_USER and not status & RX_SPECIAL)
RX_MAC_AT = 12  # tp_mac, a 16-bit word in the slot header

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
_BPF_LD_W_LEN, _BPF_JGE_K = 0x80, 0x35
_SKF_AD_VLAN_TAG_PRESENT = -0x1000 + 48
_ALL = 0xFFFFFFFF
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

#: Slots of the local ring (IPv4 to the engine's own addresses): pings and other traffic
#: to the router itself, read before the main ring so a flood through it cannot delay them.
LOCAL_SLOTS = 256
#: Own addresses the filters name (a compare each, run by the kernel on every received
#: IPv4 frame, in the sender's context); with more, the local ring takes nothing and
#: frames to the router share the main ring with the rest.
LOCAL_FILTER_MAX = 64
_IPV4_DST_AT = 30  # the IPv4 destination: 14 + 16, whatever options follow it


def _address_tests(addresses: Sequence[bytes], verdict: int,
                   otherwise: int) -> list[tuple[int, int, int, int]]:
    """A match of the IPv4 destination with any of ``addresses`` returns ``verdict`` at once
    (a compare and a return per address: only short forward jumps); a frame too short to
    hold a destination returns ``otherwise`` (a load past its end would return 0)."""
    if not addresses:
        return []
    program = [(_BPF_LD_W_LEN, 0, 0, 0), (_BPF_JGE_K, 1, 0, _IPV4_DST_AT + 4),
               (_BPF_RET_K, 0, 0, otherwise), (_BPF_LD_W_ABS, 0, 0, _IPV4_DST_AT)]
    for address in addresses:
        program += ((_BPF_JEQ_K, 0, 1, int.from_bytes(address, "big")),
                    (_BPF_RET_K, 0, 0, verdict))
    return program


def main_filter(local: Sequence[bytes] = ()) -> bytes:
    """The main ring: every frame except untagged ARP (the control ring's) and untagged
    IPv4 to one of ``local`` (the local ring's); tagged frames all come here (the main
    ring puts the tag the NIC took off back)."""
    return _classic_bpf(
        (_BPF_LD_W_ABS, 0, 0, _SKF_AD_VLAN_TAG_PRESENT & _ALL),
        (_BPF_JEQ_K, 1, 0, 0),
        (_BPF_RET_K, 0, 0, _ALL),  # tagged
        (_BPF_LD_H_ABS, 0, 0, 12),
        (_BPF_JEQ_K, 0, 1, ETH_P_ARP),
        (_BPF_RET_K, 0, 0, 0),  # ARP
        (_BPF_JEQ_K, 1, 0, ETH_P_IP),
        (_BPF_RET_K, 0, 0, _ALL),  # neither ARP nor IPv4
        *_address_tests(local, 0, _ALL),
        (_BPF_RET_K, 0, 0, _ALL),  # IPv4 to an address not ours
    )


def local_filter(local: Sequence[bytes]) -> bytes:
    """The local ring: untagged IPv4 to one of ``local`` (nothing when it is empty)."""
    return _classic_bpf(
        (_BPF_LD_W_ABS, 0, 0, _SKF_AD_VLAN_TAG_PRESENT & _ALL),
        (_BPF_JEQ_K, 1, 0, 0),
        (_BPF_RET_K, 0, 0, 0),  # tagged
        (_BPF_LD_H_ABS, 0, 0, 12),
        (_BPF_JEQ_K, 1, 0, ETH_P_IP),
        (_BPF_RET_K, 0, 0, 0),  # not IPv4
        *_address_tests(local, _ALL, 0),
        (_BPF_RET_K, 0, 0, 0),  # IPv4 to an address not ours
    )


#: The main ring's filter while no address is ours.
NOT_ARP = main_filter()

#: The largest frame a receive copy can hold: a 64 KiB GSO super-frame and more.
COPY_BUFFER = 1 << 18
RECV_COPY_FLAGS = int(socket.MSG_DONTWAIT | socket.MSG_TRUNC)  # an int: no IntFlag per call


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
class RxRing:
    mm: mmap.mmap
    frame_size: int
    frame_count: int
    slot: int = 0  # the next slot to look at
    #: the ring as 32-bit words: a slot is given back with one item store (no slice object)
    words: memoryview = field(init=False)
    #: the ring as 16-bit words (every slot's ``tp_mac`` read with one strided slice)
    halves: memoryview = field(init=False)
    #: a zero word per slot: a run of slots is given back with one strided store
    zeros: memoryview = field(init=False)

    def __post_init__(self) -> None:
        self.words = memoryview(self.mm).cast("I")
        self.halves = memoryview(self.mm).cast("H")
        self.zeros = memoryview(array.array("I", bytes(4 * self.frame_count)))

    def close(self) -> None:
        self.words.release()  # the mapping cannot close while a view of it is exported
        self.halves.release()
        with contextlib.suppress(BufferError, ValueError):
            self.mm.close()


@dataclass(slots=True)
class TxRing:
    sock: socket.socket
    mm: mmap.mmap
    frame_size: int
    frame_count: int
    next_slot: int = 0
    #: frame size -> what goes before such a finished frame in a slot (``_tx_slot_head``)
    heads: dict[int, bytes] = field(default_factory=dict)


def close_mapped(sock: socket.socket, ring: mmap.mmap) -> None:
    with contextlib.suppress(BufferError, ValueError):
        ring.close()
    sock.close()


def open_rx(nic: NicInfo, config: RingConfig, slots: int,
             program: bytes) -> tuple[socket.socket, RxRing, bool]:
    """Receive socket (every frame the classic BPF ``program`` accepts): filter, ring and
    options set before bind, so no frame slips past them."""
    frame_size = rx_frame_size(nic.mtu, config.frame_size)
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
        attach_filter(sock, program)
        req = TPACKET_REQ.pack(block_size, block_count, frame_size, frame_count)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        size = block_size * block_count
        mm = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        sock.bind((nic.ifname, ETH_P_ALL))
    except BaseException:
        sock.close()
        raise
    return sock, RxRing(mm=mm, frame_size=frame_size, frame_count=frame_count), check_outgoing


def attach_filter(sock: socket.socket, program: bytes) -> None:
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


def rx_frame_size(mtu: int, configured: int) -> int:
    """A receive slot for a full-MTU frame (+VLAN tag) after the kernel's headers."""
    if configured % TPACKET_ALIGNMENT:
        raise ValueError("frame size must be 16-aligned")
    needed = RX_SLOT_OVERHEAD + mtu + ETH_HLEN + 4
    return max(configured, 1 << (needed - 1).bit_length())


def tx_frame_size(mtu: int) -> int:
    """Smallest power-of-two slot holding the headers and a full-MTU frame (+VLAN tag).

    A power of two always divides the (power-of-two) block size, so slots
    never straddle blocks and slot ``i`` lives at ``i * frame_size``.
    """
    needed = TX_DATA_OFFSET + VNET_HDR_LEN + mtu + ETH_HLEN + 4
    return max(2048, 1 << (needed - 1).bit_length())


def open_plain_tx(nic: NicInfo, config: RingConfig) -> socket.socket:
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


def open_tx_ring(nic: NicInfo, config: RingConfig) -> TxRing:
    """A TPACKET_V2 transmit ring on its own socket (also bound with protocol 0)."""
    frame_size = tx_frame_size(nic.mtu)
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
    return TxRing(sock=sock, mm=mm, frame_size=frame_size, frame_count=frame_count)


def nic_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()

"""Frames with work left to offload, as the kernel describes them (``virtio_net_hdr``).

A veth peer (or any NIC with checksum offload and TSO/GSO) hands over frames
whose L4 checksum is not computed yet (``CHECKSUM_PARTIAL``: the checksum
field holds only the pseudo-header sum, the rest is to be added over
``frame[csum_start:]`` and stored at ``csum_start + csum_offset``) and, with
segmentation offload, super-frames of up to 64 KiB that stand for many
segments of ``gso_size`` payload bytes each. ``PACKET_VNET_HDR`` makes the
kernel say so per frame in a ``struct virtio_net_hdr`` (10 bytes, host byte
order on Linux: ``flags u8, gso_type u8, hdr_len u16, gso_size u16,
csum_start u16, csum_offset u16``) in front of the frame, and accept the same
header in front of a frame we send: then the egress kernel finishes the
checksum and cuts the segments (in software if the NIC cannot).

``OffloadFrame`` is such a frame: the bytes of the frame itself, with the
header's fields as attributes, offsets counted from the frame's first byte.
The engine forwards it whole (one pass of Python per 64 KiB super-frame)
to interfaces whose driver hands the work on (``Interface.offload``: the
agent's links), and does the work itself with :func:`finish` for any other
(an ``ngN`` hook, an Ethernet interface without the capability): the
checksum completed, a super-frame cut into segments that each carry their
own IPv4 header (length, identification, header checksum), TCP sequence
number and flags, or UDP length, and a full L4 checksum.

The IPv4 header of a super-frame is the template of every segment: the
router decrements its TTL and fixes its header checksum once, and whoever
segments (the egress kernel, or :func:`finish`) copies it into each one.
"""

from __future__ import annotations

import struct
from typing import Any

from router.wire.checksum import internet_checksum, ones_complement_sum

VNET_HDR = struct.Struct("=BBHHHH")
VNET_HDR_LEN = VNET_HDR.size  # 10
VNET_NONE = bytes(VNET_HDR_LEN)  # a frame with nothing left to do

F_NEEDS_CSUM = 1  # VIRTIO_NET_HDR_F_NEEDS_CSUM
F_DATA_VALID = 2  # VIRTIO_NET_HDR_F_DATA_VALID (receive only)
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3  # UFO: IP fragmentation of a UDP datagram (legacy)
GSO_TCPV6 = 4
GSO_UDP_L4 = 5  # UDP_SEGMENT: one UDP datagram per segment
GSO_ECN = 0x80


class OffloadFrame(bytes):
    """A frame that carries ``virtio_net_hdr`` work: a partial checksum and/or GSO.

    Reads like ``bytes`` everywhere; code that builds a new frame from it
    (a rewritten link header, a decremented TTL) carries the description on
    with :meth:`derive`.
    """

    flags: int
    gso_type: int
    hdr_len: int
    gso_size: int
    csum_start: int
    csum_offset: int

    @classmethod
    def make(cls, data: bytes | bytearray | memoryview, flags: int, gso_type: int,
             hdr_len: int, gso_size: int, csum_start: int, csum_offset: int) -> OffloadFrame:
        frame = cls(data)
        frame.flags = flags
        frame.gso_type = gso_type
        frame.hdr_len = hdr_len
        frame.gso_size = gso_size
        frame.csum_start = csum_start
        frame.csum_offset = csum_offset
        return frame

    @classmethod
    def from_vnet(cls, data: bytes | memoryview, header: Any, at: int = 0) -> bytes:
        """``data`` (copied once) with the header read at ``header[at:]`` (any buffer: the
        agent reads it straight out of its ring); plain ``bytes`` when it says nothing is
        left to do."""
        flags, gso_type, hdr_len, gso_size, start, offset = VNET_HDR.unpack_from(header, at)
        if not flags & F_NEEDS_CSUM and gso_type == GSO_NONE:
            return data if type(data) is bytes else bytes(data)
        return cls.make(data, flags & F_NEEDS_CSUM, gso_type, hdr_len, gso_size, start, offset)

    def derive(self, data: bytes, shift: int = 0) -> OffloadFrame:
        """The same work on ``data``, whose headers start ``shift`` bytes later
        (negative: earlier) than this frame's — e.g. a link header removed."""
        return OffloadFrame.make(data, self.flags, self.gso_type, max(0, self.hdr_len + shift),
                                 self.gso_size, self.csum_start + shift, self.csum_offset)

    def vnet_header(self) -> bytes:
        return VNET_HDR.pack(self.flags, self.gso_type, self.hdr_len, self.gso_size,
                             self.csum_start, self.csum_offset)

    @property
    def needs_csum(self) -> bool:
        return bool(self.flags & F_NEEDS_CSUM)

    @property
    def is_gso(self) -> bool:
        return self.gso_type != GSO_NONE

    def __repr__(self) -> str:
        return (f"OffloadFrame(len={len(self)}, flags={self.flags}, gso_type={self.gso_type}, "
                f"hdr_len={self.hdr_len}, gso_size={self.gso_size}, "
                f"csum={self.csum_start}+{self.csum_offset})")


#: Frames from this size up are queued spliced (:class:`SplicedFrame`) by the fast path;
#: below it a join costs less than the object and the extra iovec.
SPLICE_MIN = 2048


class SplicedFrame:
    """A forwarded frame kept as two pieces: its rewritten head and a view of the rest of
    the frame it was received as, with that frame's offload description.

    Joining the pieces into an ``OffloadFrame`` reads and writes a 64 KiB super-frame
    three times in Python (the join, then the ``bytes`` subclass, zero-filled and
    copied into); an interface whose driver sends scatter-gather (``Interface.offload``:
    the agent's links, ``sendmsg`` with one iovec per piece) takes the pieces as they
    are. So the fast path queues this instead of a joined frame for such interfaces,
    for frames of at least :data:`SPLICE_MIN` bytes. ``joined()`` gives the frame as
    the generic path would have queued it.
    """

    __slots__ = ("head", "rest", "source")

    def __init__(self, head: bytes, source: OffloadFrame, start: int, end: int) -> None:
        self.head = head  # the new link header and the first IPv4 bytes, TTL and checksum
        self.source = source  # the received frame: the rest is a view into it
        self.rest = memoryview(source)[start:end]

    def __len__(self) -> int:
        return len(self.head) + len(self.rest)

    def vnet_header(self) -> bytes:
        """The description to send in front (the pieces keep the received offsets)."""
        return self.source.vnet_header()

    def joined(self) -> OffloadFrame:
        """The frame in one piece, with its description (one join and one copy)."""
        return self.source.derive(b"".join((self.head, self.rest)))

    def __repr__(self) -> str:
        return f"SplicedFrame(head={len(self.head)}, rest={len(self.rest)}, {self.source!r})"


#: What a transmit queue holds: a frame, or (out of an interface with offload) one spliced.
Outgoing = bytes | SplicedFrame


def vnet_header(frame: Outgoing) -> bytes:
    """The header to send in front of ``frame``."""
    if type(frame) is OffloadFrame or type(frame) is SplicedFrame:
        return frame.vnet_header()
    return VNET_NONE


# --- doing the work in software -----------------------------------------------------------

_IP_TOTAL_ID = struct.Struct("!HH")  # IPv4 total length @2, identification @4
_TCP_SEQ = struct.Struct("!I")
_TCP_FIN_PSH = 0x09
_TCP_CWR = 0x80
_PROTO_TCP = 6
_PROTO_UDP = 17


class OffloadError(ValueError):
    """The frame's offload description does not match its headers (never forwarded)."""


def segments_fit(frame: bytes | bytearray | memoryview, l3: int, mtu: int) -> bool:
    """Is ``frame`` a GSO super-frame whose every segment fits ``mtu`` (IPv4 length)?"""
    return (type(frame) is OffloadFrame and frame.gso_type != GSO_NONE
            and segment_payload_limit(frame, l3) <= mtu)


def segment_payload_limit(frame: OffloadFrame, l3: int) -> int:
    """The IPv4 total length of the largest segment ``frame`` stands for."""
    ip_hl = (frame[l3] & 0x0F) * 4
    l4 = l3 + ip_hl
    if frame.gso_type & ~GSO_ECN == GSO_TCPV4:
        return ip_hl + (frame[l4 + 12] >> 4) * 4 + frame.gso_size
    return ip_hl + 8 + frame.gso_size


def finish(frame: OffloadFrame, l3: int) -> list[bytes]:
    """Plain frames doing what ``frame`` left to offload; its IPv4 header is at ``frame[l3:]``.

    A partial checksum is completed; a TCP or UDP super-frame becomes its
    segments. ``OffloadError`` for a description the headers contradict, or a
    kind this IPv4 router cannot cut (UFO, TCPv6).
    """
    kind = frame.gso_type & ~GSO_ECN
    if kind == GSO_NONE:
        return [_complete_checksum(frame)]
    if frame.gso_size <= 0 or len(frame) < l3 + 20 or frame[l3] >> 4 != 4:
        raise OffloadError(f"GSO frame without a usable IPv4 header ({frame!r})")
    if kind == GSO_TCPV4:
        return _segment_tcp(frame, l3)
    if kind == GSO_UDP_L4:
        return _segment_udp(frame, l3)
    raise OffloadError(f"GSO type {frame.gso_type} is not cut in software here")


def _complete_checksum(frame: OffloadFrame) -> bytes:
    """``skb_checksum_help``: fold everything from ``csum_start`` (the field already holds
    the pseudo-header sum) and store its complement; 0 is sent as 0xFFFF."""
    if not frame.flags & F_NEEDS_CSUM:
        return bytes(frame)
    start, at = frame.csum_start, frame.csum_start + frame.csum_offset
    if at + 2 > len(frame) or start < 0:
        raise OffloadError(f"checksum offsets beyond the frame ({frame!r})")
    value = internet_checksum(memoryview(frame)[start:]) or 0xFFFF
    return b"".join((frame[:at], value.to_bytes(2, "big"), frame[at + 2 :]))


def _pseudo_sum(ip_header: bytes, protocol: int, length: int) -> int:
    return ones_complement_sum(ip_header[12:20] + bytes((0, protocol)) + length.to_bytes(2, "big"))


def _ip_header(template: bytes, total: int, ident: int) -> bytes:
    """The template with its length and identification set and its checksum fixed."""
    head = bytearray(template)
    _IP_TOTAL_ID.pack_into(head, 2, total, ident & 0xFFFF)
    head[10:12] = b"\0\0"
    head[10:12] = internet_checksum(head).to_bytes(2, "big")
    return bytes(head)


def _segment_tcp(frame: OffloadFrame, l3: int) -> list[bytes]:
    """``tcp_gso_segment`` for IPv4: ``gso_size`` payload bytes per segment."""
    ip_hl = (frame[l3] & 0x0F) * 4
    l4 = l3 + ip_hl
    tcp_hl = (frame[l4 + 12] >> 4) * 4
    total = int.from_bytes(frame[l3 + 2 : l3 + 4], "big") or len(frame) - l3
    end = min(len(frame), l3 + total)
    if tcp_hl < 20 or l4 + tcp_hl > end:
        raise OffloadError(f"TCP super-frame with a broken header ({frame!r})")
    link, ip_template = frame[:l3], frame[l3:l4]
    tcp_template = bytearray(frame[l4 : l4 + tcp_hl])
    (seq,) = _TCP_SEQ.unpack_from(tcp_template, 4)
    ident = int.from_bytes(ip_template[4:6], "big")
    flags = tcp_template[13]
    payload = memoryview(frame)[l4 + tcp_hl : end]
    size = frame.gso_size
    count = max(1, -(-len(payload) // size))
    segments: list[bytes] = []
    for index in range(count):
        chunk = payload[index * size : (index + 1) * size]
        last = index == count - 1
        tcp = bytearray(tcp_template)
        _TCP_SEQ.pack_into(tcp, 4, (seq + index * size) & 0xFFFFFFFF)
        tcp[13] = flags & ~(0 if last else _TCP_FIN_PSH) & ~(0 if index == 0 else _TCP_CWR)
        tcp[16:18] = b"\0\0"
        length = tcp_hl + len(chunk)
        ip = _ip_header(ip_template, ip_hl + length, ident + index)
        check = internet_checksum(bytes(tcp) + chunk, _pseudo_sum(ip, _PROTO_TCP, length))
        tcp[16:18] = check.to_bytes(2, "big")
        segments.append(b"".join((link, ip, tcp, chunk)))
    return segments


def _segment_udp(frame: OffloadFrame, l3: int) -> list[bytes]:
    """``__udp_gso_segment``: one UDP datagram of ``gso_size`` bytes per segment."""
    ip_hl = (frame[l3] & 0x0F) * 4
    l4 = l3 + ip_hl
    total = int.from_bytes(frame[l3 + 2 : l3 + 4], "big") or len(frame) - l3
    end = min(len(frame), l3 + total)
    if l4 + 8 > end:
        raise OffloadError(f"UDP super-frame with a broken header ({frame!r})")
    link, ip_template, ports = frame[:l3], frame[l3:l4], frame[l4 : l4 + 4]
    ident = int.from_bytes(ip_template[4:6], "big")
    payload = memoryview(frame)[l4 + 8 : end]
    size = frame.gso_size
    segments: list[bytes] = []
    for index, start in enumerate(range(0, max(1, len(payload)), size)):
        chunk = payload[start : start + size]
        length = 8 + len(chunk)
        ip = _ip_header(ip_template, ip_hl + length, ident + index)
        head = ports + length.to_bytes(2, "big")
        check = internet_checksum(head + b"\0\0" + chunk,
                                  _pseudo_sum(ip, _PROTO_UDP, length)) or 0xFFFF
        segments.append(b"".join((link, ip, head, check.to_bytes(2, "big"), chunk)))
    return segments

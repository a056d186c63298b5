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
"""

from __future__ import annotations

import struct

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
    def make(cls, data: bytes, flags: int, gso_type: int, hdr_len: int, gso_size: int,
             csum_start: int, csum_offset: int) -> OffloadFrame:
        frame = cls(data)
        frame.flags = flags
        frame.gso_type = gso_type
        frame.hdr_len = hdr_len
        frame.gso_size = gso_size
        frame.csum_start = csum_start
        frame.csum_offset = csum_offset
        return frame

    @classmethod
    def from_vnet(cls, data: bytes, header: bytes | bytearray | memoryview,
                  at: int = 0) -> bytes:
        """``data`` with the header read at ``header[at:]``; plain ``bytes`` when it says
        nothing is left to do."""
        flags, gso_type, hdr_len, gso_size, start, offset = VNET_HDR.unpack_from(header, at)
        if not flags & F_NEEDS_CSUM and gso_type == GSO_NONE:
            return data
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


def vnet_header(frame: bytes) -> bytes:
    """The header to send in front of ``frame``."""
    if type(frame) is OffloadFrame:
        return frame.vnet_header()
    return VNET_NONE

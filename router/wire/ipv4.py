"""The IPv4 header (RFC 791): offsets, a checked parse and an emit.

Addresses are host-order ``int`` here as everywhere inside the engine.
``parse`` checks, in this order, length, version, IHL, total length and the
checksum, and raises :class:`Malformed` with one of the reason constants
below; the IPv4 input path counts them as ``router.ipv4.input.DropReason``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from router.wire import Malformed
from router.wire.checksum import internet_checksum

MIN_HEADER_LEN = 20
MAX_HEADER_LEN = 60
VERSION = 4

VER_IHL_OFF = 0
TOS_OFF = 1
TOTAL_LEN_OFF = 2
IDENT_OFF = 4
FRAG_OFF = 6
TTL_OFF = 8
PROTO_OFF = 9
CHECKSUM_OFF = 10
SRC_OFF = 12
DST_OFF = 16

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF

DEFAULT_TTL = 64

HEADER = struct.Struct("!BBHHHBBHII")
_CHECKSUM = struct.Struct("!H")
_ADDR = struct.Struct("!I")

# Malformed reasons (the values of router.ipv4.input.DropReason for header checks).
SHORT = "short"
BAD_VERSION = "bad_version"
BAD_IHL = "bad_ihl"
LENGTH_BELOW_HEADER = "length_below_header"
LENGTH_BEYOND_BUFFER = "length_beyond_buffer"
BAD_CHECKSUM = "bad_checksum"


@dataclass(slots=True)
class Ipv4Header:
    """A parsed IPv4 header; ``header_len`` is in bytes (IHL * 4)."""

    header_len: int
    tos: int
    total_length: int
    ident: int
    frag: int  # flags and fragment offset, as on the wire
    ttl: int
    protocol: int
    checksum: int
    src: int
    dst: int

    @property
    def fragment_offset(self) -> int:
        """In 8-byte units; non-zero means "not the first fragment"."""
        return self.frag & OFFSET_MASK

    @property
    def more_fragments(self) -> bool:
        return bool(self.frag & FLAG_MF)

    @property
    def dont_fragment(self) -> bool:
        return bool(self.frag & FLAG_DF)


def parse(packet: bytes | bytearray | memoryview, *, verify_checksum: bool = True) -> Ipv4Header:
    """Check and read the header at the start of ``packet`` (the IP datagram).

    The buffer may be longer than ``total_length`` (Ethernet padding); the
    caller trims it. Raises :class:`Malformed` naming the first failed check.
    """
    size = len(packet)
    if size < MIN_HEADER_LEN:
        raise Malformed(SHORT)
    ver_ihl, tos, total, ident, frag, ttl, proto, checksum, src, dst = HEADER.unpack_from(
        packet, 0
    )
    if ver_ihl >> 4 != VERSION:
        raise Malformed(BAD_VERSION)
    header_len = (ver_ihl & 0x0F) << 2
    if header_len < MIN_HEADER_LEN or header_len > size:
        raise Malformed(BAD_IHL)
    if total < header_len:
        raise Malformed(LENGTH_BELOW_HEADER)
    if total > size:
        raise Malformed(LENGTH_BEYOND_BUFFER)
    if verify_checksum and internet_checksum(packet[:header_len]) != 0:
        raise Malformed(BAD_CHECKSUM)
    return Ipv4Header(header_len, tos, total, ident, frag, ttl, proto, checksum, src, dst)


def emit(
    *,
    src: int,
    dst: int,
    protocol: int,
    payload: bytes | bytearray | memoryview = b"",
    ttl: int = DEFAULT_TTL,
    tos: int = 0,
    ident: int = 0,
    frag: int = 0,
    options: bytes = b"",
) -> bytes:
    """A whole datagram with a correct header checksum.

    ``options`` must be a multiple of 4 bytes, at most 40.
    """
    if len(options) % 4 or len(options) > MAX_HEADER_LEN - MIN_HEADER_LEN:
        raise ValueError("IPv4 options must be 4-byte aligned and at most 40 bytes")
    header_len = MIN_HEADER_LEN + len(options)
    head = bytearray(
        HEADER.pack(
            (VERSION << 4) | (header_len >> 2),
            tos,
            header_len + len(payload),
            ident,
            frag,
            ttl,
            protocol,
            0,
            src,
            dst,
        )
    )
    head += options
    _CHECKSUM.pack_into(head, CHECKSUM_OFF, internet_checksum(head))
    return bytes(head) + bytes(payload)


def read_dst(packet: bytes | bytearray | memoryview) -> int:
    """The destination address of an (already checked) header."""
    return int(_ADDR.unpack_from(packet, DST_OFF)[0])


def read_src(packet: bytes | bytearray | memoryview) -> int:
    """The source address of an (already checked) header."""
    return int(_ADDR.unpack_from(packet, SRC_OFF)[0])


def set_checksum(header: bytearray | memoryview, checksum: int) -> None:
    """Store ``checksum`` in a writable header."""
    _CHECKSUM.pack_into(header, CHECKSUM_OFF, checksum)

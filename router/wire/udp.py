"""The UDP header (RFC 768): parse and emit with the IPv4 pseudo-header checksum.

The engine has no sockets; it reads UDP only to answer datagrams sent to
one of its addresses with "port unreachable", and tests and the benchmark
build UDP traffic with ``emit``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from router.wire import Malformed
from router.wire.checksum import internet_checksum, ones_complement_sum

HEADER_LEN = 8
PROTO_UDP = 17

HEADER = struct.Struct("!HHHH")
_PSEUDO = struct.Struct("!IIBBH")
_CHECKSUM = struct.Struct("!H")

# Malformed reasons.
SHORT = "udp_short"
BAD_LENGTH = "udp_bad_length"


@dataclass(slots=True, frozen=True)
class UdpHeader:
    src_port: int
    dst_port: int
    length: int
    checksum: int


def parse(datagram: bytes | bytearray | memoryview) -> UdpHeader:
    """Read the header; the length must cover the header and fit the buffer."""
    if len(datagram) < HEADER_LEN:
        raise Malformed(SHORT)
    src_port, dst_port, length, checksum = HEADER.unpack_from(datagram, 0)
    if length < HEADER_LEN or length > len(datagram):
        raise Malformed(BAD_LENGTH)
    return UdpHeader(src_port, dst_port, length, checksum)


def emit(*, src: int, dst: int, src_port: int, dst_port: int,
         payload: bytes | bytearray | memoryview = b"") -> bytes:
    """A datagram whose checksum covers the IPv4 pseudo header (0 is sent as 0xFFFF)."""
    length = HEADER_LEN + len(payload)
    datagram = bytearray(HEADER.pack(src_port, dst_port, length, 0))
    datagram += payload
    pseudo = ones_complement_sum(_PSEUDO.pack(src, dst, 0, PROTO_UDP, length))
    checksum = internet_checksum(datagram, pseudo) or 0xFFFF
    _CHECKSUM.pack_into(datagram, 6, checksum)
    return bytes(datagram)

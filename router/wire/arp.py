"""The ARP header for IPv4 over Ethernet (RFC 826): field offsets, parse and emit.

Only the one combination the engine speaks is accepted: hardware type 1
(Ethernet), protocol type 0x0800 (IPv4), 6-byte hardware and 4-byte protocol
addresses, opcode request or reply. Anything else raises :class:`Malformed`
with a reason the input path counts (the reasons are the values of
``router.arp.config.ArpDrop``). Bytes after the 28-byte header (Ethernet
padding) are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from router.wire import Malformed

HTYPE_ETHER = 1
PTYPE_IPV4 = 0x0800
HLEN_ETHER = 6
PLEN_IPV4 = 4
OP_REQUEST = 1
OP_REPLY = 2

ETHERTYPE_ARP = 0x0806
ETHER_HEADER_LEN = 14
ETHER_BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

# Offsets inside the ARP header.
HTYPE_OFF = 0
PTYPE_OFF = 2
HLEN_OFF = 4
PLEN_OFF = 5
OP_OFF = 6
SHA_OFF = 8
SPA_OFF = 14
THA_OFF = 18
TPA_OFF = 24
HEADER_LEN = 28

FIXED = struct.Struct("!HHBBH")  # htype, ptype, hlen, plen, op
BODY = struct.Struct("!6sI6sI")  # sha, spa, tha, tpa
HEADER = struct.Struct("!HHBBH6sI6sI")
ETHER = struct.Struct("!6s6sH")

# Malformed reasons (kept equal to the ArpDrop values).
TRUNCATED = "truncated"
BAD_HTYPE = "bad_htype"
BAD_PTYPE = "bad_ptype"
BAD_HLEN = "bad_hlen"
BAD_PLEN = "bad_plen"
BAD_OPCODE = "bad_opcode"


@dataclass(slots=True, frozen=True)
class ArpHeader:
    """A parsed ARP header; addresses: MACs as 6 bytes, IPv4 as ints."""

    op: int
    sha: bytes
    spa: int
    tha: bytes
    tpa: int


def parse(buf: bytes | bytearray | memoryview) -> ArpHeader:
    """Check and parse one ARP header; raise :class:`Malformed` naming the failed check.

    The fixed part is checked before the addresses are read, so a header
    announcing other address lengths is reported as such even when short.
    """
    if len(buf) < FIXED.size:
        raise Malformed(TRUNCATED)
    htype, ptype, hlen, plen, op = FIXED.unpack_from(buf, 0)
    if htype != HTYPE_ETHER:
        raise Malformed(BAD_HTYPE)
    if ptype != PTYPE_IPV4:
        raise Malformed(BAD_PTYPE)
    if hlen != HLEN_ETHER:
        raise Malformed(BAD_HLEN)
    if plen != PLEN_IPV4:
        raise Malformed(BAD_PLEN)
    if len(buf) < HEADER_LEN:
        raise Malformed(TRUNCATED)
    if op != OP_REQUEST and op != OP_REPLY:
        raise Malformed(BAD_OPCODE)
    sha, spa, tha, tpa = BODY.unpack_from(buf, SHA_OFF)
    return ArpHeader(op, sha, spa, tha, tpa)


def emit(op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> bytes:
    """The 28-byte ARP header for IPv4 over Ethernet."""
    return HEADER.pack(HTYPE_ETHER, PTYPE_IPV4, HLEN_ETHER, PLEN_IPV4, op, sha, spa, tha, tpa)


def emit_frame(
    eth_dst: bytes, eth_src: bytes, op: int, sha: bytes, spa: int, tha: bytes, tpa: int
) -> bytes:
    """A complete Ethernet frame carrying one ARP header (42 bytes, the NIC pads)."""
    return ETHER.pack(eth_dst, eth_src, ETHERTYPE_ARP) + emit(op, sha, spa, tha, tpa)


def is_multicast_mac(mac: bytes) -> bool:
    """Group bit set: a broadcast or multicast MAC, never a neighbour's own address."""
    return bool(mac[0] & 1)


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)

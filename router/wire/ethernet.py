"""The Ethernet II header (with an optional 802.1Q tag): offsets, parse and emit.

Frames are ``bytes``-like; addresses are 6-byte ``bytes``. ``parse`` returns
a small record and the offset of the payload; the forwarding fast path does
not call it and reads the offsets below directly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from router.wire import Malformed

ADDR_LEN = 6
HEADER_LEN = 14
VLAN_HEADER_LEN = 18

DST_OFF = 0
SRC_OFF = 6
TYPE_OFF = 12
VLAN_TCI_OFF = 14
VLAN_TYPE_OFF = 16

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD

#: The ethertype field of an IPv4 frame as it appears on the wire.
ETHERTYPE_IPV4_BYTES = b"\x08\x00"

BROADCAST = b"\xff" * ADDR_LEN
ZERO = b"\x00" * ADDR_LEN

#: Ethernet frames are padded to 60 bytes (64 with the FCS the NIC strips).
MIN_FRAME_LEN = 60

HEADER = struct.Struct("!6s6sH")
_VLAN_TAIL = struct.Struct("!HH")

# Malformed reasons.
SHORT = "short"


@dataclass(slots=True, frozen=True)
class EthernetHeader:
    """A parsed link header. ``vlan`` is the 12-bit VLAN id, or ``None`` untagged."""

    dst: bytes
    src: bytes
    ethertype: int
    vlan: int | None
    payload_offset: int


def parse(frame: bytes | bytearray | memoryview) -> EthernetHeader:
    """Read the link header; one 802.1Q tag is looked through. ``Malformed("short")``."""
    if len(frame) < HEADER_LEN:
        raise Malformed(SHORT)
    dst, src, ethertype = HEADER.unpack_from(frame, 0)
    if ethertype != ETHERTYPE_VLAN:
        return EthernetHeader(dst, src, ethertype, None, HEADER_LEN)
    if len(frame) < VLAN_HEADER_LEN:
        raise Malformed(SHORT)
    tci, inner = _VLAN_TAIL.unpack_from(frame, VLAN_TCI_OFF)
    return EthernetHeader(dst, src, inner, tci & 0x0FFF, VLAN_HEADER_LEN)


def header(dst: bytes, src: bytes, ethertype: int) -> bytes:
    """The 14-byte header (what the fast path prebuilds once per next hop)."""
    return HEADER.pack(dst, src, ethertype)


def emit(dst: bytes, src: bytes, ethertype: int, payload: bytes | bytearray | memoryview,
         *, pad: bool = False) -> bytes:
    """A whole frame; ``pad`` fills it to the 60-byte Ethernet minimum."""
    frame = HEADER.pack(dst, src, ethertype) + bytes(payload)
    if pad and len(frame) < MIN_FRAME_LEN:
        frame += bytes(MIN_FRAME_LEN - len(frame))
    return frame


def is_group(mac: bytes | bytearray | memoryview) -> bool:
    """Broadcast or multicast: the I/G bit of the first octet."""
    return bool(mac[0] & 1)

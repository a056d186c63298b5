"""The Ethernet family module: demux by ethertype, framer, multicast check.

One ``EthernetFamily`` serves every Ethernet interface; its per-interface
state is the interface's ``demux_table`` (ethertype -> protocol family),
filled by ``add_proto`` from the protocol's demux descriptors. Demux is on the
input path of every frame: two byte reads for the ethertype, one dict lookup,
one slice comparison for the destination.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from router.contracts import DemuxDesc, Packet, PacketFlags
from router.errors import (
    EADDRINUSE,
    EADDRNOTAVAIL,
    EAFNOSUPPORT,
    EINVAL,
    EMSGSIZE,
    ENOENT,
    RouterError,
)
from router.link.ifnet import Interface
from router.offload import OffloadFrame

ETHER_ADDR_LEN = 6
ETHER_HDR_LEN = 14
VLAN_HDR_LEN = 18
ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD
BROADCAST_MAC = b"\xff" * ETHER_ADDR_LEN
DEMUX_ETHERTYPE = "ethertype"

_IPV4_MCAST_PREFIX = b"\x01\x00\x5e"
_ETHERTYPE = struct.Struct("!H")
_IPV4_TYPE = _ETHERTYPE.pack(ETHERTYPE_IP)  # the usual frame type, packed once
_BCAST = int(PacketFlags.BCAST)
_MCAST = int(PacketFlags.MCAST)
_PROMISC = int(PacketFlags.PROMISC)
_VLAN = int(PacketFlags.VLAN_TAGGED)


def ipv4_multicast_mac(group: int) -> bytes:
    """The Ethernet address of an IPv4 group (RFC 1112): 01:00:5e + the low 23 bits.

    ``EADDRNOTAVAIL`` (as ``RouterError``) if ``group`` is not in 224.0.0.0/4.
    """
    if not is_ipv4_multicast(group):
        raise RouterError(EADDRNOTAVAIL, "group", group, detail="not an IPv4 multicast group")
    return _IPV4_MCAST_PREFIX + (group & 0x7FFFFF).to_bytes(3, "big")


def is_ipv4_multicast(addr: int) -> bool:
    """224.0.0.0/4 (``IN_MULTICAST``)."""
    return addr >> 28 == 0xE


class EthernetFamily:
    """``FamilyModule`` for Ethernet interfaces (XNU ``ether_*`` family functions)."""

    __slots__ = ()

    def demux(self, ifp: Interface, pkt: Packet) -> tuple[int, int]:
        """Classify a received frame and find its protocol family.

        Marks broadcast, multicast (group bit) and promiscuous (unicast to
        another address) frames; an 802.1Q frame is marked VLAN-tagged and
        classified by its inner ethertype. ``EMSGSIZE`` for a runt,
        ``ENOENT`` when no protocol registered the ethertype.
        """
        data = pkt.data
        if len(data) < ETHER_HDR_LEN:
            return EMSGSIZE, 0
        ethertype = (data[12] << 8) | data[13]
        flags = pkt.flags
        if ethertype == ETHERTYPE_VLAN:
            if len(data) < VLAN_HDR_LEN:
                return EMSGSIZE, 0
            pkt.vlan = ((data[14] << 8) | data[15]) & 0x0FFF
            ethertype = (data[16] << 8) | data[17]
            pkt.l2len = VLAN_HDR_LEN
            flags |= _VLAN
        else:
            pkt.l2len = ETHER_HDR_LEN
        if data[0] & 1:
            flags |= _BCAST if data[:6] == BROADCAST_MAC else _MCAST
        elif data[:6] != ifp.lladdr:
            flags |= _PROMISC
        pkt.flags = flags
        family = ifp.demux_table.get(ethertype)
        if family is None:
            return ENOENT, 0
        return 0, family

    def framer(self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int) -> int:
        """Prepend destination, our address and the ethertype; mark broadcast/multicast."""
        if len(lldst) != ETHER_ADDR_LEN or not 0 <= frame_type <= 0xFFFF:
            return EINVAL
        type_bytes = _IPV4_TYPE if frame_type == ETHERTYPE_IP else _ETHERTYPE.pack(frame_type)
        data = pkt.data
        framed = b"".join((lldst, ifp.lladdr, type_bytes, data))
        # a datagram with offload work left keeps its description, 14 bytes further on
        pkt.data = data.derive(framed, ETHER_HDR_LEN) if type(data) is OffloadFrame else framed
        pkt.l2len = ETHER_HDR_LEN
        if lldst[0] & 1:
            pkt.flags |= _BCAST if lldst == BROADCAST_MAC else _MCAST
        return 0

    def add_proto(self, ifp: Interface, family: int, demux: Sequence[DemuxDesc]) -> int:
        """Register ethertypes for ``family``.

        ``EINVAL`` for an empty list, a descriptor kind other than
        ``"ethertype"`` or a value outside 16 bits; ``EADDRINUSE`` if another
        family already owns one of the ethertypes. Nothing is registered on
        error.
        """
        if not demux:
            return EINVAL
        table = ifp.demux_table
        for desc in demux:
            if desc.kind != DEMUX_ETHERTYPE or not 0 <= desc.value <= 0xFFFF:
                return EINVAL
            owner = table.get(desc.value)
            if owner is not None and owner != family:
                return EADDRINUSE
        for desc in demux:
            table[desc.value] = family
        return 0

    def del_proto(self, ifp: Interface, family: int) -> int:
        """Forget every ethertype of ``family``."""
        table = ifp.demux_table
        for ethertype in [t for t, f in table.items() if f == family]:
            del table[ethertype]
        return 0

    def check_multi(self, ifp: Interface, addr: bytes) -> int:
        """``ether_check_multi``: only group addresses are multicast addresses.

        A 6-byte link address must have the group bit (``EADDRNOTAVAIL``
        otherwise); a 4-byte IPv4 address must be in 224.0.0.0/4 (it maps to
        01:00:5e); anything else is ``EAFNOSUPPORT``.
        """
        if len(addr) == ETHER_ADDR_LEN:
            return 0 if addr[0] & 1 else EADDRNOTAVAIL
        if len(addr) == 4:
            return 0 if is_ipv4_multicast(int.from_bytes(addr, "big")) else EADDRNOTAVAIL
        return EAFNOSUPPORT

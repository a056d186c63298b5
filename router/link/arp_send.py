"""ARP send and multicast resolution across the data link layer (dlil.c).

``dlil_send_arp`` fans a link-local ARP request out to every interface that
may carry IPv4 link-local traffic; ``dlil_resolve_multi`` lets the protocol
map a group address and the family module vet the result. ``DataLink``
delegates its ``send_arp`` and ``resolve_multi`` here, passing itself as the
:class:`ArpLinks` they need.
"""

from __future__ import annotations

from typing import Any, Protocol

from router.contracts import ProtoAttachment
from router.errors import EINVAL, ENOTSUP, EOPNOTSUPP
from router.link.ifnet import AF_INET, IfExtFlags, Interface

ARPOP_REQUEST = 1
ARPOP_REPLY = 2

_LINKLOCAL_NET = 0xA9FE0000  # 169.254.0.0/16
_LINKLOCAL_MASK = 0xFFFF0000


class ArpLinks(Protocol):
    """What ARP send and multicast resolution use of the data link layer (``DataLink``).

    ``ipv4_ll_arp_aware`` is the seed's sysctl that turns the link-local
    fan-out on; ``interfaces`` are the attached ones in attach order.
    """

    ipv4_ll_arp_aware: bool

    def interfaces(self) -> list[Interface]: ...

    def io_ref(self, ifp: Interface) -> bool: ...

    def io_unref(self, ifp: Interface) -> None: ...

    def proto_unref(self, ifp: Interface, proto: ProtoAttachment) -> None: ...


def is_ipv4_linklocal(addr: int) -> bool:
    """``IN_LINKLOCAL``: 169.254.0.0/16."""
    return addr & _LINKLOCAL_MASK == _LINKLOCAL_NET


def first_ipv4_address(ifp: Interface) -> int | None:
    """The first IPv4 address entry on ``ifp`` (what the ARP fan-out uses as source)."""
    for entry in ifp.addresses:
        if getattr(entry, "family", None) == AF_INET:
            addr = getattr(entry, "addr", None)
            if isinstance(addr, int):
                return addr
    return None


def send_arp(
    dl: ArpLinks,
    ifp: Interface,
    op: int,
    sender_hw: bytes | None,
    sender_ip: int | None,
    target_hw: bytes | None,
    target_ip: int | None,
) -> int:
    """``dlil_send_arp``: send an ARP packet through the IPv4 protocol's ``send_arp``.

    ``EINVAL`` without a target. A request for a link-local target
    (169.254/16) that is not an announcement (sender == target) goes out on
    every attached interface flagged ARPLL that has an IPv4 address, each
    with its own link address and first IPv4 address as the sender; the
    first interface's result replaces ``ENOTSUP`` (nobody sent). Anything
    else goes out on ``ifp`` only. ``dl.ipv4_ll_arp_aware`` switches the
    fan-out off (the seed's sysctl).

    A request without a sender address is no announcement, so it fans out:
    that is what the seed's ``_is_announcement`` answers for a missing
    sender. (Its call site passes target and sender swapped; the comparison
    is symmetric, but the swap makes the seed read the missing sender
    instead of answering no.)
    """
    if target_ip is None:
        return EINVAL
    announcement = sender_ip is not None and sender_ip == target_ip
    if (dl.ipv4_ll_arp_aware and op == ARPOP_REQUEST
            and is_ipv4_linklocal(target_ip) and not announcement):
        return _send_arp_linklocal(dl, op, target_ip)
    return _send_arp_on(dl, ifp, op, sender_hw, sender_ip, target_hw, target_ip)


def _send_arp_linklocal(dl: ArpLinks, op: int, target_ip: int) -> int:
    result = ENOTSUP
    for cur in dl.interfaces():
        if not cur.eflags & IfExtFlags.ARPLL:
            continue
        source_ip = first_ipv4_address(cur)
        if source_ip is None:
            continue
        sent = _send_arp_on(dl, cur, op, cur.lladdr, source_ip, None, target_ip)
        if result == ENOTSUP:
            result = sent
    return result


def _send_arp_on(
    dl: ArpLinks, ifp: Interface, op: int, sender_hw: bytes | None, sender_ip: int | None,
    target_hw: bytes | None, target_ip: int,
) -> int:
    """``dlil_send_arp_internal``: through ``ifp``'s IPv4 attachment, ENOTSUP without one."""
    proto = ifp.protocols.get(AF_INET)
    if proto is None:
        return ENOTSUP
    proto.refcount += 1
    try:
        if proto.send_arp is None:
            return ENOTSUP
        result: int = proto.send_arp(ifp, op, sender_hw, sender_ip, target_hw, target_ip)
        return result
    finally:
        dl.proto_unref(ifp, proto)


def resolve_multi(dl: ArpLinks, ifp: Interface, family: int, addr: Any) -> tuple[int, bytes]:
    """``dlil_resolve_multi``: the protocol maps a group address, the family module checks.

    The protocol's ``resolve_multi`` goes first; if it answered 0 the family
    module's ``check_multi`` verifies the link address it gave, if it had no
    answer (``EOPNOTSUPP``) the protocol address itself (an IPv4 ``int`` is
    passed as 4 bytes, network order). Any other protocol error is returned
    as is. ``EOPNOTSUPP`` if the interface is not attached.
    """
    if not dl.io_ref(ifp):
        return EOPNOTSUPP, b""
    try:
        result, lladdr = EOPNOTSUPP, b""
        proto = ifp.protocols.get(family)
        if proto is not None:
            proto.refcount += 1
            try:
                if proto.resolve_multi is not None:
                    result, lladdr = proto.resolve_multi(ifp, addr)
            finally:
                dl.proto_unref(ifp, proto)
        if result in (0, EOPNOTSUPP):
            verify = lladdr if result == 0 else _address_bytes(addr)
            result = ifp.family_module.check_multi(ifp, verify)  # type: ignore[union-attr]
        return result, lladdr
    finally:
        dl.io_unref(ifp)


def _address_bytes(addr: Any) -> bytes:
    if isinstance(addr, int):
        return addr.to_bytes(4, "big")
    return bytes(addr)

"""IPv4 interface addresses: the records, the requests and the pure rules.

``InAddr`` is one configured address (``struct in_ifaddr``), ``InetIfInfo``
the per-interface IPv4 data hung on ``Interface.inet`` (``struct
in_ifinfo``). The requests (``AliasRequest``, ``DeleteRequest``) carry the
address families of their parts so the seed's family checks are real. The
stateful rules live in ``router/inet/domain.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from router.inet.route import ALL_ONES, Route, ntoa, plen_to_mask
from router.link.ifnet import AF_INET, IfFlags, Interface

RFC3021_MASK = 0xFFFFFFFE  # a /31: both addresses are hosts, no broadcast (RFC 3021)
ALL_HOSTS_GROUP = 0xE0000001  # 224.0.0.1
LIMITED_BROADCAST = ALL_ONES
_BROADCAST = int(IfFlags.BROADCAST)
_POINTOPOINT = int(IfFlags.POINTOPOINT)
_LOOPBACK = int(IfFlags.LOOPBACK)
_K = TypeVar("_K")
_V = TypeVar("_V")
_REPACK_FLOOR = 16  # holes a small dict may keep: walking past them costs nothing


class OrderedIndex(dict[_K, _V], Generic[_K, _V]):
    """An insertion-ordered dict whose first and last entries stay cheap to reach.

    CPython leaves a hole in a dict's entry table for every deleted key and
    only an insertion ever re-packs the table, so after many deletions at the
    front (addresses deleted in the order they were added) finding the first
    live entry walks past every hole: "first address" would cost the number
    of deletions so far. This dict counts its holes and re-packs itself in
    place once they outnumber its entries, so first/last stay amortised O(1).
    Delete with ``del`` or :meth:`discard` (``pop`` is not counted).
    """

    __slots__ = ("_holes",)

    def __init__(self) -> None:
        super().__init__()
        self._holes = 0

    def __delitem__(self, key: _K) -> None:
        super().__delitem__(key)
        self._holes += 1
        if self._holes > _REPACK_FLOOR and self._holes > len(self):
            self._repack()

    def discard(self, key: _K) -> None:
        if key in self:
            del self[key]

    def first(self) -> _V | None:
        """The value added earliest, or None when empty."""
        return next(iter(self.values()), None)

    def _repack(self) -> None:
        entries = list(self.items())
        super().clear()
        super().update(entries)
        self._holes = 0


class SamePrefixPolicy(enum.Enum):
    """What to do when a second address shares a prefix with an existing one.

    ALLOW (the seed's default): the first address keeps the only route, the
    newcomer gets just an alias routing message. REFUSE (the seed's
    ``net.inet.ip.no_same_prefix``): the newcomer is ``EEXIST``. MULTIPATH (the
    seed's ``RADIX_MPATH`` build): the newcomer gets its own route (a leg)
    beside the others, and only the identical address on another interface
    is ``EEXIST``. An interface holds one leg of a prefix at most (a second
    would be identical, which the seed's insert refuses): a newcomer on an
    interface that has a leg is an alias as under ALLOW, and a hand-over to
    such an interface adds none. The policy is read when an address is
    added; changing it never rewrites existing routes.
    """

    ALLOW = "allow"
    REFUSE = "refuse"
    MULTIPATH = "multipath"


class IfaFlags(enum.IntFlag):
    NONE = 0
    ROUTE = 0x1  # this address owns the prefix route (IFA_ROUTE)


@dataclass(slots=True)
class AliasRequest:
    """An add-alias request (``struct in_aliasreq``); None means "absent".

    The ``*_family`` fields are the address families the caller gave for each
    part; anything but ``AF_INET`` for a present part is ``EINVAL``.
    """

    addr: int
    mask: int | None = None
    broadcast: int | None = None
    dest: int | None = None
    vhid: int = 0
    addr_family: int = AF_INET
    mask_family: int = AF_INET
    broadcast_family: int = AF_INET
    probes: int | None = None  # RFC 5227 probes before use (None: ARP's configuration)


@dataclass(slots=True)
class DeleteRequest:
    """A delete-alias request; no address, or not ``AF_INET``, deletes the first one."""

    addr: int | None = None
    family: int = AF_INET


@dataclass(slots=True, eq=False)
class InAddr:
    """One IPv4 address on one interface (``struct in_ifaddr``).

    ``peer`` is the broadcast address on a broadcast interface and the
    destination on a point-to-point or loopback one: the seed keeps both in
    one slot, so an interface that is both broadcast and point-to-point
    reports its destination as its broadcast address. ``route_key`` is the
    prefix route this address serves, ``(destination, 32)`` for a host route;
    it and ``wants_local`` are fixed when the address is added, so later flag
    changes on the interface cannot orphan a route.
    """

    addr: int
    mask: int
    plen: int
    subnet: int
    peer: int
    ifp: Interface
    route_key: tuple[int, int]
    host_route: bool
    wants_local: bool
    vhid: int = 0
    flags: IfaFlags = IfaFlags.NONE
    prefix_route: Route | None = None
    family: int = AF_INET
    seq: int = 0  # order of addition over all interfaces (the seed's in_ifaddrhead order)
    probes: int | None = None  # RFC 5227 probes it asked for (None: ARP's configuration)

    @property
    def broadcast(self) -> int:
        return self.peer

    @property
    def dest(self) -> int:
        return self.peer

    @property
    def owns_route(self) -> bool:
        return bool(self.flags & IfaFlags.ROUTE)

    def describe(self) -> dict[str, Any]:
        """Plain values for events and the API."""
        return {
            "addr": ntoa(self.addr),
            "plen": self.plen,
            "peer": ntoa(self.peer),
            "owns_route": self.owns_route,
        }

    def __repr__(self) -> str:
        return f"<InAddr {ntoa(self.addr)}/{self.plen} on {self.ifp.name}>"


@dataclass(slots=True, eq=False)
class InetIfInfo:
    """Per-interface IPv4 data (``struct in_ifinfo``), at ``Interface.inet``.

    ``addrs`` maps address value to address in the order they were added
    (the interface's IPv4 part of ``if_addrhead``): the first one answers
    ``SIOCGIFADDR`` and delete-first, and is the one mirrored into
    ``Interface.addresses``. ``subnets`` finds the interface's address on a
    destination's subnet without walking its address list. ``groups`` counts
    multicast memberships. ``broadcast_hits`` counts, per value, the
    addresses for which ``in_broadcast`` says yes. ``llt`` is the ARP table,
    owned by the ARP module.
    """

    addrs: OrderedIndex[int, InAddr] = field(default_factory=OrderedIndex)
    # netmask -> subnet -> this interface's addresses on it, in the order added
    subnets: dict[int, dict[int, OrderedIndex[InAddr, None]]] = field(default_factory=dict)
    groups: dict[int, int] = field(default_factory=dict)
    allhosts: bool = False
    broadcast_hits: dict[int, int] = field(default_factory=dict)
    llt: Any = None


class NeighborHooks(Protocol):
    """What address control asks of the neighbour (ARP) layer and of IGMP.

    Called by ``InetDomain`` synchronously while it changes addresses; the
    hooks may change their own tables but must not call back into
    ``InetDomain``.
    """

    def address_added(self, ifp: Interface, ia: InAddr) -> None:
        """A new address is up on ``ifp`` (announce it, start conflict detection)."""
        ...

    def scrub_address(self, ifp: Interface, addr: int) -> None:
        """Forget the ARP entry of our own address ``addr`` (``arp_ifscrub``)."""
        ...

    def flush_prefix(self, prefix: int, mask: int, include_static: bool) -> None:
        """Drop the ARP entries on ``prefix/mask`` on every interface (``lltable_prefix_free``)."""
        ...

    def join_group(self, ifp: Interface, group: int) -> None: ...

    def leave_group(self, ifp: Interface, group: int) -> None: ...


class NoNeighbors:
    """Hooks that do nothing: address control without ARP or IGMP attached."""

    def address_added(self, ifp: Interface, ia: InAddr) -> None:
        del ifp, ia

    def scrub_address(self, ifp: Interface, addr: int) -> None:
        del ifp, addr

    def flush_prefix(self, prefix: int, mask: int, include_static: bool) -> None:
        del prefix, mask, include_static

    def join_group(self, ifp: Interface, group: int) -> None:
        del ifp, group

    def leave_group(self, ifp: Interface, group: int) -> None:
        del ifp, group


def classful_mask(addr: int) -> int:
    """The netmask a classful network implies: A /8, B /16, C and above /24."""
    if addr >> 31 == 0:
        return plen_to_mask(8)
    if addr >> 30 == 0b10:
        return plen_to_mask(16)
    return plen_to_mask(24)


def default_peer(ifp: Interface, addr: int, mask: int, req: AliasRequest) -> int:
    """Broadcast or destination of a new address (the seed's one shared slot).

    Broadcast interfaces: the given broadcast, all-ones for a /31 (RFC 3021),
    else the subnet with all host bits set. A point-to-point interface then
    stores the destination, a loopback interface the address itself.
    """
    peer = 0
    flags = int(ifp.flags)
    if flags & _BROADCAST:
        if req.broadcast is not None:
            peer = req.broadcast
        elif mask == RFC3021_MASK:
            peer = LIMITED_BROADCAST
        else:
            peer = (addr & mask) | (~mask & ALL_ONES)
    if flags & _POINTOPOINT and req.dest is not None:
        peer = req.dest
    if flags & _LOOPBACK:
        peer = addr
    return peer


def broadcast_values(ia: InAddr) -> set[int]:
    """Values ``in_broadcast`` answers yes for on the address's interface.

    The broadcast address, and the subnet number (the old host-0 broadcast)
    unless the mask is a /31; nothing for an all-ones mask.
    """
    if ia.mask == ALL_ONES:
        return set()
    values = {ia.peer}
    if ia.mask != RFC3021_MASK:
        values.add(ia.subnet)
    return values


def can_forward(addr: int) -> bool:
    """``in_canforward``: may a packet to ``addr`` be forwarded?

    Not experimental (240/4), multicast (224/4), link-local (169.254/16), nor
    on net 0 or the loopback net (127) of class A space.
    """
    if addr >> 28 in (0xE, 0xF):
        return False
    if addr >> 16 == 0xA9FE:
        return False
    return not (addr >> 31 == 0 and addr >> 24 in (0, 127))

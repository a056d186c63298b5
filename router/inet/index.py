"""The lookups of IPv4 address control, kept current as addresses come and go.

The seed answers every question about addresses by walking a list: the
global address list (``in_localaddr``, the hand-over in ``in_scrubprefix``,
``in_localip_more``) or one interface's (``in_broadcast``, "first address").
``AddressIndex`` answers the same questions through dicts, so each costs the
same with 10 or 100,000 addresses, on one interface or spread over many. The
only loops left run over the netmasks in use, over the interfaces that share
one prefix or one address value, and over the route owners of one prefix.
"""

from __future__ import annotations

from router.inet.addr import InAddr, InetIfInfo, OrderedIndex, broadcast_values
from router.link.ifnet import IfFlags, Interface

PrefixKey = tuple[int, int]

_UP = int(IfFlags.UP)


def count_in(counter: dict[int, int], key: int) -> None:
    counter[key] = counter.get(key, 0) + 1


def count_out(counter: dict[int, int], key: int) -> None:
    left = counter[key] - 1
    if left:
        counter[key] = left
    else:
        del counter[key]


class AddressIndex:
    """System-wide indexes over every configured ``InAddr``, plus each interface's own.

    ``by_value``: address value -> addresses with it, oldest first;
    ``value_keys`` the same values as 4 network-order bytes (what a header
    holds, for the fast path's per-frame own-source check) and
    ``value_last_octets`` how many values end in each last octet (the
    check's cheap first step: most sources end in an octet none of ours does).
    ``by_key``: prefix key -> interface -> its addresses serving that prefix,
    oldest first. ``subnets``: netmask -> subnet -> how many addresses.
    Per interface (on ``InetIfInfo``): ``addrs``, ``subnets`` and
    ``broadcast_hits``, and the primary address in ``Interface.addresses``.
    """

    __slots__ = ("by_key", "by_value", "subnets", "value_keys", "value_last_octets")

    def __init__(self) -> None:
        self.by_value: dict[int, OrderedIndex[InAddr, None]] = {}
        self.value_keys: dict[bytes, None] = {}
        self.value_last_octets: dict[int, int] = {}
        self.by_key: dict[PrefixKey, dict[Interface, OrderedIndex[InAddr, None]]] = {}
        self.subnets: dict[int, dict[int, int]] = {}

    # -- changes -----------------------------------------------------------

    def link(self, ia: InAddr, info: InetIfInfo) -> None:
        """Enter a new address (the seed's two list insertions and the hash)."""
        ifp = ia.ifp
        if not info.addrs:
            ifp.addresses.append(ia)  # the primary address stands for IPv4 in the list
        info.addrs[ia.addr] = ia
        same_value = self.by_value.get(ia.addr)
        if same_value is None:
            same_value = self.by_value[ia.addr] = OrderedIndex()
            self.value_keys[ia.addr.to_bytes(4, "big")] = None
            count_in(self.value_last_octets, ia.addr & 0xFF)
        same_value[ia] = None
        on_key = self.by_key.setdefault(ia.route_key, {})
        on_key.setdefault(ifp, OrderedIndex())[ia] = None
        count_in(self.subnets.setdefault(ia.mask, {}), ia.subnet)
        on_mask = info.subnets.setdefault(ia.mask, {})
        on_mask.setdefault(ia.subnet, OrderedIndex())[ia] = None
        for value in broadcast_values(ia):
            count_in(info.broadcast_hits, value)

    def unlink(self, ia: InAddr, info: InetIfInfo) -> None:
        """Remove an address from every index; the inverse of :meth:`link`."""
        ifp = ia.ifp
        was_primary = info.addrs.first() is ia
        del info.addrs[ia.addr]
        if was_primary:
            _replace_primary(ifp, ia, info.addrs.first())
        same_value = self.by_value[ia.addr]
        del same_value[ia]
        if not same_value:
            del self.by_value[ia.addr]
            del self.value_keys[ia.addr.to_bytes(4, "big")]
            count_out(self.value_last_octets, ia.addr & 0xFF)
        on_key = self.by_key[ia.route_key]
        group = on_key[ifp]
        del group[ia]
        if not group:
            del on_key[ifp]
            if not on_key:
                del self.by_key[ia.route_key]
        subnets = self.subnets[ia.mask]
        count_out(subnets, ia.subnet)
        if not subnets:
            del self.subnets[ia.mask]
        on_mask = info.subnets[ia.mask]
        on_subnet = on_mask[ia.subnet]
        del on_subnet[ia]
        if not on_subnet:
            del on_mask[ia.subnet]
            if not on_mask:
                del info.subnets[ia.mask]
        for value in broadcast_values(ia):
            count_out(info.broadcast_hits, value)

    # -- questions address control asks ------------------------------------

    def prefix_heir(self, ia: InAddr) -> InAddr | None:
        """``in_scrubprefix``'s heir: the earliest-added other address of the prefix
        on an UP interface that has no route.

        The seed's walk of the global address list, done per interface: an
        interface that is down is passed over whole, and on an UP one only
        the prefix's owners (one, bar multipath legs) precede its candidate.
        """
        heir: InAddr | None = None
        for ifp, members in self.by_key.get(ia.route_key, {}).items():
            if not int(ifp.flags) & _UP:
                continue
            for other in members:
                if other is not ia and not other.owns_route:
                    if heir is None or other.seq < heir.seq:
                        heir = other
                    break
        return heir

    def local_heir(self, ia: InAddr) -> InAddr | None:
        """``in_localip_more``, restricted to addresses that want a loopback route:
        the most recent other address with ia's value that does."""
        for other in reversed(self.by_value.get(ia.addr, {})):
            if other is not ia and other.wants_local:
                return other
        return None

    def value_routed_at_key(self, ia: InAddr) -> bool:
        """Does another address with ia's value own a route to ia's prefix (multipath EEXIST)?"""
        return any(o.owns_route and o.route_key == ia.route_key
                   for o in self.by_value.get(ia.addr, ()))

    def local_subnet(self, addr: int) -> bool:
        """``in_localaddr``: one probe per netmask in use."""
        return any((addr & mask) in subnets for mask, subnets in self.subnets.items())

    def local_ip(self, addr: int) -> bool:
        """``in_localip``."""
        return addr in self.by_value

    def find(self, addr: int) -> InAddr | None:
        """The most recently added address with value ``addr`` (``ifa_ifwithaddr``)."""
        same = self.by_value.get(addr)
        return next(reversed(same)) if same else None

    def prefix_members(self, key: PrefixKey) -> list[InAddr]:
        """The addresses serving ``key``, oldest first (a listing: sorts)."""
        members = [ia for group in self.by_key.get(key, {}).values() for ia in group]
        members.sort(key=lambda ia: ia.seq)
        return members

    @staticmethod
    def address_on(info: InetIfInfo, dst: int) -> InAddr | None:
        """The interface's earliest-added address on ``dst``'s subnet, else its first."""
        best: InAddr | None = None
        for mask, by_subnet in info.subnets.items():
            members = by_subnet.get(dst & mask)
            if members:
                candidate = next(iter(members))
                if best is None or candidate.seq < best.seq:
                    best = candidate
        return best if best is not None else info.addrs.first()


def _replace_primary(ifp: Interface, old: InAddr, new: InAddr | None) -> None:
    """Put the interface's new first IPv4 address where the old one stood in its list.

    ``Interface.addresses`` carries only the primary IPv4 address (what the
    ARP fan-out takes as its source): mirroring every alias would make each
    delete a list search over the interface's addresses.
    """
    entries = ifp.addresses
    for pos, entry in enumerate(entries):  # the link address and one entry per family
        if entry is old:
            if new is None:
                del entries[pos]
            else:
                entries[pos] = new
            return

"""The IPv4 route table: longest-prefix match, multipath, routing messages.

Routes live in one dict per prefix length, keyed by the masked prefix; a
lookup walks the lengths in use from the longest down and stops at the first
hit, so a lookup costs one dict probe per distinct prefix length (typically
two or three: the /32 loopback routes, the /24 connected routes, a default)
whatever the number of routes.

Every change bumps :attr:`RouteTable.generation` and emits a routing message
(``RTM_ADD``, ``RTM_DELETE``, ``RTM_CHANGE``) through the injected ``emit``
callable; per-packet caches (:meth:`RouteTable.cached_lookup`, the fast path)
compare generations instead of subscribing to changes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.errors import EEXIST, EINVAL, ESRCH, RouterError
from router.events import Event, EventKind
from router.inet.multipath import NextHop
from router.link.ifnet import AF_INET

ALL_ONES = 0xFFFFFFFF
MAX_PLEN = 32

Emit = Callable[[Event], None]


def plen_to_mask(plen: int) -> int:
    """The netmask of a prefix length (``24`` → ``0xffffff00``)."""
    return (ALL_ONES << (MAX_PLEN - plen)) & ALL_ONES


def mask_to_plen(mask: int) -> int | None:
    """The prefix length of a contiguous netmask, or None if it has holes."""
    plen = mask.bit_count()
    return plen if plen_to_mask(plen) == mask else None


def ntoa(addr: int) -> str:
    """Dotted-quad text of an IPv4 address held as an int."""
    return f"{addr >> 24 & 255}.{addr >> 16 & 255}.{addr >> 8 & 255}.{addr & 255}"


class RouteFlags(enum.IntFlag):
    """Route flags (``RTF_*``); the values are vrc's own."""

    NONE = 0
    UP = 0x1
    GATEWAY = 0x2  # next hop is ``gateway``; otherwise the destination is on-link
    HOST = 0x4  # a host route (the /32 of a point-to-point peer or loopback)
    REJECT = 0x8
    BLACKHOLE = 0x10
    STATIC = 0x20  # configured, never removed by a routing protocol
    LLINFO = 0x40  # a link-layer (ARP) entry seen through the routing socket
    LOCAL = 0x80  # loopback route to one of our own addresses: deliver locally
    MULTIPATH = 0x100  # one of several routes to the same prefix
    ECMP = 0x200  # several next hops (Route.nexthops): a flow hash picks one


@dataclass(slots=True, eq=False)
class Route:
    """One route (``struct rtentry``).

    ``ifaddr`` is the interface address the route belongs to (an
    ``router.inet.domain.InAddr``: the owner of a connected or loopback route,
    the address a configured route was added through, the seed's
    ``rt_ifa``; None if there is none) and ``source`` the preferred source
    address, 0 if none.
    ``installed`` turns False when the route leaves the table, so an owner
    holding a reference can tell that someone else removed it.
    """

    prefix: int
    plen: int
    ifindex: int
    flags: RouteFlags = RouteFlags.UP
    gateway: int = 0
    source: int = 0
    ifaddr: Any = None
    ifname: str = ""
    family: int = AF_INET
    installed: bool = False
    # two or more legs of a multipath gateway route (flag ECMP; router.inet.multipath);
    # ifindex/gateway/ifname are the first leg's. Empty for any other route.
    nexthops: tuple[NextHop, ...] = ()
    is_local: bool = field(init=False)  # LOCAL flag, kept as a bool for the hot paths
    # ``flags`` as a plain int for per-packet tests against int constants
    # (``RouteFlags`` operators run in Python); RouteTable keeps it in step.
    bits: int = field(init=False)

    def __post_init__(self) -> None:
        self.bits = int(self.flags)
        self.is_local = bool(self.bits & _LOCAL)

    @property
    def mask(self) -> int:
        return plen_to_mask(self.plen)

    @property
    def is_configured(self) -> bool:
        """Added by someone (a STATIC route), not brought by an address (its prefix
        route or its local route). ``ifaddr`` cannot tell: a configured route also
        names the address it goes through."""
        return bool(self.bits & _STATIC) and not self.is_local

    def describe(self) -> dict[str, Any]:
        """Plain values for a routing message or an API listing."""
        described = {
            "dst": ntoa(self.prefix),
            "plen": self.plen,
            "gateway": ntoa(self.gateway),
            "source": ntoa(self.source),
            "flags": _flag_names(self.flags),
        }
        if self.nexthops:
            described["nexthops"] = ",".join(f"{ntoa(h.gateway)}%{h.ifname}"
                                             for h in self.nexthops)
        return described

    @property
    def ifindexes(self) -> tuple[int, ...]:
        """The interfaces the route leaves by: its legs', or its own."""
        if self.nexthops:
            return tuple(dict.fromkeys(h.ifindex for h in self.nexthops))
        return (self.ifindex,)

    def __repr__(self) -> str:
        return (
            f"<Route {ntoa(self.prefix)}/{self.plen} if={self.ifindex} "
            f"gw={ntoa(self.gateway)} src={ntoa(self.source)} {_flag_names(self.flags)}>"
        )


_STATIC = int(RouteFlags.STATIC)
_LOCAL = int(RouteFlags.LOCAL)


def _flag_names(flags: RouteFlags) -> str:
    return flags.name or "NONE"


def _no_emit(event: Event) -> None:
    del event


_CacheEntry = tuple[int, int, Route | None]


class RouteTable:
    """Longest-prefix-match table over IPv4 ints, with routing messages.

    A prefix may hold several routes: a ``LOCAL`` route (delivery to one of our
    own addresses) may share its key with a connected route (an address
    configured as a /32 on a broadcast interface is both), and with
    ``multipath=True`` several non-local routes may share a prefix as long as
    they differ in interface, gateway or source. Lookups return the first
    route of the longest matching prefix: the ``LOCAL`` one if there is one,
    else the oldest.
    """

    __slots__ = ("_by_ifindex", "_cache", "_count", "_emit", "_levels", "_name_of", "_tables",
                 "generation")

    def __init__(self, emit: Emit | None = None,
                 name_of: Callable[[int], str | None] | None = None) -> None:
        self._emit: Emit = emit or _no_emit
        self._name_of = name_of  # an interface's name for messages (else ifN)
        # plen -> {masked prefix -> routes}; a bucket is never left empty.
        self._tables: dict[int, dict[int, list[Route]]] = {}
        # (mask, bucket) for every length in use, longest first: the lookup path.
        self._levels: list[tuple[int, dict[int, list[Route]]]] = []
        # ifindex -> routes over it (an ordered set: dict keys).
        self._by_ifindex: dict[int, dict[Route, None]] = {}
        self._cache: dict[int, _CacheEntry] = {}
        self._count = 0
        self.generation = 0

    # -- queries ---------------------------------------------------------

    def lookup(self, addr: int) -> Route | None:
        """Longest prefix match; the per-packet path."""
        for mask, bucket in self._levels:
            routes = bucket.get(addr & mask)
            if routes is not None:
                return routes[0]
        return None

    def lookup_all(self, addr: int) -> tuple[Route, ...]:
        """Every route of the longest matching prefix (all multipath legs)."""
        for mask, bucket in self._levels:
            routes = bucket.get(addr & mask)
            if routes is not None:
                return tuple(routes)
        return ()

    def cached_lookup(self, ifindex: int, addr: int) -> Route | None:
        """Lookup with a one-entry cache per interface (``ifnet_cached_rtlookup_inet``).

        The cached answer is reused while the destination and the table
        generation are unchanged; any change to the table invalidates every
        cache at once.
        """
        entry = self._cache.get(ifindex)
        if entry is not None and entry[0] == addr and entry[1] == self.generation:
            return entry[2]
        route = self.lookup(addr)
        self._cache[ifindex] = (addr, self.generation, route)
        return route

    def get(self, prefix: int, plen: int) -> tuple[Route, ...]:
        """The routes of exactly ``prefix/plen`` (no longest-match)."""
        bucket = self._tables.get(plen)
        if bucket is None:
            return ()
        return tuple(bucket.get(prefix & plen_to_mask(plen), ()))

    def routes(self) -> list[Route]:
        """Every route, ordered by prefix then length (the API listing)."""
        found = [r for bucket in self._tables.values() for rs in bucket.values() for r in rs]
        found.sort(key=lambda r: (r.prefix, r.plen))
        return found

    def routes_of(self, ifindex: int) -> list[Route]:
        return list(self._by_ifindex.get(ifindex, ()))

    def __len__(self) -> int:
        return self._count

    # -- changes ---------------------------------------------------------

    def add(
        self,
        prefix: int,
        plen: int,
        *,
        ifindex: int,
        flags: RouteFlags = RouteFlags.UP,
        gateway: int = 0,
        source: int = 0,
        ifaddr: Any = None,
        ifname: str = "",
        multipath: bool = False,
        family: int = AF_INET,
        nexthops: tuple[NextHop, ...] = (),
    ) -> Route:
        """Insert a route; ``EEXIST`` if the prefix already has one of its kind.

        With ``multipath`` a non-local route joins the existing ones (marked
        ``MULTIPATH``) unless one of them has the same interface, gateway and
        source, which is still ``EEXIST``. Host bits of ``prefix`` are
        ignored, as the kernel masks the destination. Two or more
        ``nexthops`` make one ``ECMP`` gateway route over them (its
        ``ifindex``, ``gateway`` and ``ifname`` are then the first's).
        """
        if not 0 <= plen <= MAX_PLEN:
            raise RouterError(EINVAL, "plen", plen, f"route {ntoa(prefix)}/{plen}")
        prefix &= plen_to_mask(plen)
        if len(nexthops) > 1:
            first = nexthops[0]
            ifindex, gateway, ifname = first.ifindex, first.gateway, first.ifname
            flags |= RouteFlags.GATEWAY | RouteFlags.ECMP
        else:
            nexthops = ()
        route = Route(prefix, plen, ifindex, RouteFlags(flags | RouteFlags.UP), gateway,
                      source, ifaddr, ifname, family, nexthops=nexthops)
        bucket = self._tables.get(plen)
        routes = bucket.get(prefix) if bucket is not None else None
        if routes is None:
            self._insert_first(route)
        else:
            self._join(routes, route, multipath)
        self._indexed(route)
        self._changed(EventKind.RTM_ADD, route)
        return route

    def delete(
        self,
        prefix: int,
        plen: int,
        *,
        ifindex: int | None = None,
        gateway: int | None = None,
        local: bool | None = None,
    ) -> Route:
        """Remove the first route of ``prefix/plen`` matching the selectors; ``ESRCH`` if none."""
        for route in self.get(prefix, plen):
            if ifindex is not None and route.ifindex != ifindex:
                continue
            if gateway is not None and route.gateway != gateway:
                continue
            if local is not None and route.is_local != local:
                continue
            self.remove(route)
            return route
        raise RouterError(ESRCH, "route", f"{ntoa(prefix)}/{plen}",
                          f"route {ntoa(prefix)}/{plen}")

    def remove(self, route: Route) -> bool:
        """Remove this very route; False if it is no longer in the table."""
        if not route.installed:
            return False
        bucket = self._tables[route.plen]
        routes = bucket[route.prefix]
        routes.remove(route)
        if not routes:
            del bucket[route.prefix]
            if not bucket:
                del self._tables[route.plen]
                self._rebuild_levels()
        self._unindexed(route)
        route.installed = False
        self._count -= 1
        self._changed(EventKind.RTM_DELETE, route)
        return True

    def change(self, route: Route, *, ifaddr: Any, source: int, ifindex: int | None = None,
               ifname: str | None = None) -> None:
        """Point an installed route at another owner (``RTM_CHANGE``)."""
        if not route.installed:
            raise RouterError(ESRCH, "route", f"{ntoa(route.prefix)}/{route.plen}")
        if ifindex is not None and ifindex != route.ifindex:
            on_if = self._by_ifindex[route.ifindex]
            del on_if[route]
            if not on_if:
                del self._by_ifindex[route.ifindex]
            route.ifindex = ifindex
            self._by_ifindex.setdefault(ifindex, {})[route] = None
        if ifname is not None:
            route.ifname = ifname
        route.ifaddr = ifaddr
        route.source = source
        self._changed(EventKind.RTM_CHANGE, route)

    def set_nexthops(self, route: Route, nexthops: tuple[NextHop, ...]) -> None:
        """Give an installed gateway route another set of legs, in one change.

        One leg makes it an ordinary gateway route, several an ``ECMP`` one.
        The route stays in the table throughout (one generation bump, one
        ``RTM_CHANGE``), so no lookup ever finds the prefix unrouted.
        """
        if not route.installed:
            raise RouterError(ESRCH, "route", f"{ntoa(route.prefix)}/{route.plen}")
        if not nexthops:
            raise RouterError(EINVAL, "nexthops", "", f"route {ntoa(route.prefix)}/{route.plen}")
        self._unindexed(route)
        first = nexthops[0]
        route.gateway, route.ifindex, route.ifname = first.gateway, first.ifindex, first.ifname
        route.nexthops = nexthops if len(nexthops) > 1 else ()
        route.flags |= RouteFlags.GATEWAY
        if route.nexthops:
            route.flags |= RouteFlags.ECMP
        else:
            route.flags &= ~RouteFlags.ECMP
        route.bits = int(route.flags)
        for ifindex in route.ifindexes:
            self._by_ifindex.setdefault(ifindex, {})[route] = None
        self._changed(EventKind.RTM_CHANGE, route)

    def remove_interface(self, ifindex: int, family: int = AF_INET) -> list[Route]:
        """Remove every route of ``family`` over ``ifindex`` (``if_rtproto_del``).

        A multipath route loses its legs over ``ifindex`` and stays while it
        has others (``RTM_CHANGE``); it goes (and is returned) with its last.
        """
        doomed = []
        for route in [r for r in self._by_ifindex.get(ifindex, ()) if r.family == family]:
            remaining = tuple(h for h in route.nexthops if h.ifindex != ifindex)
            if remaining:
                self.set_nexthops(route, remaining)
            else:
                self.remove(route)
                doomed.append(route)
        self._cache.pop(ifindex, None)
        return doomed

    # -- internals -------------------------------------------------------

    def _insert_first(self, route: Route) -> None:
        bucket = self._tables.get(route.plen)
        if bucket is None:
            bucket = self._tables[route.plen] = {}
            self._rebuild_levels()
        bucket[route.prefix] = [route]

    def _join(self, routes: list[Route], route: Route, multipath: bool) -> None:
        """Add ``route`` to a prefix that already has routes (see :meth:`add`)."""
        if route.is_local:
            if routes[0].is_local:
                raise self._exists(route)
            routes.insert(0, route)
            return
        peers = [r for r in routes if not r.is_local]
        if peers and not multipath:
            raise self._exists(route)
        for peer in peers:
            if (peer.ifindex, peer.gateway, peer.source) == (
                route.ifindex, route.gateway, route.source
            ):
                raise self._exists(route)
        if peers:
            route.flags |= RouteFlags.MULTIPATH
            route.bits = int(route.flags)
        routes.append(route)

    def _exists(self, route: Route) -> RouterError:
        where = f"{ntoa(route.prefix)}/{route.plen}"
        name = self._name_of(route.ifindex) if self._name_of is not None else None
        return RouterError(EEXIST, "route", where,
                           f"route {where} on {name or f'if{route.ifindex}'}")

    def _indexed(self, route: Route) -> None:
        route.installed = True
        self._count += 1
        for ifindex in route.ifindexes:
            self._by_ifindex.setdefault(ifindex, {})[route] = None

    def _unindexed(self, route: Route) -> None:
        for ifindex in route.ifindexes:
            on_if = self._by_ifindex[ifindex]
            del on_if[route]
            if not on_if:
                del self._by_ifindex[ifindex]

    def _rebuild_levels(self) -> None:
        self._levels = [
            (plen_to_mask(plen), self._tables[plen]) for plen in sorted(self._tables, reverse=True)
        ]

    def _changed(self, kind: EventKind, route: Route) -> None:
        self.generation += 1
        if self._emit is not _no_emit:
            self._emit(Event(kind, route.ifname, route.ifindex, route.describe()))

"""The per-interface IPv4 neighbour table (the lltable half of FreeBSD ``in.c``).

One :class:`LlTable` per interface maps an IPv4 address (an ``int``) to an
:class:`LlEntry`. The table keeps the seed's rules — entries are created only
where a route covers the address (:meth:`LlTable.rtcheck`), interface-address
entries skip that check and carry our own MAC, deleted entries are invisible,
a prefix flush spares static entries unless asked — while the ARP protocol
(``router/arp/protocol.py``) drives the reachability state of each entry.

The seed hashes entries into buckets and marks deleted ones in place; here a
dict keyed by address holds the live entries and a deleted entry leaves the
dict at once (so no lookup can see it) and waits in ``dying`` until the next
:meth:`LlTable.reap` frees it, unless it is a plain static entry, which the
seed frees on the spot.

The table knows routes only through an injected ``route_lookup`` returning
something shaped like :class:`RouteLike`, and the interface's own prefixes
through an injected ``on_link``; it never imports the route table or
address control.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from router.errors import EEXIST, EINVAL, EPERM, ESRCH
from router.link.ifnet import IfFlags, IfType, Interface

ALL_ONES = 0xFFFFFFFF


class RouteBits(enum.IntFlag):
    """The route flag bits the rtcheck reads; equal to ``router.inet.route.RouteFlags``."""

    UP = 0x1
    GATEWAY = 0x2
    HOST = 0x4


class RouteLike(Protocol):
    """What the table reads from a route (``router.inet.route.Route`` fits)."""

    @property
    def prefix(self) -> int: ...

    @property
    def plen(self) -> int: ...

    @property
    def flags(self) -> int: ...

    @property
    def ifindex(self) -> int: ...

    @property
    def gateway(self) -> int: ...


RouteLookup = Callable[[int], RouteLike | None]
InterfaceOf = Callable[[int], Interface | None]
#: ``on_link(ifp, addr)``: is ``addr`` on the subnet of one of ``ifp``'s own addresses?
OnLink = Callable[[Interface, int], bool]


def never_on_link(ifp: Interface, addr: int) -> bool:
    """The ``on_link`` of a table that knows no addresses: nothing is on another's prefix."""
    del ifp, addr
    return False


class LleFlags(enum.IntFlag):
    """Entry flags (the seed's ``LLE_*``)."""

    NONE = 0
    VALID = 0x1  # the link-layer address is known
    STATIC = 0x2  # configured: never changed by received ARP, never expires
    PUB = 0x4  # published: we answer requests for it (proxy ARP)
    IFADDR = 0x8  # one of our own addresses: static, our MAC
    DELETED = 0x10  # unlinked: invisible to lookups, freed later


class NudState(enum.Enum):
    """Reachability state of an entry (RFC 4861 section 7.3.2, as Linux runs it for ARP).

    ``NONE`` is "no entry" (the start and end of the transition table);
    ``PERMANENT`` marks static and interface-address entries, which sit
    outside the state machine.
    """

    NONE = "NONE"
    INCOMPLETE = "INCOMPLETE"
    REACHABLE = "REACHABLE"
    STALE = "STALE"
    DELAY = "DELAY"
    PROBE = "PROBE"
    FAILED = "FAILED"
    PERMANENT = "PERMANENT"


# States in which a packet may leave at once without any transition.
READY_STATES = frozenset({NudState.REACHABLE, NudState.DELAY, NudState.PROBE,
                          NudState.PERMANENT})
# Entries without a usable MAC: resolving, or failed and held down. A table
# bounds them on their own (``LlTable.unresolved``).
UNRESOLVED_STATES = frozenset({NudState.INCOMPLETE, NudState.FAILED})


@dataclass(slots=True, eq=False)
class LlEntry:
    """One neighbour (``struct llentry``).

    ``ready`` mirrors ``state in READY_STATES`` so the per-packet check is one
    attribute read. ``timer_at``/``timer_token`` belong to the ARP timer heap:
    a heap item whose token is not the entry's current one is stale.
    """

    addr: int
    ifp: Interface
    flags: LleFlags = LleFlags.NONE
    state: NudState = NudState.NONE
    lladdr: bytes = b""
    ready: bool = False
    hold: deque[bytes] = field(default_factory=deque)
    probes: int = 0
    timer_at: float = 0.0
    timer_token: int = 0
    reachable_until: float = 0.0
    updated: float = 0.0
    freed: bool = False

    @property
    def static(self) -> bool:
        return bool(self.flags & LleFlags.STATIC)

    @property
    def expire(self) -> float:
        """``la_expire`` as the dump shows it: 0 for static entries."""
        if self.flags & LleFlags.STATIC:
            return 0.0
        if self.state is NudState.REACHABLE:
            return self.reachable_until
        return self.timer_at

    def set_state(self, state: NudState) -> None:
        self.state = state
        self.ready = state in READY_STATES


@dataclass(slots=True, frozen=True)
class LlInfo:
    """One dumped entry (the seed's ``rt_msghdr`` + ``sockaddr_in`` + ``sockaddr_dl``)."""

    ifindex: int
    ifname: str
    iftype: int
    addr: int
    lladdr: bytes  # empty unless VALID
    static: bool
    published: bool
    valid: bool
    ifaddr: bool
    state: str
    expire: float  # 0 for static entries


class LlTable:
    """The ARP table of one interface (``struct lltable`` for ``AF_INET``).

    ``generation`` is bumped by whoever changes an entry's state or MAC, or
    adds or removes one, so a next-hop cache can tell it is stale. ``dynamic``
    counts the entries the garbage collector may take (neither static nor
    interface addresses). ``ifaddrs`` holds the interface-address entries
    (our own addresses, in the order added). ``unresolved`` holds the entries in
    ``UNRESOLVED_STATES``, oldest first: the reachability machine enters and
    leaves them as states change, :meth:`unlink` forgets them.
    """

    __slots__ = ("_interface_of", "_on_link", "_route_lookup", "dying", "dynamic", "entries",
                 "generation", "ifaddrs", "ifp", "unresolved")

    def __init__(self, ifp: Interface, route_lookup: RouteLookup,
                 interface_of: InterfaceOf, on_link: OnLink = never_on_link) -> None:
        self.ifp = ifp
        self.entries: dict[int, LlEntry] = {}
        self.dying: list[LlEntry] = []
        self.generation = 0
        self.dynamic = 0
        self.unresolved: dict[LlEntry, None] = {}
        self.ifaddrs: dict[int, LlEntry] = {}
        self._route_lookup = route_lookup
        self._interface_of = interface_of
        self._on_link = on_link

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, addr: int) -> LlEntry | None:
        """``in_lltable_lookup`` without create/delete: deleted entries are never found."""
        return self.entries.get(addr)

    def ready_lladdr(self, addr: int) -> bytes | None:
        """The MAC of a usable entry, or None: the fast path's one lookup and state check.

        A caller holding the table skips ``Arp.resolve``'s table lookup; on
        None it must go through ``Arp.resolve`` (which may hold the packet).
        """
        entry = self.entries.get(addr)
        return entry.lladdr if entry is not None and entry.ready else None

    def rtcheck(self, addr: int) -> int:
        """``in_lltable_rtcheck``: may an entry for ``addr`` exist on this interface?

        No route → ``EINVAL``. A gateway route is acceptable only if it is a
        host route whose gateway is the address itself, through an Ethernet
        interface that does ARP (neither NOARP nor STATICARP). When the
        covering route is a non-host route through another interface, the
        address must be on one of this interface's own prefixes: two
        interfaces may share a prefix (the route names only one of them),
        but another interface's subnet is not this one's neighbourhood.

        The seed compares the address with the key of the very route that
        matched it, which always passes; its comment states the rule above,
        and later FreeBSD checks it against the interface's own address
        (``ifaof_ifpforaddr``), as here.
        """
        route = self._route_lookup(addr)
        if route is None:
            return EINVAL
        flags = route.flags
        if flags & RouteBits.GATEWAY and not self._gateway_route_is_neighbour(route, addr):
            return EINVAL
        if (not flags & RouteBits.HOST and route.ifindex != self.ifp.index
                and not self._on_link(self.ifp, addr)):
            return EINVAL
        return 0

    def _gateway_route_is_neighbour(self, route: RouteLike, addr: int) -> bool:
        """The seed's MANET exception: a host route whose gateway is the target."""
        if not route.flags & RouteBits.HOST or route.gateway != addr:
            return False
        rifp = self._interface_of(route.ifindex)
        if rifp is None or rifp.type != IfType.ETHER:
            return False
        return not rifp.flags & (IfFlags.NOARP | IfFlags.STATICARP)

    def create(self, addr: int, flags: LleFlags = LleFlags.NONE,
               now: float = 0.0) -> tuple[int, LlEntry | None]:
        """``in_lltable_lookup`` with ``LLE_CREATE``: find or make the entry for ``addr``.

        An existing entry is returned unchanged. A new one needs the rtcheck
        unless it is an interface-address entry, which is born valid and
        static with the interface's own MAC. Returns ``(0, entry)`` or
        ``(errno, None)``.
        """
        entry = self.entries.get(addr)
        if entry is not None:
            return 0, entry
        if not flags & LleFlags.IFADDR:
            error = self.rtcheck(addr)
            if error:
                return error, None
        entry = LlEntry(addr, self.ifp, flags & ~LleFlags.DELETED, updated=now)
        if flags & LleFlags.IFADDR:
            entry.lladdr = bytes(self.ifp.lladdr)
            entry.flags |= LleFlags.VALID | LleFlags.STATIC
            self.ifaddrs[addr] = entry
        if entry.flags & LleFlags.STATIC:
            entry.set_state(NudState.PERMANENT)
        else:
            self.dynamic += 1
        self.entries[addr] = entry
        self.generation += 1
        return 0, entry

    def make_static(self, entry: LlEntry, lladdr: bytes, published: bool) -> int:
        """Turn ``entry`` into a static (optionally published) one; ``EEXIST`` for our own."""
        if entry.flags & LleFlags.IFADDR:
            return EEXIST
        if not entry.flags & LleFlags.STATIC:
            self.dynamic -= 1
        self.unresolved.pop(entry, None)
        entry.flags |= LleFlags.STATIC | LleFlags.VALID
        entry.flags = entry.flags | LleFlags.PUB if published else entry.flags & ~LleFlags.PUB
        entry.lladdr = bytes(lladdr)
        entry.set_state(NudState.PERMANENT)
        entry.timer_token += 1  # any pending timer is now stale
        entry.timer_at = 0.0
        self.generation += 1
        return 0

    def delete(self, addr: int, flags: LleFlags = LleFlags.NONE) -> tuple[int, LlEntry | None]:
        """``in_lltable_lookup`` with ``LLE_DELETE``.

        Absent → ``ESRCH``. An interface-address entry goes only when the
        request carries ``IFADDR``; otherwise it stays and the answer is
        ``EPERM`` (the seed ignores such a request silently). A deleted entry
        is invisible at once; a static entry that is not an interface address
        is freed on the spot, any other waits in ``dying`` for :meth:`reap`.
        """
        entry = self.entries.get(addr)
        if entry is None:
            return ESRCH, None
        if entry.flags & LleFlags.IFADDR and not flags & LleFlags.IFADDR:
            return EPERM, entry
        self.unlink(entry)
        if entry.flags & (LleFlags.STATIC | LleFlags.IFADDR) == LleFlags.STATIC:
            self.free_entry(entry)
        else:
            self.dying.append(entry)
        return 0, entry

    def unlink(self, entry: LlEntry) -> None:
        """Take ``entry`` out of the table: marked deleted, its timer stale."""
        if self.entries.get(entry.addr) is entry:
            del self.entries[entry.addr]
            if not entry.flags & LleFlags.STATIC:
                self.dynamic -= 1
            self.unresolved.pop(entry, None)
            if entry.flags & LleFlags.IFADDR:
                del self.ifaddrs[entry.addr]
            self.generation += 1
        entry.flags |= LleFlags.DELETED
        entry.timer_token += 1
        entry.timer_at = 0.0
        entry.ready = False

    @staticmethod
    def free_entry(entry: LlEntry) -> int:
        """``in_lltable_free``: release the entry; returns how many held packets it dropped."""
        dropped = len(entry.hold)
        entry.hold.clear()
        entry.freed = True
        return dropped

    def reap(self) -> int:
        """Free the deleted entries still waiting; returns held packets dropped."""
        dropped = 0
        for entry in self.dying:
            dropped += self.free_entry(entry)
        self.dying.clear()
        return dropped

    def prefix_free(
        self, prefix: int, mask: int, include_static: bool, keep_ifaddr: bool = False
    ) -> list[LlEntry]:
        """``in_lltable_prefix_free``: drop the entries on ``prefix/mask``.

        Static entries (interface addresses included) go only with
        ``include_static``; ``keep_ifaddr`` spares interface-address entries
        even then. Returns the unlinked entries; the caller frees them
        (:meth:`free_entry`) and counts their held packets.
        """
        doomed = [
            entry for entry in self.entries.values()
            if (entry.addr ^ prefix) & mask == 0 and (include_static or not entry.static)
            and not (keep_ifaddr and entry.flags & LleFlags.IFADDR)
        ]
        for entry in doomed:
            self.unlink(entry)
        return doomed

    def dump(self) -> list[LlInfo]:
        """``in_lltable_dump``: every live entry with its flags and expiry (0 if static)."""
        ifp = self.ifp
        return [
            LlInfo(
                ifindex=ifp.index,
                ifname=ifp.name,
                iftype=int(ifp.type),
                addr=entry.addr,
                lladdr=entry.lladdr if entry.flags & LleFlags.VALID else b"",
                static=entry.static,
                published=bool(entry.flags & LleFlags.PUB),
                valid=bool(entry.flags & LleFlags.VALID),
                ifaddr=bool(entry.flags & LleFlags.IFADDR),
                state=entry.state.value,
                expire=entry.expire,
            )
            for entry in self.entries.values()
        ]

    def free(self) -> list[LlEntry]:
        """``lltable_free``: unlink every entry; returns them and the dying ones, to be freed."""
        every = list(self.entries.values())
        for entry in every:
            self.unlink(entry)
        every.extend(self.dying)
        self.dying = []
        return every

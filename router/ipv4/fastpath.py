"""The forwarding fast path: cached next hops in front of the generic path.

For a unicast IPv4 frame that will simply be forwarded, the generic path
runs demux, the protocol input, the header checks, a route lookup, ARP and
the framer. The fast path does the same observable work with a cache: per
ingress interface, destination address (4 bytes) → prebuilt 14-byte
Ethernet header (next hop MAC + our MAC + 0x0800), output interface, its MTU
and counters.

**What a frame needs to take it**: Ethernet type 0x0800, IHL 5, addressed to
the ingress interface's MAC, TTL above 1, a source that the generic path
would not drop (not 0/8, 127/8 or 224/3, not one of our own addresses), a
total length that fits the frame and the output MTU (or, for a GSO
super-frame, segments that fit it: ``router.offload``), a correct header
checksum, and a cache entry.
Everything else — ARP, ICMP, local traffic, broadcasts, options, fragments
to fragment, TTL expiry, bad headers — goes to the generic path unchanged,
in order: frames are handed over in runs, and a run is flushed before the
next fast frame is sent, so the transmit queue sees frames in arrival order.

**When an entry is made**: only when the generic path would forward the
packet with no side effect on the way: destination not ours, not a
broadcast of either interface, forwardable; a route that is neither LOCAL,
REJECT nor BLACKHOLE through an UP Ethernet interface; a next hop whose ARP
entry is usable *without* ``Arp.resolve`` (``LlTable.ready_lladdr``).

**Multipath routes** (``ECMP``): a destination under one is never put in
that cache, so single-path frames run exactly the code they would without
multipath. On a cache miss a second dict is consulted — destination → a
:class:`Spread` (the route's legs with their prebuilt entries) — and the
leg is the one the generic path would pick for the frame's flow
(``router.inet.multipath``: the same functions on the same bytes),
remembered per flow hash. A leg whose entry cannot be made without side
effects (ARP not resolved) sends its frames the generic way, which picks
the same leg.

**Invalidation**: the whole cache is dropped when the route table's
generation, or the generation of any interface or of its ARP table, has
changed (checked once per batch, and again after each run handed to the
generic path, since that run may have changed an ARP entry). Generations
only grow, so comparing them is exact.

**Offloaded frames** (``router.offload.OffloadFrame``) keep their
description through the rewrite; out of an interface without
``Interface.offload`` the work is done here (checksum, segments) and the
pieces are queued. Out of one with it, a frame of ``SPLICE_MIN`` bytes or
more (a GSO super-frame) is queued as a ``SplicedFrame``: the new 26-byte
head and a view of the received frame's rest, never joined in Python (the
driver sends both pieces). The type check costs 232 instructions a frame (+2%).

**Same observations**: the fast path is used only on interfaces with no
interface filter and no tap, in and out (opening a tap bumps the interface
generation); it updates the counters the generic path would — input
packets/bytes, IPv4 received/forwarded, output packets/bytes — and appends
the frame the framer would have built to the same transmit queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from router.inet.multipath import choose, flow_hash
from router.inet.route import Route, RouteFlags
from router.link.ifnet import AF_INET, IfCounters, IfFamily, IfFlags, Interface
from router.offload import (
    SPLICE_MIN,
    OffloadError,
    OffloadFrame,
    Outgoing,
    SplicedFrame,
    finish,
    segments_fit,
)
from router.wire.checksum import TTL_DECREMENT_CHECKSUM

if TYPE_CHECKING:
    from router.arp.protocol import Arp
    from router.inet.domain import InetDomain
    from router.inet.route import RouteTable
    from router.ipv4.input import Ipv4
    from router.link.datalink import DataLink
    from router.ng.tap import Taps

_NOT_FAST_ROUTE = int(RouteFlags.LOCAL | RouteFlags.REJECT | RouteFlags.BLACKHOLE)
_ECMP = int(RouteFlags.ECMP)
_FLOW_MEMORY = 65536  # flows remembered per spread before the memory starts over
_GATEWAY = int(RouteFlags.GATEWAY)
_UP = int(IfFlags.UP)
_ETHERNET = IfFamily.ETHERNET  # an enum member read from the class costs 0.2 us on 3.11
_IPV4_IHL5 = b"\x08\x00\x45"  # ethertype 0x0800, version 4, IHL 5
_ETHERTYPE_IPV4 = b"\x08\x00"
_REWRITE_LIMIT = 65536
_OFFLOAD = OffloadFrame

#: A cache entry: (prebuilt link header, output ifindex, output MTU, output counters,
#: whether the output interface hands offload work on).
Entry = tuple[bytes, int, int, IfCounters, bool]


class Spread:
    """A destination under a multipath route, seen from one ingress interface:
    per leg its entry (None: the generic path must send it), per flow its leg."""

    __slots__ = ("entries", "flows", "route", "usable")

    def __init__(self, route: Route, entries: list[Entry | None],
                 usable: Callable[..., bool]) -> None:
        self.route = route
        self.entries = entries
        self.usable = usable
        self.flows: dict[bytes, Entry | None] = {}

    def entry_for(self, frame: bytes) -> Entry | None:
        """The entry of the leg the frame's flow takes (the generic path's choice).

        Remembered by the bytes the flow hash reads — fragment bits, protocol,
        addresses and the 4 bytes where TCP and UDP ports are (TTL comes
        along, harmlessly) — so a known flow costs two slices and a probe.
        A datagram too short to carry ports is never remembered: its hash
        ignores those bytes, a longer one's would not.
        """
        key = frame[20:24] + frame[26:38]
        flows = self.flows
        entry = flows.get(key, _UNSEEN)
        if entry is not _UNSEEN:
            return entry  # type: ignore[return-value]
        legs = self.route.nexthops
        found = self.entries[legs.index(choose(legs, flow_hash(frame, 14), self.usable))]
        if (frame[16] << 8 | frame[17]) >= 24:
            if len(flows) >= _FLOW_MEMORY:
                flows.clear()
            flows[key] = found
        return found


_UNSEEN = object()


class FastPath:
    """The fast path of one engine. ``transmit`` is the engine's transmit queue."""

    __slots__ = (
        "_arp", "_caches", "_dl", "_inet", "_ipv4", "_key", "_rewrites", "_routes", "_spreads",
        "_taps", "_transmit", "hits",
    )

    def __init__(self, *, dl: DataLink, routes: RouteTable, inet: InetDomain, arp: Arp,
                 ipv4: Ipv4, taps: Taps, transmit: list[tuple[int, Outgoing]]) -> None:
        self._dl = dl
        self._routes = routes
        self._inet = inet
        self._arp = arp
        self._ipv4 = ipv4
        self._taps = taps
        self._transmit = transmit
        self._caches: dict[int, dict[bytes, Entry]] = {}
        self._spreads: dict[int, dict[bytes, Spread]] = {}
        self._key: list[int] = []
        # (TTL, protocol, checksum) as on the wire -> the same 4 bytes after TTL - 1
        self._rewrites: dict[bytes, bytes] = {}
        self.hits = 0

    # -- validity --------------------------------------------------------

    def _state_key(self) -> list[int]:
        # built once per batch: a flat list, no comprehension frame or nested tuples
        generation = self._arp.generation
        key = [self._routes.generation]
        for ifp in self._dl.interfaces():
            key += (ifp.index, ifp.generation, generation(ifp))
        return key

    def _revalidate(self) -> None:
        key = self._state_key()
        if key != self._key:
            self._caches.clear()
            self._spreads.clear()
            self._key = key

    def usable_on(self, ifp: Interface) -> bool:
        """May frames of ``ifp`` (or frames leaving by it) take the fast path?"""
        return (ifp.family is _ETHERNET and not ifp.filters
                and not self._taps.is_tapped(ifp) and AF_INET in ifp.protocols
                and self._ipv4.config.forwarding)

    def entries(self, ifp: Interface) -> int:
        """Cached destinations for frames arriving on ``ifp`` (tests and metrics)."""
        return len(self._caches.get(ifp.index, ()))

    # -- entries ---------------------------------------------------------

    def _build(self, ifp: Interface, dst_key: bytes) -> Entry | None:
        """A cache entry for ``dst_key`` arriving on ``ifp``, or None when the generic
        path has work to do for it (see the module docstring)."""
        dst = int.from_bytes(dst_key, "big")
        inet = self._inet
        if inet.local_ip(dst) or inet.is_broadcast(dst, ifp) or not inet.can_forward(dst):
            return None
        route = self._routes.lookup(dst)
        if route is None or route.bits & _NOT_FAST_ROUTE:  # Route.bits: flags as a plain int
            return None
        if route.bits & _ECMP:
            entries = [self._entry(dst, leg.ifindex, leg.gateway) for leg in route.nexthops]
            spread = Spread(route, entries, self._ipv4.leg_usable)
            self._spreads.setdefault(ifp.index, {})[dst_key] = spread
            return None
        entry = self._entry(dst, route.ifindex, route.gateway if route.bits & _GATEWAY else dst)
        if entry is not None:
            self._caches.setdefault(ifp.index, {})[dst_key] = entry
        return entry

    def _entry(self, dst: int, ifindex: int, next_hop: int) -> Entry | None:
        """The entry for ``dst`` leaving by ``ifindex`` toward ``next_hop``, if it can
        be made without side effects."""
        out = self._dl.lookup(ifindex)
        if out is None or not out.flags & _UP or not self.usable_on(out):
            return None
        if self._inet.is_broadcast(dst, out):
            return None
        table = self._arp.table(out)
        mac = table.ready_lladdr(next_hop) if table is not None else None
        if mac is None:
            return None
        return (mac + out.lladdr + _ETHERTYPE_IPV4, out.index, out.mtu, out.counters,
                out.offload)

    def _miss(self, ifp: Interface, dst_key: bytes, frame: bytes) -> Entry | None:
        """No cached entry for the destination: a multipath one's leg for this
        frame, else a new entry (None: the generic path has work to do)."""
        spreads = self._spreads.get(ifp.index)
        spread = spreads.get(dst_key) if spreads is not None else None
        if spread is None:
            entry = self._build(ifp, dst_key)
            if entry is not None:
                return entry
            spreads = self._spreads.get(ifp.index)
            spread = spreads.get(dst_key) if spreads is not None else None
            if spread is None:
                return None
        return spread.entry_for(frame)

    def _rewrite(self, old: bytes) -> bytes:
        """TTL - 1 and the RFC 1624 checksum, for the 4 bytes TTL..checksum."""
        checksum = TTL_DECREMENT_CHECKSUM[(old[2] << 8) | old[3]]
        new = bytes((old[0] - 1, old[1], checksum >> 8, checksum & 0xFF))
        if len(self._rewrites) >= _REWRITE_LIMIT:
            self._rewrites.clear()
        self._rewrites[old] = new
        return new

    # -- the per-frame loop ----------------------------------------------

    def receive(self, ifp: Interface, frames: Sequence[bytes],
                generic: Callable[[Interface, list[bytes]], None]) -> None:
        """Forward what can be forwarded here; hand the rest to ``generic`` in runs."""
        self._revalidate()
        if not self.usable_on(ifp):
            generic(ifp, list(frames))
            return
        cache = self._caches.get(ifp.index)
        if cache is None:
            cache = self._caches[ifp.index] = {}
        mac = ifp.lladdr
        index = self._inet.index
        own = index.value_keys  # our addresses as header bytes: martian sources
        own_last = index.value_last_octets  # ... and their last octets, the cheap test first
        rewrites = self._rewrites
        append = self._transmit.append
        checksum_of = int.from_bytes
        slow: list[bytes] = []
        count = in_bytes = 0
        for position, frame in enumerate(frames):
            size = len(frame)
            if (size < 34 or frame[12:15] != _IPV4_IHL5 or frame[:6] != mac
                    or frame[22] <= 1 or frame[26] in _MARTIAN_FIRST_OCTETS
                    or (frame[29] in own_last and frame[26:30] in own)):
                slow.append(frame)
                continue
            dst_key = frame[30:34]
            entry = cache.get(dst_key)
            if entry is None:
                entry = self._miss(ifp, dst_key, frame)
                if entry is None:
                    slow.append(frame)
                    continue
            total = (frame[16] << 8) | frame[17]
            if total < 20 or total + 14 > size or (
                    total > entry[2] and not segments_fit(frame, 14, entry[2])):
                slow.append(frame)
                continue
            if checksum_of(frame[14:34]) % 0xFFFF:
                slow.append(frame)  # bad checksum: the generic path counts the drop
                continue
            if slow:
                generic(ifp, slow)
                slow = []
                if not self._still_usable(ifp):
                    slow.extend(frames[position:])
                    break
                cache = self._caches.setdefault(ifp.index, {})
                entry = cache.get(dst_key) or self._miss(ifp, dst_key, frame)
                if entry is None or (total > entry[2]
                                     and not segments_fit(frame, 14, entry[2])):
                    slow.append(frame)
                    continue
            old = frame[22:26]
            new = rewrites.get(old)
            if new is None:
                new = self._rewrite(old)
            end = total + 14
            counters = entry[3]
            out: bytes
            if type(frame) is _OFFLOAD:
                # the rewritten header is every segment's template
                if entry[4] and size >= SPLICE_MIN:  # the driver takes pieces: no copy here
                    head = b"".join((entry[0], frame[14:22], new))
                    append((entry[1], SplicedFrame(head, frame, 26, end)))
                    counters.opackets += 1
                    counters.obytes += end
                    count += 1
                    in_bytes += size
                    continue
                out = frame.derive(b"".join((entry[0], frame[14:22], new,
                                             memoryview(frame)[26:end])))
                if not entry[4]:  # the output cannot hand the work on: do it here
                    pieces = self._finished(out)
                    if pieces is None:
                        slow.append(frame)  # the generic path counts the bad description
                        continue
                    for piece in pieces:
                        append((entry[1], piece))
                        counters.opackets += 1
                        counters.obytes += len(piece)
                    count += 1
                    in_bytes += size
                    continue
            else:
                out = b"".join((entry[0], frame[14:22], new,
                                frame[26:end] if end != size else frame[26:]))
            append((entry[1], out))
            counters.opackets += 1
            counters.obytes += end
            count += 1
            in_bytes += size
        if slow:
            generic(ifp, slow)
        if count:
            ifp.counters.ipackets += count
            ifp.counters.ibytes += in_bytes
            stats = self._ipv4.stats
            stats.received += count
            stats.forwarded += count
            self.hits += count

    def _finished(self, frame: OffloadFrame) -> list[bytes] | None:
        """The plain frames doing ``frame``'s offload work, or None if its description is
        wrong (the generic path then counts the drop)."""
        try:
            pieces = finish(frame, 14)
        except OffloadError:
            return None
        self._ipv4.stats.offload_finished += 1
        return pieces

    def _still_usable(self, ifp: Interface) -> bool:
        """After a run went the generic way: state may have moved, so look again."""
        self._revalidate()
        return ifp.attached and self.usable_on(ifp)


#: First octets of sources the generic path drops (0/8 only when exactly 0 — sent
#: the generic way anyway), loopback and multicast/experimental/broadcast.
_MARTIAN_FIRST_OCTETS = frozenset({0, 127, *range(224, 256)})

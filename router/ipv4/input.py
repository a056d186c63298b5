"""IPv4: header checks, local delivery, forwarding, and the ICMP it provokes.

The generic path for every IPv4 datagram that the forwarding fast path
(``router/ipv4/fastpath.py``) does not take. Everything it needs comes in by
injection, so it runs against fakes in tests and against the real modules in
the engine:

* ``routes.lookup(addr)`` — the longest-prefix match (``router.inet.route``);
* ``inet`` — ``local_ip``, ``is_broadcast``, ``can_forward``, ``address_on``
  (``router.inet.domain.InetDomain``);
* ``interface_of(ifindex)`` — the data link layer's lookup;
* ``output(ifp, datagram, next_hop)`` — hands a datagram to the data link
  layer's output path, which calls :meth:`Ipv4.pre_output` (ARP) and the
  framer; returns 0 (sent or held for ARP) or an errno;
* ``resolve(ifp, next_hop, datagram, now)`` — ARP (``router.arp.protocol.Arp.resolve``);
* ``resolve_multi(ifp, group)`` — a group's link address (the engine's goes through
  ``DataLink.resolve_multi``; by default the RFC 1112 mapping).

Input rules (``ip_input``/``ip_forward`` of the BSDs, with Linux defaults
where a modern router differs): a header that fails a check is a counted
drop, never an exception; link padding beyond the total length is trimmed;
datagrams for one of our addresses or a broadcast address of the receiving
interface are delivered; multicast and broadcast are never forwarded;
forwarding needs a forwardable destination (``in_canforward``), a TTL above
1 (else ICMP time exceeded), a route (else ICMP net unreachable), and a
reachable next hop (else ICMP host unreachable). The TTL goes down by one
with the RFC 1624 checksum update. A datagram larger than the output MTU is
fragmented (``router/ipv4/fragment.py``), or answered with "fragmentation
needed" when it has DF set.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.contracts import Packet, PacketFlags
from router.errors import (
    EHOSTDOWN,
    EHOSTUNREACH,
    EJUSTRETURN,
    EMSGSIZE,
    ENETDOWN,
    ENETUNREACH,
    ENXIO,
)
from router.inet.multipath import NextHop, choose, flow_hash
from router.inet.route import Route, RouteFlags
from router.ipv4 import options as ip_options
from router.ipv4 import reassembly
from router.ipv4.fragment import fragment
from router.ipv4.icmp import Icmp, IcmpConfig
from router.ipv4.reassembly import Reassembly, ReassemblyConfig
from router.link.ifnet import AF_INET, IfFamily, IfFlags, Interface
from router.offload import OffloadError, OffloadFrame, finish, segments_fit
from router.wire import Malformed
from router.wire import ethernet as eth
from router.wire import icmp as icmp_wire
from router.wire import ipv4 as ip
from router.wire.checksum import TTL_DECREMENT_CHECKSUM, internet_checksum
from router.wire.ipv4 import Ipv4Header

LIMITED_BROADCAST = 0xFFFFFFFF
# Flags as plain ints: IntFlag operators cost a microsecond each on the packet path.
_LINK_GROUP = int(PacketFlags.BCAST | PacketFlags.MCAST)
_GATEWAY = int(RouteFlags.GATEWAY)
_REJECT = int(RouteFlags.REJECT)
_BLACKHOLE = int(RouteFlags.BLACKHOLE)
_UP = int(IfFlags.UP)
_ETHERNET = IfFamily.ETHERNET
_ETHERTYPE_IPV4 = eth.ETHERTYPE_IPV4
_ETHER_BROADCAST = eth.BROADCAST
_FRAGMENT_BITS = ip.FLAG_MF | ip.OFFSET_MASK
_TTL_OFF = ip.TTL_OFF
_HEADER = ip.HEADER
_VER_IHL_PLAIN = (ip.VERSION << 4) | (ip.MIN_HEADER_LEN >> 2)  # 0x45: IPv4, no options
_ADDRS_OFF = ip.SRC_OFF  # TTL, protocol and checksum are the 4 bytes before the addresses
_MIN_HEADER_LEN = ip.MIN_HEADER_LEN
_VERSION_IHL5 = 0x45  # the first header byte without options
_ADDRESS = struct.Struct("!I")
_DST_OFF = ip.DST_OFF
_TTL_PROTO_SUM = struct.Struct("!BBH")  # the header's bytes 8..11: TTL, protocol, checksum
_UNUSABLE_ROUTE = _BLACKHOLE | _REJECT
_ECMP = int(RouteFlags.ECMP)
#: Output errors that mean "that host or link is not there": ICMP host unreachable.
_HOST_UNREACHABLE_ERRORS = frozenset({EHOSTUNREACH, EHOSTDOWN, ENETDOWN, ENETUNREACH, ENXIO})


class DropReason(enum.Enum):
    """Why the IPv4 layer dropped a datagram; each has a counter in ``Ipv4Stats.drops``."""

    # header checks (the values are router.wire.ipv4's Malformed reasons)
    SHORT = ip.SHORT
    BAD_VERSION = ip.BAD_VERSION
    BAD_IHL = ip.BAD_IHL
    LENGTH_BELOW_HEADER = ip.LENGTH_BELOW_HEADER
    LENGTH_BEYOND_BUFFER = ip.LENGTH_BEYOND_BUFFER
    BAD_CHECKSUM = ip.BAD_CHECKSUM
    # addressing
    BAD_SOURCE = "bad_source"  # multicast, limited broadcast, loopback or (forwarding) 0
    LINK_BROADCAST = "link_broadcast"  # link broadcast/multicast frame not for us: never forwarded
    MULTICAST = "multicast"  # multicast destination: never forwarded
    DIRECTED_BROADCAST = "directed_broadcast"  # broadcast of the output link: not forwarded
    CANNOT_FORWARD = "cannot_forward"  # in_canforward says no (0/8, 127/8, 169.254/16, 224/3)
    FORWARDING_OFF = "forwarding_off"
    # forwarding outcomes
    TTL_EXCEEDED = "ttl_exceeded"
    NO_ROUTE = "no_route"
    REJECT_ROUTE = "reject_route"
    BLACKHOLE_ROUTE = "blackhole_route"
    INTERFACE_DOWN = "interface_down"
    TOO_BIG = "too_big"  # larger than the MTU with DF set
    CANNOT_FRAGMENT = "cannot_fragment"  # MTU too small for even 8 bytes of data
    HOST_UNREACHABLE = "host_unreachable"  # ARP gave up, or the link is gone
    OUTPUT_ERROR = "output_error"
    BAD_OFFLOAD = "bad_offload"  # a partial checksum or GSO description its headers contradict
    OWN_SOURCE = "own_source"  # martian: the source is one of our own addresses
    # options (router/ipv4/options.py)
    BAD_OPTIONS = "bad_options"  # malformed: ICMP parameter problem
    SOURCE_ROUTE = "source_route"  # LSRR/SSRR: source routing is off (RFC 7126)
    # local delivery: reassembly (router/ipv4/reassembly.py)
    REASSEMBLY_TIMEOUT = reassembly.TIMEOUT  # not complete 30 s after its first fragment
    REASSEMBLY_OVERLAP = reassembly.OVERLAP  # fragments overlap: the whole datagram goes
    REASSEMBLY_DUPLICATE = reassembly.DUPLICATE  # an exact duplicate fragment
    REASSEMBLY_TOO_MANY_FRAGMENTS = reassembly.TOO_MANY_FRAGMENTS
    REASSEMBLY_TOO_BIG = reassembly.TOO_BIG  # past 65,535 bytes
    REASSEMBLY_INCONSISTENT = reassembly.INCONSISTENT  # two ends, or data past the end
    REASSEMBLY_BAD_FRAGMENT = reassembly.BAD_FRAGMENT  # empty, or not a multiple of 8
    REASSEMBLY_MEMORY = reassembly.MEMORY  # evicted: the memory bound was reached
    LOOPBACK_DESTINATION = "loopback_destination"  # we originated a datagram to ourselves


@dataclass(frozen=True, slots=True)
class Ipv4Config:
    """IPv4 behaviour; defaults are a router's (Linux sysctl names in the comments)."""

    forwarding: bool = True  # net.ipv4.ip_forward
    ttl: int = ip.DEFAULT_TTL  # net.ipv4.ip_default_ttl
    forward_directed_broadcast: bool = False  # net.ipv4.conf.all.bc_forwarding
    icmp: IcmpConfig = field(default_factory=IcmpConfig)
    reassembly: ReassemblyConfig = field(default_factory=ReassemblyConfig)  # net.ipv4.ipfrag_*
    #: seconds from the engine's clock to UT, for the timestamp option (the agent sets it
    #: from its wall clock at start; None: times flagged non-standard, router/ipv4/options.py)
    utc_offset: float | None = None


@dataclass(slots=True)
class Ipv4Stats:
    """IPv4 counters (``ipstat``); they only grow."""

    received: int = 0
    delivered: int = 0
    forwarded: int = 0
    sent: int = 0  # datagrams we originated (ICMP) handed to output
    fragments_out: int = 0
    offload_finished: int = 0  # frames whose offload work the engine did (router/offload.py)
    fragments_in: int = 0  # fragments addressed to us, given to reassembly
    reassembled: int = 0  # datagrams put back together and delivered
    drops: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DropReason, 0))

    def as_dict(self) -> dict[str, int]:
        flat = {"received": self.received, "delivered": self.delivered,
                "forwarded": self.forwarded, "sent": self.sent,
                "fragments_out": self.fragments_out,
                "offload_finished": self.offload_finished, "fragments_in": self.fragments_in,
                "reassembled": self.reassembled}
        flat.update({f"drop_{reason.value}": n for reason, n in self.drops.items()})
        return flat


class RouteLookup(Protocol):
    def lookup(self, addr: int) -> Route | None: ...


class InetQueries(Protocol):
    """What IPv4 asks of address control (``router.inet.domain.InetDomain``)."""

    def local_ip(self, addr: int) -> bool: ...

    def is_broadcast(self, addr: int, ifp: Interface) -> bool: ...

    def can_forward(self, addr: int) -> bool: ...

    def addresses(self, ifp: Interface) -> Sequence[Any]: ...

    def address_on(self, ifp: Interface, dst: int) -> int: ...


InterfaceOf = Callable[[int], "Interface | None"]
Output = Callable[[Interface, bytes, int], int]
Resolve = Callable[[Interface, int, bytes, float], tuple[int, bytes]]
ResolveMulti = Callable[[Interface, int], tuple[int, bytes]]


#: Has ARP given up on this neighbour for now (NudState.FAILED, in its hold-down)?
NeighbourFailed = Callable[[Interface, int], bool]


def _never_failed(ifp: Interface, addr: int) -> bool:
    del ifp, addr
    return False


def _no_resolve(ifp: Interface, next_hop: int, datagram: bytes, now: float) -> tuple[int, bytes]:
    del ifp, next_hop, datagram, now
    return EHOSTUNREACH, b""


def map_group(ifp: Interface, group: int) -> tuple[int, bytes]:
    """An IPv4 group's Ethernet address (RFC 1112): 01:00:5e and the low 23 bits."""
    del ifp
    return 0, b"\x01\x00\x5e" + (group & 0x7FFFFF).to_bytes(3, "big")


class Ipv4:
    """The IPv4 layer of one engine (see the module docstring for its seams).

    ``now`` is the time of the batch being processed: the engine sets it
    before feeding the data link layer, whose protocol callbacks carry no
    clock (:meth:`proto_input`, :meth:`pre_output`).
    """

    def __init__(
        self,
        *,
        routes: RouteLookup,
        inet: InetQueries,
        interface_of: InterfaceOf,
        output: Output,
        resolve: Resolve = _no_resolve,
        resolve_multi: ResolveMulti = map_group,
        config: Ipv4Config | None = None,
        neighbour_failed: NeighbourFailed = _never_failed,
    ) -> None:
        self.config = config or Ipv4Config()
        self.stats = Ipv4Stats()
        self.routes = routes
        self.inet = inet
        self.interface_of = interface_of
        self.output = output
        self.resolve = resolve
        self.neighbour_failed = neighbour_failed
        self.resolve_multi = resolve_multi
        self.icmp = Icmp(self.send, self.source_for, self.config.icmp)
        self.reassembly = Reassembly(self.config.reassembly, self._drop_named)
        self.now = 0.0
        self._next_ident = 1

    def _drop(self, reason: DropReason) -> None:
        self.stats.drops[reason] += 1

    def count_drop(self, reason: DropReason) -> None:
        """Count a drop another layer made for an IPv4 reason (the engine's offload work)."""
        self.stats.drops[reason] += 1

    def _drop_named(self, reason: str) -> None:
        self.stats.drops[DropReason(reason)] += 1

    # -- timers (reassembly) -------------------------------------------------

    def tick(self, now: float) -> None:
        """Expire reassembly: ICMP time exceeded for each datagram whose first fragment came."""
        for dg in self.reassembly.expire(now):
            if not dg.first:
                continue
            first = memoryview(dg.first)
            ifp = self.interface_of(dg.ifindex)
            self._error(first, ip.parse(first, verify_checksum=False), ifp,
                        icmp_wire.TIME_EXCEEDED, icmp_wire.TIMX_REASSEMBLY, now,
                        to_group=dg.to_group)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` should run next, or None."""
        return self.reassembly.next_deadline()

    # -- the data link layer's protocol callbacks ----------------------------

    def proto_input(self, ifp: Interface, family: int, pkts: list[Packet]) -> int:
        """Version-2 protocol input: a run of IPv4 frames from ``ifp``."""
        del family
        now = self.now
        for pkt in pkts:
            self.input(ifp, pkt.data, pkt.l2len, pkt.flags, now)
        return 0

    def pre_output(self, ifp: Interface, family: int, pkt: Packet,
                   dest: Any) -> tuple[int, bytes, int]:
        """Find the link destination of ``pkt`` (``ether_inet_pre_output``).

        ``dest`` is the next hop (an int), or the link address itself (bytes)
        when ARP releases packets it held. Point-to-point links have no link
        address. Broadcast goes to ff:ff:ff:ff:ff:ff, multicast to the address
        ``resolve_multi`` maps it to (the engine's: ``dlil_resolve_multi``
        through the IPv4 attachment, 01:00:5e), anything else through ARP:
        ``EJUSTRETURN`` while ARP holds the packet, ``EHOSTUNREACH`` once it
        gave up.
        """
        del family
        if ifp.family is not _ETHERNET:
            return 0, b"", AF_INET
        if isinstance(dest, bytes):
            return 0, dest, _ETHERTYPE_IPV4
        if dest == LIMITED_BROADCAST or self.inet.is_broadcast(dest, ifp):
            return 0, _ETHER_BROADCAST, _ETHERTYPE_IPV4
        if dest >> 28 == 0xE:
            error, mac = self.resolve_multi(ifp, dest)
            return (0, mac, _ETHERTYPE_IPV4) if not error else (error, b"", 0)
        data = pkt.data
        if type(data) is not bytes and type(data) is not OffloadFrame:
            data = bytes(data)  # ARP may hold it: immutable, with its offload description
        error, mac = self.resolve(ifp, dest, data, self.now)
        if error:
            return error, b"", 0
        return 0, mac, _ETHERTYPE_IPV4

    # -- input ---------------------------------------------------------------

    def input(self, ifp: Interface, frame: bytes | bytearray | memoryview, l2len: int,
              flags: int, now: float) -> None:
        """One received datagram (``frame[l2len:]``): check, then deliver or forward.

        The common datagram, a 20-byte header without options that passes
        ``parse_header``'s checks, is read in place: no memoryview and no
        ``Ipv4Header`` unless it is delivered. Anything else takes
        :meth:`_input_parsed` after the full parse; both make the same
        decisions in the same order and forward through the same
        :meth:`_forward`, which takes the header's fields.
        """
        self.stats.received += 1
        room = len(frame) - l2len
        if room >= _MIN_HEADER_LEN:
            (ver_ihl, tos, total, ident, frag, ttl, protocol, checksum, src,
             dst) = _HEADER.unpack_from(frame, l2len)
            header = frame[l2len : l2len + _MIN_HEADER_LEN]
            if (ver_ihl == _VER_IHL_PLAIN and _MIN_HEADER_LEN <= total <= room
                    and not int.from_bytes(header, "big") % 0xFFFF):  # checksum verifies
                if src >= 0xE0000000 or src >> 24 == 127:
                    self._drop(DropReason.BAD_SOURCE)  # martian: multicast, broadcast, loopback
                    return
                inet = self.inet
                if inet.local_ip(src):
                    self._drop(DropReason.OWN_SOURCE)  # martian: claims to be us
                    return
                link_group = bool(flags & _LINK_GROUP)
                local = inet.local_ip(dst)
                if local or inet.is_broadcast(dst, ifp) or dst >> 28 == 0xE:
                    hdr = Ipv4Header(_MIN_HEADER_LEN, tos, total, ident, frag, ttl, protocol,
                                     checksum, src, dst)
                    self._deliver(ifp, hdr, memoryview(frame)[l2len : l2len + total],
                                  link_group or not local, now)
                elif link_group:
                    self._drop(DropReason.LINK_BROADCAST)  # a link broadcast is never forwarded
                else:
                    self._forward(ifp, frame, l2len, total, ttl, protocol, checksum, src, dst,
                                  now)
                return
        if type(frame) is OffloadFrame:
            self._input_finished(ifp, frame, l2len, flags, now)
            return
        self._input_parsed(ifp, memoryview(frame)[l2len:], flags, now)

    def _input_finished(self, ifp: Interface, frame: OffloadFrame, l2len: int, flags: int,
                        now: float) -> None:
        """A frame with offload work left and a header the plain lane does not read
        (options, a bad checksum...): do the work, then take each piece as received."""
        try:
            pieces = finish(frame, l2len)
        except OffloadError:
            self._drop(DropReason.BAD_OFFLOAD)
            return
        self.stats.received -= 1  # counted per piece
        self.stats.offload_finished += 1
        for piece in pieces:
            self.input(ifp, piece, l2len, flags, now)

    def _input_parsed(self, ifp: Interface, datagram: memoryview, flags: int,
                      now: float) -> None:
        """:meth:`input` for any datagram: the full header parse, then the same decisions."""
        try:
            hdr = ip.parse(datagram)
        except Malformed as exc:
            self._drop(DropReason(exc.reason))
            ifp.counters.ierrors += 1  # a malformed header is an input error of the link too
            return
        if hdr.total_length < len(datagram):
            datagram = datagram[: hdr.total_length]  # link padding
        src = hdr.src
        if src >= 0xE0000000 or src >> 24 == 127:
            self._drop(DropReason.BAD_SOURCE)  # martian: multicast, broadcast, loopback
            return
        inet = self.inet
        if inet.local_ip(src):
            self._drop(DropReason.OWN_SOURCE)  # martian: claims to be us
            return
        dst = hdr.dst
        link_group = bool(flags & _LINK_GROUP)
        if hdr.header_len > _MIN_HEADER_LEN:
            verdict, pointer = ip_options.check(datagram, hdr.header_len)
            if verdict:
                self._refuse_options(ifp, hdr, datagram, link_group, verdict, pointer, now)
                return
        if inet.local_ip(dst):
            self._deliver(ifp, hdr, datagram, link_group, now)
        elif inet.is_broadcast(dst, ifp) or dst >> 28 == 0xE:
            self._deliver(ifp, hdr, datagram, True, now)
        elif link_group:
            self._drop(DropReason.LINK_BROADCAST)
        else:
            self._forward(ifp, datagram, 0, hdr.total_length, hdr.ttl, hdr.protocol,
                          hdr.checksum, src, dst, now)

    def _refuse_options(self, ifp: Interface, hdr: Ipv4Header, datagram: memoryview,
                        link_group: bool, verdict: int, pointer: int, now: float) -> None:
        """``ip_rcv_options``: a source route is dropped quietly (source routing is
        off), malformed options with ICMP parameter problem pointing at the bad octet."""
        if verdict == ip_options.SOURCE_ROUTE:
            self._drop(DropReason.SOURCE_ROUTE)
            return
        dst = hdr.dst
        to_group = link_group or dst >> 28 == 0xE or self.inet.is_broadcast(dst, ifp)
        self._error(datagram, hdr, ifp, icmp_wire.PARAMETER_PROBLEM, 0, now,
                    to_group=to_group, pointer=pointer)
        self._drop(DropReason.BAD_OPTIONS)
        ifp.counters.ierrors += 1  # a malformed header (Linux: InHdrErrors), not a policy drop

    def _deliver(self, ifp: Interface, hdr: Ipv4Header, datagram: memoryview,
                 to_group: bool, now: float) -> None:
        """``ip_input`` "ours": ICMP is answered, UDP gets port unreachable, others
        protocol unreachable (the router has no sockets)."""
        if hdr.frag & _FRAGMENT_BITS:
            self.stats.fragments_in += 1
            whole = self.reassembly.add(ifp.index, hdr, datagram, to_group, now)
            if whole is None:
                return  # held until the rest comes, or dropped and counted
            self.stats.reassembled += 1
            datagram = memoryview(whole)
            hdr = ip.parse(datagram, verify_checksum=False)
        self.stats.delivered += 1
        if hdr.protocol == ip.PROTO_ICMP:
            self.icmp.input(ifp, hdr, datagram, to_group, now)
            return
        code = icmp_wire.UNREACH_PORT if hdr.protocol == ip.PROTO_UDP else (
            icmp_wire.UNREACH_PROTOCOL)
        self._error(datagram, hdr, ifp, icmp_wire.DEST_UNREACH, code, now, to_group=to_group)

    # -- forwarding ----------------------------------------------------------

    def _forward(self, ifp: Interface, frame: bytes | bytearray | memoryview, start: int,
                 total: int, ttl: int, protocol: int, checksum: int, src: int, dst: int,
                 now: float) -> None:
        """``ip_forward`` of ``frame[start:start + total]``: every check in order, then output.

        Both input lanes call it with the header's fields (the plain lane read
        them in place, the parsed one from its ``Ipv4Header``), so the checks
        are written once. A datagram that goes out whole is built in one
        join, TTL - 1 with the RFC 1624 checksum, and nothing else is
        allocated for it; the header is parsed again only to answer a refusal
        with ICMP, to fragment, or to count an output error.
        """
        config = self.config
        if not config.forwarding:
            self._drop(DropReason.FORWARDING_OFF)
            return
        if not self.inet.can_forward(dst):
            self._drop(DropReason.CANNOT_FORWARD)
            return
        if src == 0:
            self._drop(DropReason.BAD_SOURCE)
            return
        if ttl <= 1:
            self._refuse(ifp, frame, start, total, icmp_wire.TIME_EXCEEDED,
                         icmp_wire.TIMX_TTL, DropReason.TTL_EXCEEDED, now)
            return
        route = self.routes.lookup(dst)
        if route is None:
            self._refuse(ifp, frame, start, total, icmp_wire.DEST_UNREACH,
                         icmp_wire.UNREACH_NET, DropReason.NO_ROUTE, now)
            return
        bits = route.bits
        if bits & _ECMP:
            leg = self.leg_of(route, frame, start)
            out, next_hop = self.interface_of(leg.ifindex), leg.gateway
        else:
            out = None if bits & _UNUSABLE_ROUTE else self.interface_of(route.ifindex)
            next_hop = route.gateway if bits & _GATEWAY else dst
        if out is None or not out.flags & _UP:  # Interface.flags is a plain int
            reason = self._why_unusable(route)
            if reason is DropReason.BLACKHOLE_ROUTE:
                self._drop(reason)
            else:
                self._refuse(ifp, frame, start, total, icmp_wire.DEST_UNREACH,
                             icmp_wire.UNREACH_HOST, reason, now)
            return
        if (out is not ifp and not config.forward_directed_broadcast
                and self.inet.is_broadcast(dst, out)):
            self._drop(DropReason.DIRECTED_BROADCAST)
            return
        if frame[start] != _VERSION_IHL5 and type(frame) is not OffloadFrame:
            frame, start, checksum = self._fill_options(frame, start, total, out, next_hop,
                                                        checksum, now)
        if total <= out.mtu or segments_fit(frame, start, out.mtu):
            datagram = b"".join((
                frame[start : start + _TTL_OFF],
                _TTL_PROTO_SUM.pack(ttl - 1, protocol, TTL_DECREMENT_CHECKSUM[checksum]),
                frame[start + _ADDRS_OFF : start + total],
            ))
            if type(frame) is OffloadFrame:  # the header is every segment's template
                datagram = frame.derive(datagram, -start)
            error = self.output(out, datagram, next_hop)
        elif type(frame) is OffloadFrame:
            self._forward_offloaded(ifp, out, frame, start, total, next_hop, now)
            return
        else:
            error = self._forward_fragmented(out, frame, start, total, next_hop)
        if error == 0:
            self.stats.forwarded += 1
        else:
            view = memoryview(frame)[start : start + total]
            self._forward_failed(ifp, parse_header(view), view, out, error, now)

    def _fill_options(self, frame: bytes | bytearray | memoryview, start: int, total: int,
                      out: Interface, next_hop: int, checksum: int, now: float
                      ) -> tuple[bytes | bytearray | memoryview, int, int]:
        """Record route and timestamp filled in as the datagram leaves by ``out`` (from its
        address toward ``next_hop``): the datagram anew, at 0, with its new checksum; the
        frame unchanged when no option asks for anything (``ip_forward_options``)."""
        header_len = (frame[start] & 0x0F) * 4
        filled = ip_options.fill_on_forward(
            frame[start : start + header_len], header_len, self.inet.address_on(out, next_hop),
            ip_options.timestamp(now, self.config.utc_offset), self.inet.local_ip)
        if filled is None:
            return frame, start, checksum
        datagram = b"".join((filled, frame[start + header_len : start + total]))
        return datagram, 0, int.from_bytes(filled[10:12], "big")

    def _forward_offloaded(self, ifp: Interface, out: Interface, frame: OffloadFrame,
                           start: int, total: int, next_hop: int, now: float) -> None:
        """A super-frame whose segments do not fit ``out`` (or a partial-checksum datagram
        above its MTU): with DF, one "fragmentation needed" for the whole of it, as Linux
        answers a GSO packet; without, the work done here and each segment fragmented."""
        view = memoryview(frame)[start : start + total]
        hdr = parse_header(view)
        if hdr.frag & ip.FLAG_DF:
            self._forward_failed(ifp, hdr, view, out, EMSGSIZE, now)
            return
        try:
            pieces = finish(frame, start)
        except OffloadError:
            self._drop(DropReason.BAD_OFFLOAD)
            return
        self.stats.offload_finished += 1
        error = 0
        for piece in pieces:
            error = self._forward_fragmented(out, piece, start, len(piece) - start,
                                             next_hop) or error
        if error == 0:
            self.stats.forwarded += 1
        else:
            self._forward_failed(ifp, hdr, view, out, error, now)

    def _forward_fragmented(self, out: Interface, frame: bytes | bytearray | memoryview,
                            start: int, total: int, next_hop: int) -> int:
        """:meth:`_transmit` of a forwarded datagram larger than ``out``'s MTU, TTL - 1."""
        packet = bytearray(frame[start : start + total])
        hdr = parse_header(packet)
        packet[_TTL_OFF] = hdr.ttl - 1
        new_sum = TTL_DECREMENT_CHECKSUM[hdr.checksum]
        packet[ip.CHECKSUM_OFF] = new_sum >> 8
        packet[ip.CHECKSUM_OFF + 1] = new_sum & 0xFF
        return self._transmit(out, packet, hdr, next_hop)

    def _refuse(self, ifp: Interface, frame: bytes | bytearray | memoryview, start: int,
                total: int, icmp_type: int, code: int, reason: DropReason, now: float) -> None:
        """Answer a datagram :meth:`_forward` refuses with ICMP, and count why."""
        datagram = memoryview(frame)[start : start + total]
        self._error(datagram, parse_header(datagram), ifp, icmp_type, code, now)
        self._drop(reason)

    def _forward_failed(self, ifp: Interface, hdr: Ipv4Header, datagram: memoryview,
                        out: Interface, error: int, now: float) -> None:
        """Count (and answer, where ``ip_forward`` does) an output error of a forwarded datagram."""
        if error == EMSGSIZE:
            self._error(datagram, hdr, ifp, icmp_wire.DEST_UNREACH,
                        icmp_wire.UNREACH_FRAG_NEEDED, now, mtu=out.mtu)
            self._drop(DropReason.TOO_BIG)
        elif error in _HOST_UNREACHABLE_ERRORS:
            self._error(datagram, hdr, ifp, icmp_wire.DEST_UNREACH, icmp_wire.UNREACH_HOST, now)
            self._drop(DropReason.HOST_UNREACHABLE)
        elif error == EJUSTRETURN:
            self._drop(DropReason.CANNOT_FRAGMENT)
        else:
            self._drop(DropReason.OUTPUT_ERROR)

    def _transmit(self, out: Interface, packet: bytearray, hdr: Ipv4Header,
                  next_hop: int) -> int:
        """Output ``packet`` whole or in fragments. ``EMSGSIZE``: too big with DF;
        ``EJUSTRETURN``: the MTU cannot carry a fragment."""
        if len(packet) <= out.mtu:
            return self.output(out, bytes(packet), next_hop)
        if hdr.frag & ip.FLAG_DF:
            return EMSGSIZE
        pieces = fragment(packet, hdr, out.mtu)
        if not pieces:
            return EJUSTRETURN
        error = 0
        for piece in pieces:
            error = self.output(out, piece, next_hop) or error
        self.stats.fragments_out += len(pieces)
        return error

    def _error(self, datagram: memoryview, hdr: Ipv4Header, ifp: Interface | None,
               icmp_type: int, code: int, now: float, mtu: int = 0,
               to_group: bool = False, pointer: int = 0) -> None:
        src_broadcast = ifp is not None and self.inet.is_broadcast(hdr.src, ifp)
        self.icmp.error(datagram, hdr, ifp, icmp_type, code, now, link_group=to_group,
                        dst_broadcast=to_group, src_broadcast=src_broadcast, mtu=mtu,
                        pointer=pointer)

    def host_unreachable(self, ifp: Interface, datagrams: list[bytes], now: float) -> None:
        """ARP gave up on the next hop of these held datagrams: tell their sources.

        Datagrams we originated ourselves get no message (it would be addressed to us).
        """
        for datagram in datagrams:
            try:
                hdr = ip.parse(datagram, verify_checksum=False)
            except Malformed:
                continue
            self._drop(DropReason.HOST_UNREACHABLE)
            if self.inet.local_ip(hdr.src):
                continue
            self.icmp.error(memoryview(datagram), hdr, None, icmp_wire.DEST_UNREACH,
                            icmp_wire.UNREACH_HOST, now)

    # -- datagrams we originate ----------------------------------------------

    def send(self, datagram: bytes, now: float) -> int:
        """Route and output a datagram we built (ICMP): ``ip_output`` for local traffic."""
        del now
        dst: int = _ADDRESS.unpack_from(datagram, _DST_OFF)[0]  # ip.read_dst without the call
        route = self.routes.lookup(dst)
        if route is None:
            self._drop(DropReason.NO_ROUTE)
            return ENETUNREACH
        if route.is_local or self.inet.local_ip(dst):
            self._drop(DropReason.LOOPBACK_DESTINATION)
            return ENETUNREACH
        bits = route.bits
        if bits & _ECMP:
            leg = self.leg_of(route, datagram, 0)
            out, next_hop = self.interface_of(leg.ifindex), leg.gateway
        else:
            out = None if bits & _UNUSABLE_ROUTE else self.interface_of(route.ifindex)
            next_hop = route.gateway if bits & _GATEWAY else dst
        if out is None or not out.flags & _UP:
            self._drop(self._why_unusable(route))
            return EHOSTUNREACH
        if len(datagram) <= out.mtu:  # no fragmenting: no header parse, no copy
            error = self.output(out, datagram if type(datagram) is bytes else bytes(datagram),
                                next_hop)
        else:
            packet = bytearray(datagram)
            hdr = ip.parse(packet, verify_checksum=False)
            if hdr.ident == 0 and not hdr.frag & ip.FLAG_DF:
                hdr.ident = self._identify(packet)
            error = self._transmit(out, packet, hdr, next_hop)
        if error == 0:
            self.stats.sent += 1
        else:
            self._drop(DropReason.OUTPUT_ERROR)
        return error

    def leg_of(self, route: Route, packet: bytes | bytearray | memoryview, start: int) -> NextHop:
        """The leg of an ``ECMP`` route the datagram at ``packet[start:]`` takes
        (``router.inet.multipath``: by its flow, over the usable legs)."""
        return choose(route.nexthops, flow_hash(packet, start), self.leg_usable)

    def leg_usable(self, leg: NextHop) -> bool:
        """A leg is usable while its interface is up and ARP has not given up on
        its gateway (Linux's ``fib_multipath_use_neigh``)."""
        out = self.interface_of(leg.ifindex)
        return out is not None and bool(out.flags & _UP) and not self.neighbour_failed(
            out, leg.gateway)

    def _identify(self, packet: bytearray) -> int:
        """Give a datagram we fragment an identification of its own (RFC 791: the
        fragments of two datagrams must not share one), checksum updated."""
        ident = self._next_ident
        self._next_ident = ident % 0xFFFF + 1  # 1..65535, never 0
        packet[ip.IDENT_OFF : ip.IDENT_OFF + 2] = ident.to_bytes(2, "big")
        packet[ip.CHECKSUM_OFF : ip.CHECKSUM_OFF + 2] = b"\x00\x00"
        ip.set_checksum(packet, internet_checksum(packet[: (packet[0] & 0x0F) << 2]))
        return ident

    @staticmethod
    def _why_unusable(route: Route) -> DropReason:
        """Why a route that gave no usable output interface gave none."""
        bits = route.bits
        if bits & _BLACKHOLE:
            return DropReason.BLACKHOLE_ROUTE
        if bits & _REJECT:
            return DropReason.REJECT_ROUTE
        return DropReason.INTERFACE_DOWN

    def source_for(self, ifp: Interface | None, dst: int) -> int:
        """Source address of a message we send to ``dst`` about a datagram from ``ifp``.

        The receiving interface's address on ``dst``'s subnet, else its first
        address (so traceroute shows the interface the probe came in on, as
        BSD's ``icmp_reflect``); without one, the address of the interface
        the route to ``dst`` leaves by; 0 if we have none.
        """
        if ifp is not None:
            chosen = self.inet.address_on(ifp, dst)
            if chosen:
                return chosen
        route = self.routes.lookup(dst)
        if route is None or route.is_local:
            return 0
        if route.source:
            return route.source
        out = self.interface_of(route.ifindex)
        return self.inet.address_on(out, dst) if out is not None else 0


def parse_header(datagram: bytes | bytearray | memoryview) -> Ipv4Header:
    """``router.wire.ipv4.parse`` with the common case inlined (same result, same errors).

    A whole 20-byte header without options whose checksum verifies is read
    here with one unpack; anything else goes to ``ip.parse``, which returns
    the header or raises ``Malformed`` naming the first failed check. The
    checksum test is ``internet_checksum(...) == 0`` folded: the header (not
    all zeros, its first byte is 0x45) sums to 0xFFFF exactly when its value
    is a multiple of 0xFFFF (see ``router.wire.checksum``).
    """
    if len(datagram) >= ip.MIN_HEADER_LEN:
        fields = _HEADER.unpack_from(datagram, 0)
        if (fields[0] == _VER_IHL_PLAIN and ip.MIN_HEADER_LEN <= fields[2] <= len(datagram)
                and int.from_bytes(datagram[: ip.MIN_HEADER_LEN], "big") % 0xFFFF == 0):
            return Ipv4Header(ip.MIN_HEADER_LEN, *fields[1:])
    return ip.parse(datagram)

"""Reassembly of IPv4 datagrams addressed to the router (RFC 791, RFC 815).

Only local delivery reassembles: a router forwards fragments as they come.
:class:`Reassembly` keeps one :class:`Datagram` per (source, destination,
protocol, identification) until every byte from 0 to the end the last
fragment gave is there, then hands back the whole datagram: the first
fragment's header (its options kept) with the new total length, the
fragment field cleared and a new checksum.

Bounds, every one a counted drop (the reason strings are values of
``router.ipv4.input.DropReason``):

* memory — the payload held plus a fixed overhead per fragment and per
  datagram is at most ``high_thresh`` (Linux ``ipfrag_high_thresh``, 4 MiB);
  a fragment that would pass it first makes the oldest datagrams in
  progress give way, down to ``low_thresh`` (3 MiB) (``reassembly_memory``);
* time — a datagram not complete ``timeout`` seconds (Linux
  ``ipfrag_time``, 30 s) after its first fragment came is dropped when
  :meth:`Reassembly.expire` runs at that time (``reassembly_timeout``); the
  caller answers with ICMP time exceeded (reassembly) if the fragment at
  offset 0 had come, as RFC 792 and Linux's ``ip_expire`` do;
* overlap — any fragment overlapping another of its datagram drops the
  whole datagram (``reassembly_overlap``: RFC 5722's rule, which Linux
  applies to IPv4 since FragmentSmack); an exact duplicate (same range, same
  bytes) is dropped alone (``reassembly_duplicate``, RFC 8200 4.5);
* count — more than ``max_fragments`` fragments drop the datagram
  (``reassembly_too_many_fragments``; FreeBSD's ``maxfragsperpacket`` is 16,
  64 carries 64 KiB over a 1280-byte MTU);
* size — data past 65,535 bytes with the header (the ping of death,
  ``reassembly_too_big``), two different ends, or data past the end
  (``reassembly_inconsistent``) drop the datagram; an empty fragment, or one
  that is not the last and not a multiple of 8 bytes long, is dropped alone
  (``reassembly_bad_fragment``).

No clock: the time is the ``now`` of each fragment and of :meth:`expire`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from router.wire import ipv4 as ip
from router.wire.checksum import internet_checksum
from router.wire.ipv4 import Ipv4Header

# Drop reasons (the values of router.ipv4.input.DropReason for reassembly).
TIMEOUT = "reassembly_timeout"
OVERLAP = "reassembly_overlap"
DUPLICATE = "reassembly_duplicate"
TOO_MANY_FRAGMENTS = "reassembly_too_many_fragments"
TOO_BIG = "reassembly_too_big"
INCONSISTENT = "reassembly_inconsistent"
BAD_FRAGMENT = "reassembly_bad_fragment"
MEMORY = "reassembly_memory"

#: What one held fragment costs beyond its payload (the objects that hold it),
#: so a flood of tiny fragments is bounded too.
FRAGMENT_OVERHEAD = 256
DATAGRAM_OVERHEAD = 256
MAX_DATAGRAM = 65535

Key = tuple[int, int, int, int]  # source, destination, protocol, identification
Drop = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ReassemblyConfig:
    """Limits of reassembly; the defaults are Linux's (``net.ipv4.ipfrag_*``)."""

    high_thresh: int = 4 * 1024 * 1024  # ipfrag_high_thresh
    low_thresh: int = 3 * 1024 * 1024  # ipfrag_low_thresh: what eviction goes down to
    timeout: float = 30.0  # ipfrag_time
    max_fragments: int = 64  # per datagram

    def __post_init__(self) -> None:
        if not 0 < self.low_thresh <= self.high_thresh:
            raise ValueError("reassembly: need 0 < low_thresh <= high_thresh")
        if self.timeout <= 0 or self.max_fragments < 1:
            raise ValueError("reassembly: timeout > 0 and max_fragments >= 1")


@dataclass(slots=True, eq=False)
class Datagram:
    """One datagram in progress: its fragments' data by offset, and what is known of it."""

    key: Key
    created: float
    ifindex: int  # where its first-arriving fragment came in
    to_group: bool  # sent to a broadcast or multicast address
    starts: list[int] = field(default_factory=list)  # sorted: bisect over fragment starts
    pieces: list[tuple[int, bytes]] = field(default_factory=list)  # (end, data), same order
    first: bytes = b""  # the fragment at offset 0, whole (its header opens the datagram)
    end: int | None = None  # data length, once the last fragment came
    received: int = 0  # data bytes held
    charge: int = DATAGRAM_OVERHEAD  # what it counts against high_thresh


class Reassembly:
    """Every datagram being reassembled, oldest first (see the module docstring)."""

    __slots__ = ("_datagrams", "_drop", "config", "memory")

    def __init__(self, config: ReassemblyConfig, drop: Drop) -> None:
        self.config = config
        self._drop = drop
        self._datagrams: dict[Key, Datagram] = {}  # insertion order: oldest first
        self.memory = 0

    def __len__(self) -> int:
        return len(self._datagrams)

    def add(self, ifindex: int, hdr: Ipv4Header, datagram: bytes | bytearray | memoryview,
            to_group: bool, now: float) -> bytes | None:
        """Take one fragment (``datagram`` trimmed to its total length); the whole
        datagram once it is complete, else None (held, or dropped and counted)."""
        offset = (hdr.frag & ip.OFFSET_MASK) << 3
        more = bool(hdr.frag & ip.FLAG_MF)
        data = bytes(datagram[hdr.header_len : hdr.total_length])
        end = offset + len(data)
        if not data or (more and len(data) & 7):
            self._drop(BAD_FRAGMENT)
            return None
        key = (hdr.src, hdr.dst, hdr.protocol, hdr.ident)
        if hdr.header_len + end > MAX_DATAGRAM:
            self._discard(key, TOO_BIG)
            return None
        dg = self._datagrams.get(key)
        if dg is None:
            dg = Datagram(key, now, ifindex, to_group)
            self._make_room(dg.charge)
            self._datagrams[key] = dg
            self.memory += dg.charge
        reason = self._insert(dg, offset, end, data, more)
        if reason == DUPLICATE:
            self._drop(DUPLICATE)
            return None
        if reason:
            self._discard(key, reason)
            return None
        if offset == 0:
            dg.first = bytes(datagram[: hdr.total_length])
        if dg.end is None or dg.received != dg.end or not dg.first:
            return None
        self._forget(dg)
        return self._build(dg)

    def _insert(self, dg: Datagram, offset: int, end: int, data: bytes, more: bool) -> str:
        """Place one fragment in ``dg``; a drop reason, or "" when it was added."""
        if not more:
            if dg.end is not None and dg.end != end:
                return INCONSISTENT
            if dg.pieces and dg.pieces[-1][0] > end:
                return INCONSISTENT  # data already held past this end
        elif dg.end is not None and end > dg.end:
            return INCONSISTENT
        starts, pieces = dg.starts, dg.pieces
        at = bisect.bisect_left(starts, offset)
        if at < len(starts) and starts[at] == offset and pieces[at][0] == end:
            return DUPLICATE if pieces[at][1] == data else OVERLAP
        if (at > 0 and pieces[at - 1][0] > offset) or (at < len(starts) and starts[at] < end):
            return OVERLAP
        if len(starts) >= self.config.max_fragments:
            return TOO_MANY_FRAGMENTS
        charge = len(data) + FRAGMENT_OVERHEAD
        self._make_room(charge, keep=dg)
        starts.insert(at, offset)
        pieces.insert(at, (end, data))
        if not more:
            dg.end = end
        dg.received += len(data)
        dg.charge += charge
        self.memory += charge
        return ""

    def _build(self, dg: Datagram) -> bytes:
        """The first fragment's header with the whole length, no fragment bits, a new sum."""
        header_len = (dg.first[0] & 0x0F) << 2
        head = bytearray(dg.first[:header_len])
        total = header_len + (dg.end or 0)
        head[ip.TOTAL_LEN_OFF : ip.TOTAL_LEN_OFF + 2] = total.to_bytes(2, "big")
        head[ip.FRAG_OFF : ip.FRAG_OFF + 2] = b"\x00\x00"
        head[ip.CHECKSUM_OFF : ip.CHECKSUM_OFF + 2] = b"\x00\x00"
        ip.set_checksum(head, internet_checksum(head))
        return b"".join([bytes(head), *(data for _, data in dg.pieces)])

    # -- bounds ------------------------------------------------------------

    def _make_room(self, charge: int, keep: Datagram | None = None) -> None:
        """Evict the oldest datagrams (never ``keep``) if ``charge`` would pass high_thresh."""
        config = self.config
        if self.memory + charge <= config.high_thresh:
            return
        for dg in list(self._datagrams.values()):
            if self.memory + charge <= config.low_thresh:
                break
            if dg is not keep:
                self._forget(dg)
                self._drop(MEMORY)

    def _discard(self, key: Key, reason: str) -> None:
        dg = self._datagrams.get(key)
        if dg is not None:
            self._forget(dg)
        self._drop(reason)

    def _forget(self, dg: Datagram) -> None:
        del self._datagrams[dg.key]
        self.memory -= dg.charge

    def expire(self, now: float) -> list[Datagram]:
        """Drop (and count) every datagram whose time ran out at ``now``; returns them."""
        expired: list[Datagram] = []
        timeout = self.config.timeout
        while self._datagrams:
            oldest = next(iter(self._datagrams.values()))
            if oldest.created + timeout > now:
                break
            self._forget(oldest)
            self._drop(TIMEOUT)
            expired.append(oldest)
        return expired

    def next_deadline(self) -> float | None:
        """When the oldest datagram in progress times out, or None."""
        if not self._datagrams:
            return None
        return next(iter(self._datagrams.values())).created + self.config.timeout

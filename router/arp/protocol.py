"""ARP for IPv4 over Ethernet: answering, learning, resolving, timers, conflict detection.

A sans-I/O component. The engine feeds it received ARP headers
(:meth:`Arp.input`), asks it for next-hop MACs (:meth:`Arp.resolve`), runs
its timers (:meth:`Arp.tick` at :meth:`Arp.next_deadline`) and receives its
output through an :class:`ArpSink`: ARP frames to transmit, held packets that
became sendable, held packets that could not be delivered (for ICMP
host-unreachable), and events.

Each interface with IPv4 has an ``LlTable`` (``router/arp/lltable.py``, created by
:meth:`Arp.attach_interface`, the seed's ``in_domifattach``). Dynamic entries
move through the reachability table of ``router/arp/nud.py``; addresses added
to an interface go through RFC 5227 conflict detection
(``router/arp/acd.py``) before they are answered for.

The per-packet cost of :meth:`Arp.resolve` for a usable entry is one dict
lookup and one attribute check. ``LlTable.generation`` changes whenever an
entry is added, removed, or changes state or MAC: a next-hop cache may keep a
MAC while the generation holds, and should cache only entries whose state is
REACHABLE or PERMANENT so that STALE entries still pass through here and get
verified.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from router.arp.acd import AcdState, ConflictDetector
from router.arp.config import ArpConfig, ArpDrop, ArpStats
from router.arp.lltable import (
    ALL_ONES,
    InterfaceOf,
    LleFlags,
    LlEntry,
    LlInfo,
    LlTable,
    NudState,
    OnLink,
    RouteLookup,
    never_on_link,
)
from router.arp.nud import STATES_WITH_MAC, NudEvent, Reachability
from router.arp.output import ArpOutput, ArpSink, CallableSink, ntoa
from router.errors import (
    EHOSTUNREACH,
    EINVAL,
    EJUSTRETURN,
    ENOBUFS,
    ENXIO,
    ESRCH,
    RouterError,
)
from router.events import EventKind
from router.link.ifnet import IfFlags, Interface
from router.wire import Malformed
from router.wire import arp as wire

__all__ = ["Arp", "ArpSink", "CallableSink", "IfAddrLike"]


class IfAddrLike(Protocol):
    """What :meth:`Arp.address_added` reads of an interface address.

    ``probes``: RFC 5227 probes this address asked for (None: the
    configuration's ``probe_num``).
    """

    @property
    def addr(self) -> int: ...

    @property
    def probes(self) -> int | None: ...


def _bad_sender_ip(addr: int) -> bool:
    """Multicast/reserved (224/3), loopback (127/8): never a neighbour's address."""
    return addr >= 0xE0000000 or addr >> 24 == 127


class Arp:
    """The ARP protocol over every interface it is attached to.

    ``route_lookup(addr)`` is the route table's longest-prefix match (for the
    seed's rtcheck). ``interface_of(ifindex)`` finds an interface (defaults to
    the interfaces ARP is attached to). ``is_local(ifp, addr)`` and
    ``local_addresses(ifp)`` default to the interface-address entries that
    :meth:`address_added` creates. ``on_link(ifp, addr)`` says whether one of
    ``ifp``'s own prefixes covers ``addr`` (address control's
    ``InetDomain.on_link``; the rtcheck needs it for the same prefix on two
    interfaces; by default nothing is). ``rng`` drives the randomised timers
    (seeded from ``config.seed`` when not given).
    """

    def __init__(
        self,
        sink: ArpSink,
        route_lookup: RouteLookup,
        config: ArpConfig | None = None,
        *,
        rng: random.Random | None = None,
        interface_of: InterfaceOf | None = None,
        is_local: Callable[[Interface, int], bool] | None = None,
        local_addresses: Callable[[Interface], Sequence[int]] | None = None,
        on_link: OnLink = never_on_link,
    ) -> None:
        self.config = config or ArpConfig()
        self.stats = ArpStats()
        self._sink = sink
        self._route_lookup = route_lookup
        self._on_link = on_link
        self._rng = rng or random.Random(self.config.seed)
        self._interface_of = interface_of or self._attached_interface
        self._is_local = is_local or self._has_ifaddr_entry
        self._local_addresses = local_addresses or self._ifaddr_entries
        self._tables: dict[int, LlTable] = {}
        self._groups: dict[int, dict[int, int]] = {}
        self._out = ArpOutput(sink, self.stats, self._tables, self._source_for)
        self._nud = Reachability(self.config, self.stats, self._out, self._rng, self._tables)
        self._acd = ConflictDetector(self.config, self._out, self._rng)
        self._now = 0.0

    # -- per-interface tables (in_domifattach / in_domifdetach) ---------------

    def attach_interface(self, ifp: Interface) -> LlTable:
        """``in_domifattach``: give ``ifp`` its ARP table (the existing one if it has one)."""
        table = self._tables.get(ifp.index)
        if table is not None and table.ifp is ifp:
            return table
        if table is not None:  # the index went to another interface: the old table goes
            self.detach_interface(table.ifp)
        table = LlTable(ifp, self._route_lookup, self._interface_of, self._on_link)
        self._tables[ifp.index] = table
        return table

    def detach_interface(self, ifp: Interface) -> int:
        """``in_domifdetach``: free ``ifp``'s table; returns the held packets dropped."""
        table = self._tables.pop(ifp.index, None)
        self._groups.pop(ifp.index, None)
        self._acd.stop_interface(ifp)
        if table is None:
            return 0
        dropped = sum(table.free_entry(entry) for entry in table.free())
        self.stats.held_dropped += dropped
        return dropped

    @property
    def reachability(self) -> Reachability:
        """The reachability machine (its ``step`` applies one transition)."""
        return self._nud

    @property
    def conflicts(self) -> ConflictDetector:
        """RFC 5227 conflict detection (its ``step`` applies one transition)."""
        return self._acd

    def table(self, ifp: Interface) -> LlTable | None:
        return self._tables.get(ifp.index)

    def generation(self, ifp: Interface) -> int:
        """The generation of ``ifp``'s table (-1 without one)."""
        table = self._tables.get(ifp.index)
        return table.generation if table is not None else -1

    def _attached_interface(self, ifindex: int) -> Interface | None:
        table = self._tables.get(ifindex)
        return table.ifp if table is not None else None

    def _has_ifaddr_entry(self, ifp: Interface, addr: int) -> bool:
        table = self._tables.get(ifp.index)
        return table is not None and addr in table.ifaddrs

    def _ifaddr_entries(self, ifp: Interface) -> list[int]:
        """Our addresses on ``ifp``: its table's own index, never a walk of every entry
        (a solicitation during a scan would otherwise cost the table's size)."""
        table = self._tables.get(ifp.index)
        return list(table.ifaddrs) if table is not None else []

    # -- resolution (the per-packet part) -------------------------------------

    def resolve(self, ifp: Interface, next_hop: int, packet: bytes,
                now: float) -> tuple[int, bytes]:
        """The MAC of ``next_hop`` on ``ifp``: ``(0, mac)``, ``(EJUSTRETURN, b"")`` or an errno.

        ``EJUSTRETURN``: the packet is held until the neighbour answers.
        ``EHOSTUNREACH``: the neighbour failed to answer lately. ``EINVAL``: no
        route allows an entry here (the seed's rtcheck) or the interface does
        not ARP; ``ENOBUFS``: the table is full; ``ENXIO``: no ARP table.
        """
        table = self._tables.get(ifp.index)
        if table is None:
            return ENXIO, b""
        entry = table.entries.get(next_hop)
        if entry is not None and entry.ready:
            return 0, entry.lladdr
        return self._resolve_slow(table, entry, next_hop, packet, now)

    def _resolve_slow(self, table: LlTable, entry: LlEntry | None, next_hop: int,
                      packet: bytes, now: float) -> tuple[int, bytes]:
        self._note_time(now)
        if entry is None:
            if table.ifp.flags & (IfFlags.NOARP | IfFlags.STATICARP):
                return EINVAL, b""
            error, entry = self._create_dynamic(table, next_hop, now)
            if entry is None:
                return error, b""
        if entry.state is NudState.FAILED:
            return EHOSTUNREACH, b""
        self._nud.step(entry, NudEvent.SEND, now, packet=packet)
        if entry.state is NudState.INCOMPLETE:
            return EJUSTRETURN, b""
        return 0, entry.lladdr

    def _create_dynamic(self, table: LlTable, addr: int,
                        now: float) -> tuple[int, LlEntry | None]:
        """A new dynamic entry, after the rtcheck and, if needed, garbage collection."""
        error = table.rtcheck(addr)
        if error:
            return error, None
        if not self._nud.make_room(table, now):
            self.stats.table_full += 1
            return ENOBUFS, None
        return table.create(addr, LleFlags.NONE, now)

    # -- input -----------------------------------------------------------------

    def input(self, ifp: Interface, payload: bytes | bytearray | memoryview,
              now: float) -> None:
        """Handle one received ARP header (the frame after its Ethernet header).

        Never raises for packet content: every refusal is a counted drop.
        """
        self._note_time(now)
        try:
            arp = wire.parse(payload)
        except Malformed as exc:
            self._drop(ArpDrop(exc.reason))
            ifp.counters.ierrors += 1  # a malformed header is an input error of the link too
            return
        table = self._tables.get(ifp.index)
        if table is None:
            self._drop(ArpDrop.NO_TABLE)
            return
        reason = self._sanity(ifp, arp)
        if reason is not None:
            self._drop(reason)
            return
        if arp.op == wire.OP_REQUEST:
            self.stats.requests_in += 1
        else:
            self.stats.replies_in += 1
        if arp.spa == 0:
            self._on_probe(table, arp, now)
            return
        if self._from_our_address(ifp, arp, now):
            return
        for_us = self._answers_for(ifp, arp.tpa)
        if not ifp.flags & IfFlags.STATICARP:
            self._learn(table, arp, for_us, now)
        if arp.op == wire.OP_REQUEST:
            self._answer(table, arp, for_us)

    @staticmethod
    def _sanity(ifp: Interface, arp: wire.ArpHeader) -> ArpDrop | None:
        if ifp.flags & IfFlags.NOARP:
            return ArpDrop.NOARP
        if wire.is_multicast_mac(arp.sha) or arp.sha == wire.ZERO_MAC:
            return ArpDrop.BAD_SENDER_HW
        if arp.sha == ifp.lladdr:
            return ArpDrop.OWN_FRAME
        if _bad_sender_ip(arp.spa):
            return ArpDrop.BAD_SENDER_IP
        return None

    def _drop(self, reason: ArpDrop) -> None:
        self.stats.drops[reason] += 1

    def _answers_for(self, ifp: Interface, addr: int) -> bool:
        """Is ``addr`` ours on ``ifp`` and past conflict detection?"""
        return self._is_local(ifp, addr) and self._acd.usable(ifp, addr)

    def _on_probe(self, table: LlTable, arp: wire.ArpHeader, now: float) -> None:
        """An ARP probe (sender IP 0): never learned from; a collision if we probe too."""
        if arp.op != wire.OP_REQUEST:
            return
        record = self._acd.get(table.ifp, arp.tpa)
        if record is not None and record.state is AcdState.PROBING:
            self._acd.on_probe(record, arp.sha, now)
            return
        self._answer(table, arp, self._answers_for(table.ifp, arp.tpa))

    def _from_our_address(self, ifp: Interface, arp: wire.ArpHeader, now: float) -> bool:
        """Another MAC uses one of our addresses as its sender: a claim, not news."""
        record = self._acd.get(ifp, arp.spa)
        if record is None and not self._is_local(ifp, arp.spa):
            return False
        self.stats.duplicate_address += 1
        if record is not None:
            self._acd.on_claim(record, arp.sha, now)
        return True

    def _learn(self, table: LlTable, arp: wire.ArpHeader, for_us: bool, now: float) -> None:
        """Create or update the sender's entry.

        Only ARP addressed to us may create an entry (and only where a route
        allows it); anything else merely refreshes an existing one. Static
        entries never change.
        """
        entry = table.entries.get(arp.spa)
        reply = arp.op == wire.OP_REPLY and for_us
        if entry is None:
            if not for_us:
                return
            error, entry = self._create_dynamic(table, arp.spa, now)
            if entry is None:
                if error == ENOBUFS:
                    return
                self.stats.learn_refused += 1
                return
        elif entry.static:
            if entry.lladdr != arp.sha:
                self.stats.static_kept += 1
            return
        same = entry.state in STATES_WITH_MAC and entry.lladdr == arp.sha
        if reply:
            event = NudEvent.REPLY_SAME if same else NudEvent.REPLY_NEW
        else:
            event = NudEvent.HEARD_SAME if same else NudEvent.HEARD_NEW
        if not self._nud.step(entry, event, now, lladdr=arp.sha) and (
                entry.state is NudState.NONE):
            table.unlink(entry)  # a fresh entry the table had no row for

    def _answer(self, table: LlTable, arp: wire.ArpHeader, for_us: bool) -> None:
        """Reply to a request for one of our addresses, or for a published entry."""
        if arp.tpa == arp.spa:
            return  # gratuitous ARP: news, not a question
        ifp = table.ifp
        if for_us:
            self._out.reply(ifp, ifp.lladdr, arp)
            self.stats.replies_out += 1
            return
        published = table.entries.get(arp.tpa)
        if (published is None or not published.flags & LleFlags.PUB
                or not published.flags & LleFlags.VALID or published.lladdr == arp.sha):
            return  # (never answer the proxied host itself)
        self._out.reply(ifp, published.lladdr, arp)
        self.stats.proxy_replies_out += 1

    def _source_for(self, ifp: Interface, target: int, packet: bytes | None) -> int:
        """Sender address of a solicitation: the held packet's source if it is ours,
        else our usable address sharing the longest prefix with the target, else 0."""
        if packet is not None and len(packet) >= 20:
            source = int.from_bytes(packet[12:16], "big")
            if source and self._answers_for(ifp, source):
                return source
        best, best_common = 0, -1
        for addr in self._local_addresses(ifp):
            if not self._acd.usable(ifp, addr):
                continue
            common = 32 - (addr ^ target).bit_length()
            if common > best_common:
                best, best_common = addr, common
        return best

    # -- timers ----------------------------------------------------------------

    def _note_time(self, now: float) -> None:
        if now > self._now:
            self._now = now

    def tick(self, now: float) -> None:
        """Run every timer due at ``now`` and free deleted entries."""
        self._note_time(now)
        for table in self._tables.values():
            if table.dying:
                self.stats.held_dropped += table.reap()
        timers = self._nud.timers
        while (entry := timers.pop_due(now)) is not None:
            self._nud.on_timer(entry, now)
        while (record := self._acd.timers.pop_due(now)) is not None:
            self._acd.on_timer(record, now)
        timers.compact(sum(len(t) for t in self._tables.values()))

    def next_deadline(self) -> float | None:
        """When :meth:`tick` should run next, or None if nothing is pending."""
        # asked after every batch of frames: no lists or generators on the way
        first = self._nud.timers.next_deadline()
        other = self._acd.timers.next_deadline()
        if other is not None and (first is None or other < first):
            first = other
        for table in self._tables.values():
            if table.dying:  # freed entries wait to be reaped at the next tick
                return self._now if first is None or self._now < first else first
        return first

    # -- agent API -------------------------------------------------------------

    def entries(self, ifp: Interface | None = None) -> list[LlInfo]:
        """``in_lltable_dump`` of one interface, or of all in interface index order."""
        if ifp is not None:
            table = self._tables.get(ifp.index)
            return table.dump() if table is not None else []
        return [info for _, table in sorted(self._tables.items()) for info in table.dump()]

    def set_static(self, ifp: Interface, addr: int, mac: bytes,
                   published: bool = False) -> LlInfo:
        """Add or replace a static (optionally published) entry.

        ``EINVAL`` for a MAC that is not a 6-byte unicast address or where no
        route allows an entry (rtcheck); ``EEXIST`` over an interface-address
        entry; ``ENXIO`` without an ARP table.
        """
        table = self._require_table(ifp)
        subject = f"static ARP {ntoa(addr)} on {ifp.name}"
        mac = bytes(mac)
        if len(mac) != wire.HLEN_ETHER or wire.is_multicast_mac(mac) or mac == wire.ZERO_MAC:
            raise RouterError(EINVAL, "lladdr", mac.hex(":"), subject, "not a unicast MAC")
        entry = table.entries.get(addr)
        kind = EventKind.ARP_CHANGED
        if entry is None:
            error, entry = table.create(addr, LleFlags.STATIC, self._now)
            if entry is None:
                raise RouterError(error, "addr", ntoa(addr), subject, "no route covers it")
            kind = EventKind.ARP_ADDED
        error = table.make_static(entry, mac, published)
        if error:
            raise RouterError(error, "addr", ntoa(addr), subject, "an interface address")
        self._nud.release_held(entry)
        self._out.changed(entry, kind)
        return next(info for info in table.dump() if info.addr == addr)

    def delete(self, ifp: Interface, addr: int) -> None:
        """Delete the entry of ``addr``: ``ESRCH`` if absent, ``EPERM`` for our own address."""
        table = self._require_table(ifp)
        error, entry = table.delete(addr)
        if error:
            detail = "no such entry" if error == ESRCH else (
                "an interface address (delete the address instead)")
            raise RouterError(error, "addr", ntoa(addr), f"ARP {ntoa(addr)} on {ifp.name}",
                              detail)
        assert entry is not None
        self._out.changed(entry, EventKind.ARP_DELETED)

    def flush(self, ifp: Interface | None = None, prefix: int = 0, mask: int | None = None,
              include_static: bool = False) -> int:
        """Drop the entries on ``prefix/mask`` (everything by default); returns how many."""
        mask = (0 if prefix == 0 else ALL_ONES) if mask is None else mask
        tables = list(self._tables.values()) if ifp is None else [self._require_table(ifp)]
        return sum(self._flush_table(t, prefix, mask, include_static) for t in tables)

    def _flush_table(
        self, table: LlTable, prefix: int, mask: int, include_static: bool,
        keep_ifaddr: bool = False,
    ) -> int:
        doomed = table.prefix_free(prefix, mask, include_static, keep_ifaddr)
        for entry in doomed:
            self.stats.held_dropped += table.free_entry(entry)
            self._out.changed(entry, EventKind.ARP_DELETED)
        return len(doomed)

    def _require_table(self, ifp: Interface) -> LlTable:
        table = self._tables.get(ifp.index)
        if table is None:
            raise RouterError(ENXIO, "interface", ifp.name, f"ARP on {ifp.name}",
                              "no ARP table on this interface")
        return table

    def acd_state(self, ifp: Interface, addr: int) -> AcdState | None:
        record = self._acd.get(ifp, addr)
        return record.state if record is not None else None

    # -- NeighborHooks (called by router/inet/domain.py) ------------------------------

    def address_added(self, ifp: Interface, ia: IfAddrLike) -> None:
        """Our new address: an interface-address entry, then conflict detection.

        The entry carries our MAC and answers requests once probing is over
        (at once without probes, the default: the first gratuitous ARP goes
        out now); a dynamic entry someone had for the address gives way to
        it. Hooks carry no clock: timers start from the latest time ARP has
        seen.
        """
        table = self._tables.get(ifp.index)
        addr = ia.addr
        if table is None or addr == 0:
            return
        entry = table.entries.get(addr)
        if entry is not None and not entry.flags & LleFlags.IFADDR:
            self._nud.remove(entry)
            entry = None
        if entry is None:
            entry = table.create(addr, LleFlags.IFADDR, self._now)[1]
            if entry is not None:
                self._out.changed(entry, EventKind.ARP_ADDED)
        if entry is None or ifp.flags & IfFlags.NOARP:
            return
        record = self._acd.get(ifp, addr)
        if record is None or record.state is AcdState.CONFLICTED:
            self._acd.start(ifp, addr, self._now, ia.probes)

    def link_address_changed(self, ifp: Interface) -> None:
        """``ifp`` has a new MAC: our entries carry it, usable addresses are announced."""
        table = self._tables.get(ifp.index)
        if table is None:
            return
        for entry in list(table.entries.values()):
            if entry.flags & LleFlags.IFADDR and entry.lladdr != ifp.lladdr:
                entry.lladdr = bytes(ifp.lladdr)
                self._out.changed(entry, EventKind.ARP_CHANGED)
                if not ifp.flags & IfFlags.NOARP and self._acd.usable(ifp, entry.addr):
                    self._out.send_announcement(ifp, entry.addr)

    def scrub_address(self, ifp: Interface, addr: int) -> None:
        """``arp_ifscrub``: our address went; its entry goes, static or not."""
        self._acd.stop(ifp, addr)
        table = self._tables.get(ifp.index)
        if table is None:
            return
        error, entry = table.delete(addr, LleFlags.IFADDR)
        if not error and entry is not None:
            self._out.changed(entry, EventKind.ARP_DELETED)

    def flush_prefix(self, prefix: int, mask: int, include_static: bool) -> None:
        """``lltable_prefix_free`` on every interface, sparing our own addresses.

        The seed may free interface-address entries here because FreeBSD
        answers ARP from its address list; vrc answers from those entries,
        so an address that is still ours keeps its entry (it goes with the
        address itself, through :meth:`scrub_address`). Otherwise deleting
        an address on one interface would silence another interface that
        holds an address on the same prefix (multipath).
        """
        for table in list(self._tables.values()):
            self._flush_table(table, prefix, mask, include_static, keep_ifaddr=True)

    def join_group(self, ifp: Interface, group: int) -> None:
        """Multicast needs no ARP; the membership is only counted."""
        groups = self._groups.setdefault(ifp.index, {})
        groups[group] = groups.get(group, 0) + 1

    def leave_group(self, ifp: Interface, group: int) -> None:
        groups = self._groups.get(ifp.index, {})
        if groups.get(group, 0) > 1:
            groups[group] -= 1
        else:
            groups.pop(group, None)

    def groups(self, ifp: Interface) -> dict[int, int]:
        return dict(self._groups.get(ifp.index, {}))


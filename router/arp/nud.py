"""Neighbour reachability as one transition table (RFC 4861 section 7.3, run for ARP).

``TRANSITIONS[(state, event)] = (next state, actions)``. The ARP protocol
(``router/arp/protocol.py``) turns what happens — a packet to send, an ARP packet
heard, a timer — into a :class:`NudEvent`, looks the pair up and performs the
actions in order. A pair missing from the table changes nothing. Tests walk
the table.

Events:

* ``SEND`` — a packet wants this neighbour (``resolve``).
* ``REPLY_SAME`` / ``REPLY_NEW`` — an ARP reply addressed to us, with the MAC
  we have / another one (any MAC counts as new when we have none). A reply is
  proof of two-way reachability.
* ``HEARD_SAME`` / ``HEARD_NEW`` — any other ARP from the neighbour (a request,
  a gratuitous ARP): news of its MAC, not a proof that it hears us.
* ``TIMEOUT`` — the state's timer ran out (reachable time, delay, stale
  time, failed hold-down).
* ``RETRANSMIT`` / ``GIVE_UP`` — the retransmit timer of INCOMPLETE or PROBE,
  with solicitations left / none left.
"""

from __future__ import annotations

import enum
import heapq
import random
from typing import Protocol

from router.arp.config import ArpConfig, ArpStats
from router.arp.lltable import UNRESOLVED_STATES, LleFlags, LlEntry, LlTable, NudState
from router.arp.timers import TimerHeap
from router.events import EventKind
from router.link.ifnet import Interface
from router.wire.arp import ETHER_BROADCAST


class NudEvent(enum.Enum):
    SEND = "SEND"
    REPLY_SAME = "REPLY_SAME"
    REPLY_NEW = "REPLY_NEW"
    HEARD_SAME = "HEARD_SAME"
    HEARD_NEW = "HEARD_NEW"
    TIMEOUT = "TIMEOUT"
    RETRANSMIT = "RETRANSMIT"
    GIVE_UP = "GIVE_UP"


class NudAction(enum.Enum):
    HOLD = "HOLD"  # queue the packet (bounded, oldest dropped first)
    SET_MAC = "SET_MAC"  # take the MAC carried by the ARP packet
    CONFIRM = "CONFIRM"  # reachability confirmed: reachable until now + reachable time
    RELEASE = "RELEASE"  # hand the held packets out for sending
    SOLICIT_BROADCAST = "SOLICIT_BROADCAST"  # ARP request to ff:ff:ff:ff:ff:ff
    SOLICIT_UNICAST = "SOLICIT_UNICAST"  # ARP request to the known MAC
    ARM_RETRANSMIT = "ARM_RETRANSMIT"  # next solicitation after the backoff interval
    ARM_REACHABLE = "ARM_REACHABLE"  # timer at the end of the reachable time
    ARM_DELAY = "ARM_DELAY"  # timer after delay_first_probe_time
    ARM_STALE = "ARM_STALE"  # timer after stale_time (unused entry collected)
    ARM_FAILED = "ARM_FAILED"  # hold-down timer: EHOSTUNREACH until it runs out
    UNREACHABLE = "UNREACHABLE"  # held packets back to the engine for ICMP host-unreachable
    FORGET_MAC = "FORGET_MAC"  # the MAC is no longer trusted (entry not VALID)
    REMOVE = "REMOVE"  # the entry leaves the table


S = NudState
E = NudEvent
A = NudAction

_CONFIRMED = (A.CONFIRM, A.ARM_REACHABLE)
_NEW_MAC_CONFIRMED = (A.SET_MAC, A.CONFIRM, A.ARM_REACHABLE)
_NEWS_OF_MAC = (A.SET_MAC, A.ARM_STALE)

TRANSITIONS: dict[tuple[NudState, NudEvent], tuple[NudState, tuple[NudAction, ...]]] = {
    # No entry yet: the first packet starts resolution; a neighbour talking
    # to us gets an entry we have not verified.
    (S.NONE, E.SEND): (S.INCOMPLETE, (A.HOLD, A.SOLICIT_BROADCAST, A.ARM_RETRANSMIT)),
    (S.NONE, E.REPLY_NEW): (S.STALE, _NEWS_OF_MAC),
    (S.NONE, E.HEARD_NEW): (S.STALE, _NEWS_OF_MAC),
    # Resolving.
    (S.INCOMPLETE, E.SEND): (S.INCOMPLETE, (A.HOLD,)),
    (S.INCOMPLETE, E.REPLY_NEW): (S.REACHABLE, (*_NEW_MAC_CONFIRMED, A.RELEASE)),
    # Held packets leave, which is a use of a STALE entry: DELAY at once.
    (S.INCOMPLETE, E.HEARD_NEW): (S.DELAY, (A.SET_MAC, A.ARM_DELAY, A.RELEASE)),
    (S.INCOMPLETE, E.RETRANSMIT): (S.INCOMPLETE, (A.SOLICIT_BROADCAST, A.ARM_RETRANSMIT)),
    (S.INCOMPLETE, E.GIVE_UP): (S.FAILED, (A.UNREACHABLE, A.ARM_FAILED)),
    # Confirmed recently.
    (S.REACHABLE, E.SEND): (S.REACHABLE, ()),
    (S.REACHABLE, E.REPLY_SAME): (S.REACHABLE, _CONFIRMED),
    (S.REACHABLE, E.REPLY_NEW): (S.REACHABLE, _NEW_MAC_CONFIRMED),
    (S.REACHABLE, E.HEARD_SAME): (S.REACHABLE, ()),
    (S.REACHABLE, E.HEARD_NEW): (S.STALE, _NEWS_OF_MAC),
    (S.REACHABLE, E.TIMEOUT): (S.STALE, (A.ARM_STALE,)),
    # Usable but unverified: the next use starts verification.
    (S.STALE, E.SEND): (S.DELAY, (A.ARM_DELAY,)),
    (S.STALE, E.REPLY_SAME): (S.REACHABLE, _CONFIRMED),
    (S.STALE, E.REPLY_NEW): (S.REACHABLE, _NEW_MAC_CONFIRMED),
    (S.STALE, E.HEARD_SAME): (S.STALE, ()),
    (S.STALE, E.HEARD_NEW): (S.STALE, _NEWS_OF_MAC),
    (S.STALE, E.TIMEOUT): (S.NONE, (A.REMOVE,)),
    # Used while stale: give upper layers a moment, then probe.
    (S.DELAY, E.SEND): (S.DELAY, ()),
    (S.DELAY, E.REPLY_SAME): (S.REACHABLE, _CONFIRMED),
    (S.DELAY, E.REPLY_NEW): (S.REACHABLE, _NEW_MAC_CONFIRMED),
    (S.DELAY, E.HEARD_SAME): (S.DELAY, ()),
    (S.DELAY, E.HEARD_NEW): (S.STALE, _NEWS_OF_MAC),
    (S.DELAY, E.TIMEOUT): (S.PROBE, (A.SOLICIT_UNICAST, A.ARM_RETRANSMIT)),
    # Unicast probes to the MAC we have.
    (S.PROBE, E.SEND): (S.PROBE, ()),
    (S.PROBE, E.REPLY_SAME): (S.REACHABLE, _CONFIRMED),
    (S.PROBE, E.REPLY_NEW): (S.REACHABLE, _NEW_MAC_CONFIRMED),
    (S.PROBE, E.HEARD_SAME): (S.PROBE, ()),
    (S.PROBE, E.HEARD_NEW): (S.STALE, _NEWS_OF_MAC),
    (S.PROBE, E.RETRANSMIT): (S.PROBE, (A.SOLICIT_UNICAST, A.ARM_RETRANSMIT)),
    (S.PROBE, E.GIVE_UP): (S.FAILED, (A.FORGET_MAC, A.UNREACHABLE, A.ARM_FAILED)),
    # Just failed: refuse with EHOSTUNREACH until the hold-down ends, but
    # believe the neighbour if it speaks up.
    (S.FAILED, E.SEND): (S.FAILED, ()),
    (S.FAILED, E.REPLY_NEW): (S.REACHABLE, _NEW_MAC_CONFIRMED),
    (S.FAILED, E.HEARD_NEW): (S.STALE, _NEWS_OF_MAC),
    (S.FAILED, E.TIMEOUT): (S.NONE, (A.REMOVE,)),
}

# States with a MAC to compare against; elsewhere any MAC is "new".
STATES_WITH_MAC = frozenset({S.REACHABLE, S.STALE, S.DELAY, S.PROBE})
# States whose timer is the retransmit timer (RETRANSMIT/GIVE_UP), not TIMEOUT.
SOLICITING = frozenset({S.INCOMPLETE, S.PROBE})


def transition(state: NudState, event: NudEvent
               ) -> tuple[NudState, tuple[NudAction, ...]] | None:
    """The table's answer for ``(state, event)``, or None: nothing happens."""
    return TRANSITIONS.get((state, event))


class NudOutput(Protocol):
    """What the machine asks of the ARP protocol (``router.arp.protocol.Arp`` implements it)."""

    def solicit(self, entry: LlEntry, eth_dst: bytes) -> None:
        """Send an ARP request for ``entry.addr`` to ``eth_dst``."""
        ...

    def release(self, ifp: Interface, lladdr: bytes, packets: list[bytes]) -> None: ...

    def unreachable(self, ifp: Interface, packets: list[bytes]) -> None: ...

    def changed(self, entry: LlEntry, kind: EventKind) -> None:
        """An entry was added, changed or removed: bump the generation, emit the event."""
        ...


class Reachability:
    """Runs ``TRANSITIONS`` over the dynamic entries of every table, with their timers.

    Also owns the size limit: :meth:`make_room` is Linux's ``neigh_alloc``
    garbage collection. ``tables`` is the ARP protocol's own dict of tables,
    shared, not copied.
    """

    __slots__ = ("_config", "_last_gc", "_out", "_reachable", "_reachable_drawn_at", "_rng",
                 "_stats", "_tables", "timers")

    def __init__(self, config: ArpConfig, stats: ArpStats, out: NudOutput,
                 rng: random.Random, tables: dict[int, LlTable]) -> None:
        self._config = config
        self._stats = stats
        self._out = out
        self._rng = rng
        self._tables = tables
        self._last_gc = float("-inf")
        self._reachable = config.base_reachable_time
        self._reachable_drawn_at = float("-inf")
        self.timers: TimerHeap[LlEntry] = TimerHeap(
            lambda entry: not entry.flags & LleFlags.DELETED)

    def step(self, entry: LlEntry, event: NudEvent, now: float, *, lladdr: bytes = b"",
             packet: bytes | None = None) -> bool:
        """Apply ``TRANSITIONS`` to ``entry``; False if the pair is not in the table."""
        found = transition(entry.state, event)
        if found is None:
            return False
        next_state, actions = found
        before_state, before_mac = entry.state, entry.lladdr
        if next_state is not before_state:
            if next_state in SOLICITING:
                entry.probes = 0
            entry.set_state(next_state)
            self._track_unresolved(entry, before_state, next_state)
        for action in actions:
            self._perform(entry, action, before_state, now, lladdr, packet)
        if entry.flags & LleFlags.DELETED:
            return True
        if before_state is NudState.NONE:
            self._out.changed(entry, EventKind.ARP_ADDED)
        elif entry.state is not before_state or entry.lladdr != before_mac:
            self._out.changed(entry, EventKind.ARP_CHANGED)
        return True

    def _track_unresolved(self, entry: LlEntry, before: NudState, after: NudState) -> None:
        """Keep the table's ``unresolved`` set in step with a state change."""
        was, now_is = before in UNRESOLVED_STATES, after in UNRESOLVED_STATES
        if was == now_is:
            return
        table = self._tables.get(entry.ifp.index)
        if table is None or table.entries.get(entry.addr) is not entry:
            return
        if now_is:
            table.unresolved[entry] = None
        else:
            table.unresolved.pop(entry, None)

    def _perform(self, entry: LlEntry, action: NudAction, before: NudState, now: float,
                 lladdr: bytes, packet: bytes | None) -> None:
        config = self._config
        if action is NudAction.HOLD:
            self._hold(entry, packet)
        elif action is NudAction.SET_MAC:
            entry.lladdr = bytes(lladdr)
            entry.flags |= LleFlags.VALID
            entry.updated = now
        elif action is NudAction.CONFIRM:
            entry.reachable_until = now + self._reachable_time(now)
            entry.updated = now
        elif action is NudAction.RELEASE:
            self.release_held(entry)
        elif action is NudAction.SOLICIT_BROADCAST:
            self._out.solicit(entry, ETHER_BROADCAST)
        elif action is NudAction.SOLICIT_UNICAST:
            self._out.solicit(entry, entry.lladdr)
        elif action is NudAction.ARM_RETRANSMIT:
            self.timers.arm(entry, now + config.retransmit_interval(entry.probes))
        elif action is NudAction.ARM_REACHABLE:
            self._arm_reachable(entry, before)
        elif action is NudAction.ARM_DELAY:
            self.timers.arm(entry, now + config.delay_first_probe_time)
        elif action is NudAction.ARM_STALE:
            # good until now: the collector takes STALE entries oldest first,
            # so one that just left REACHABLE (perhaps in use) goes last
            entry.updated = now
            self.timers.arm(entry, now + config.stale_time)
        elif action is NudAction.ARM_FAILED:
            self.timers.arm(entry, now + config.failed_hold_time)
        elif action is NudAction.UNREACHABLE:
            self._give_back(entry)
        elif action is NudAction.FORGET_MAC:
            entry.flags &= ~LleFlags.VALID
            entry.lladdr = b""
        elif action is NudAction.REMOVE:
            self.remove(entry)

    def _hold(self, entry: LlEntry, packet: bytes | None) -> None:
        """Queue a packet while resolving; a full queue drops its oldest packet."""
        if packet is None:
            return
        if len(entry.hold) >= self._config.hold_limit:
            entry.hold.popleft()
            self._stats.hold_drops += 1
        entry.hold.append(packet)

    def release_held(self, entry: LlEntry) -> None:
        if entry.hold:
            packets = list(entry.hold)
            entry.hold.clear()
            self._out.release(entry.ifp, entry.lladdr, packets)

    def _give_back(self, entry: LlEntry) -> None:
        if entry.hold:
            packets = list(entry.hold)
            entry.hold.clear()
            self._stats.unreachable += len(packets)
            self._out.unreachable(entry.ifp, packets)

    def _arm_reachable(self, entry: LlEntry, before: NudState) -> None:
        """Arm the end of the reachable time, lazily.

        A confirmation only moves ``reachable_until``; a timer already due no
        later stays, and when it fires early it re-arms itself (no heap item
        per confirmation).
        """
        pending = entry.timer_at
        if before is NudState.REACHABLE and 0.0 < pending <= entry.reachable_until:
            return
        self.timers.arm(entry, entry.reachable_until)

    def _reachable_time(self, now: float) -> float:
        """The current randomised reachable time, drawn anew every ``reachable_redraw``.

        One value for a while (as Linux and RFC 4861 do) rather than one per
        confirmation keeps ``reachable_until`` moving forward only, so the
        lazy timer of :meth:`_arm_reachable` never needs a new heap item.
        """
        config = self._config
        if now - self._reachable_drawn_at >= config.reachable_redraw:
            factor = self._rng.uniform(config.reachable_jitter_min, config.reachable_jitter_max)
            self._reachable = config.base_reachable_time * factor
            self._reachable_drawn_at = now
        return self._reachable

    def on_timer(self, entry: LlEntry, now: float) -> None:
        state = entry.state
        if state is NudState.REACHABLE and entry.reachable_until > now:
            self.timers.arm(entry, entry.reachable_until)
            return
        if state is NudState.STALE and self.dynamic_total() <= self._config.gc_thresh1:
            self.timers.arm(entry, now + self._config.stale_time)  # small table: keep it
            return
        if state in SOLICITING:
            limit = self._config.mcast_solicit if state is NudState.INCOMPLETE else (
                self._config.ucast_solicit)
            event = NudEvent.RETRANSMIT if entry.probes < limit else NudEvent.GIVE_UP
        else:
            event = NudEvent.TIMEOUT
        self.step(entry, event, now)

    # -- removal and garbage collection ---------------------------------------

    def remove(self, entry: LlEntry) -> None:
        table = self._tables.get(entry.ifp.index)
        if table is not None:
            table.unlink(entry)
        else:
            entry.flags |= LleFlags.DELETED
        self._stats.held_dropped += LlTable.free_entry(entry)
        self._out.changed(entry, EventKind.ARP_DELETED)

    def dynamic_total(self) -> int:
        return sum(table.dynamic for table in self._tables.values())

    def make_room(self, table: LlTable, now: float) -> bool:
        """Room for one more dynamic entry in ``table``: Linux's ``neigh_alloc`` rule,
        with unresolved entries bounded on their own.

        * ``table`` already holds ``unresolved_limit`` unresolved entries
          (INCOMPLETE, FAILED): the oldest gives way. A scan recycles its own
          entries and never reaches the resolved ones.
        * Above ``gc_thresh2`` (at most once per ``gc_interval``) or at
          ``gc_thresh3``, entries not in use go until ``gc_thresh2`` are left,
          room for the new one included: FAILED first, then STALE ones, least
          recently updated first. A neighbour in use (REACHABLE, DELAY,
          PROBE) is never taken, nor are static and interface-address
          entries.
        * Still at ``gc_thresh3``: the oldest unresolved entry, of this table
          or else any, gives way. Only when nothing but neighbours in use
          fills the table is a new one refused (False), Linux's "neighbour
          table overflow".
        """
        config = self._config
        if len(table.unresolved) >= config.unresolved_limit:
            self._evict_unresolved(table)
        total = self.dynamic_total()
        hard = total >= config.gc_thresh3
        if hard or (total >= config.gc_thresh2 and now - self._last_gc >= config.gc_interval):
            self._collect(total - config.gc_thresh2 + 1)
            self._last_gc = now
        if self.dynamic_total() >= config.gc_thresh3:
            victim = table if table.unresolved else next(
                (t for t in self._tables.values() if t.unresolved), None)
            if victim is not None:
                self._evict_unresolved(victim)
        return self.dynamic_total() < config.gc_thresh3

    def _evict_unresolved(self, table: LlTable) -> None:
        """The oldest unresolved entry of ``table`` goes (its held packets dropped)."""
        oldest = next(iter(table.unresolved))
        self._stats.unresolved_evictions += 1
        self.remove(oldest)

    def _collect(self, count: int) -> None:
        if count <= 0:
            return
        candidates = (
            entry for table in self._tables.values() for entry in table.entries.values()
            if entry.state is NudState.FAILED or entry.state is NudState.STALE
        )
        victims = heapq.nsmallest(
            count, candidates, key=lambda e: (e.state is not NudState.FAILED, e.updated))
        for entry in victims:
            self._stats.gc_evictions += 1
            self.remove(entry)

"""IPv4 address conflict detection (RFC 5227): probe, announce, defend.

When an address is added to an interface, the ARP protocol hands it to
:class:`ConflictDetector`, which runs one :class:`AcdRecord` per (interface,
address) through ``ACD_TRANSITIONS``:

* PROBING — the record's ``probe_num`` ARP probes (sender IP 0, target our
  address; the configuration's unless the address asked for its own), the
  first after a random ``0..probe_wait``, then ``probe_min..probe_max`` apart,
  then ``announce_wait``. Any ARP from another MAC with our address as
  sender, or another host's probe for it, is a conflict: the address is
  never used (CONFLICTED) and an ``ARP_CONFLICT`` event says so. With no
  probes (the default, as in the seed and every router OS) a record starts
  with ``PROBING_DONE``: the address is in use at once.
* ANNOUNCING — ``announce_num`` gratuitous ARP requests ``announce_interval``
  apart; the address is in use from the first one, which goes out as soon
  as probing is over (at once when there was none).
* DEFENDING — in use. A claim by another host raises ``ARP_CONFLICT`` every
  time and is answered by one announcement at most once per
  ``defend_interval``. A router keeps its configured address (RFC 5227
  section 2.4 (c)); the claim is reported, the operator decides.

The detector does not build frames: it calls the injected :class:`AcdSink`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from router.arp.config import ArpConfig
from router.arp.timers import TimerHeap
from router.link.ifnet import Interface


class AcdState(enum.Enum):
    PROBING = "PROBING"
    ANNOUNCING = "ANNOUNCING"
    DEFENDING = "DEFENDING"
    CONFLICTED = "CONFLICTED"


class AcdEvent(enum.Enum):
    PROBE_DUE = "PROBE_DUE"  # timer while probing, probes left to send
    PROBING_DONE = "PROBING_DONE"  # timer after the last probe's wait
    ANNOUNCE_DUE = "ANNOUNCE_DUE"  # timer while announcing, announcements left
    ANNOUNCING_DONE = "ANNOUNCING_DONE"  # timer after the last announcement
    CLAIM = "CLAIM"  # another MAC sent ARP with our address as sender; no defence lately
    REPEAT_CLAIM = "REPEAT_CLAIM"  # the same, less than defend_interval after our defence
    PROBE_COLLISION = "PROBE_COLLISION"  # another host probes for the address we probe for


class AcdAction(enum.Enum):
    SEND_PROBE = "SEND_PROBE"
    ARM_PROBE_GAP = "ARM_PROBE_GAP"  # probe_min..probe_max, or announce_wait after the last
    SEND_ANNOUNCE = "SEND_ANNOUNCE"
    ARM_ANNOUNCE = "ARM_ANNOUNCE"  # announce_interval
    ARM_NOW = "ARM_NOW"  # fire again in the same tick (the first announcement)
    REPORT_CONFLICT = "REPORT_CONFLICT"  # ARP_CONFLICT event
    DEFEND = "DEFEND"  # one announcement, remembered as the last defence


St = AcdState
Ev = AcdEvent
Ac = AcdAction

ACD_TRANSITIONS: dict[tuple[AcdState, AcdEvent], tuple[AcdState, tuple[AcdAction, ...]]] = {
    (St.PROBING, Ev.PROBE_DUE): (St.PROBING, (Ac.SEND_PROBE, Ac.ARM_PROBE_GAP)),
    (St.PROBING, Ev.PROBING_DONE): (St.ANNOUNCING, (Ac.ARM_NOW,)),
    (St.PROBING, Ev.CLAIM): (St.CONFLICTED, (Ac.REPORT_CONFLICT,)),
    (St.PROBING, Ev.PROBE_COLLISION): (St.CONFLICTED, (Ac.REPORT_CONFLICT,)),
    (St.ANNOUNCING, Ev.ANNOUNCE_DUE): (St.ANNOUNCING, (Ac.SEND_ANNOUNCE, Ac.ARM_ANNOUNCE)),
    (St.ANNOUNCING, Ev.ANNOUNCING_DONE): (St.DEFENDING, ()),
    (St.ANNOUNCING, Ev.CLAIM): (St.ANNOUNCING, (Ac.REPORT_CONFLICT, Ac.DEFEND)),
    (St.ANNOUNCING, Ev.REPEAT_CLAIM): (St.ANNOUNCING, (Ac.REPORT_CONFLICT,)),
    (St.DEFENDING, Ev.CLAIM): (St.DEFENDING, (Ac.REPORT_CONFLICT, Ac.DEFEND)),
    (St.DEFENDING, Ev.REPEAT_CLAIM): (St.DEFENDING, (Ac.REPORT_CONFLICT,)),
}

# States in which the address may be used (answered for, used as a source).
USABLE = frozenset({St.ANNOUNCING, St.DEFENDING})


@dataclass(slots=True, eq=False)
class AcdRecord:
    """Conflict detection for one address on one interface."""

    ifp: Interface
    addr: int
    state: AcdState = AcdState.PROBING
    probes_sent: int = 0
    announces_sent: int = 0
    last_defence: float | None = None
    timer_at: float = 0.0
    timer_token: int = 0
    active: bool = True
    probe_num: int = 0  # probes to send before the address is used


class AcdSink(Protocol):
    """What the detector asks of the ARP protocol."""

    def send_probe(self, ifp: Interface, addr: int) -> None: ...

    def send_announcement(self, ifp: Interface, addr: int) -> None: ...

    def report_conflict(self, record: AcdRecord, other_mac: bytes, defended: bool) -> None: ...


class ConflictDetector:
    """All RFC 5227 records of one ARP instance, with their timers."""

    __slots__ = ("_config", "_records", "_rng", "_sink", "timers")

    def __init__(self, config: ArpConfig, sink: AcdSink, rng: random.Random) -> None:
        self._config = config
        self._sink = sink
        self._rng = rng
        self._records: dict[tuple[int, int], AcdRecord] = {}
        self.timers: TimerHeap[AcdRecord] = TimerHeap(lambda record: record.active)

    def __iter__(self) -> Iterator[AcdRecord]:
        return iter(list(self._records.values()))

    def get(self, ifp: Interface, addr: int) -> AcdRecord | None:
        return self._records.get((ifp.index, addr))

    def start(self, ifp: Interface, addr: int, now: float,
              probes: int | None = None) -> AcdRecord:
        """Begin detection for ``addr`` on ``ifp`` (again, if it was already running).

        ``probes`` (default: the configuration's ``probe_num``) are sent
        before the address is used; with none, the address is in use at once
        and its first announcement goes out now.
        """
        self.stop(ifp, addr)
        count = self._config.probe_num if probes is None else probes
        record = AcdRecord(ifp, addr, probe_num=count)
        self._records[(ifp.index, addr)] = record
        if count:
            self.timers.arm(record, now + self._rng.uniform(0.0, self._config.probe_wait))
        else:
            self.step(record, AcdEvent.PROBING_DONE, now)
            self.on_timer(record, now)  # the first gratuitous ARP, now
        return record

    def stop(self, ifp: Interface, addr: int) -> None:
        record = self._records.pop((ifp.index, addr), None)
        if record is not None:
            record.active = False
            self.timers.cancel(record)

    def stop_interface(self, ifp: Interface) -> None:
        for record in self:
            if record.ifp is ifp:
                self.stop(ifp, record.addr)

    def usable(self, ifp: Interface, addr: int) -> bool:
        """May ``addr`` be used on ``ifp``? Yes unless it is still probing or in conflict."""
        record = self._records.get((ifp.index, addr))
        return record is None or record.state in USABLE

    def tentative(self, ifp: Interface, addr: int) -> bool:
        record = self._records.get((ifp.index, addr))
        return record is not None and record.state is AcdState.PROBING

    # -- events ------------------------------------------------------------

    def on_timer(self, record: AcdRecord, now: float) -> None:
        config = self._config
        if record.state is AcdState.PROBING:
            done = record.probes_sent >= record.probe_num
            self.step(record, AcdEvent.PROBING_DONE if done else AcdEvent.PROBE_DUE, now)
        elif record.state is AcdState.ANNOUNCING:
            done = record.announces_sent >= config.announce_num
            self.step(record, AcdEvent.ANNOUNCING_DONE if done else AcdEvent.ANNOUNCE_DUE, now)

    def on_claim(self, record: AcdRecord, other_mac: bytes, now: float) -> None:
        """Another MAC sent ARP with ``record.addr`` as its sender address."""
        last = record.last_defence
        recent = last is not None and now - last < self._config.defend_interval
        self.step(record, AcdEvent.REPEAT_CLAIM if recent else AcdEvent.CLAIM, now, other_mac)

    def on_probe(self, record: AcdRecord, other_mac: bytes, now: float) -> None:
        """Another MAC probes (sender IP 0) for ``record.addr``."""
        self.step(record, AcdEvent.PROBE_COLLISION, now, other_mac)

    def step(self, record: AcdRecord, event: AcdEvent, now: float,
             other_mac: bytes = b"") -> bool:
        """Apply ``ACD_TRANSITIONS`` to one record; False when the pair is not in the table."""
        found = ACD_TRANSITIONS.get((record.state, event))
        if found is None:
            return False
        record.state, actions = found
        defended = AcdAction.DEFEND in actions
        for action in actions:
            self._perform(record, action, now, other_mac, defended)
        return True

    def _perform(self, record: AcdRecord, action: AcdAction, now: float, other_mac: bytes,
                 defended: bool) -> None:
        config = self._config
        if action is AcdAction.SEND_PROBE:
            record.probes_sent += 1
            self._sink.send_probe(record.ifp, record.addr)
        elif action is AcdAction.ARM_PROBE_GAP:
            if record.probes_sent >= record.probe_num:
                gap = config.announce_wait
            else:
                gap = self._rng.uniform(config.probe_min, config.probe_max)
            self.timers.arm(record, now + gap)
        elif action is AcdAction.SEND_ANNOUNCE:
            record.announces_sent += 1
            self._sink.send_announcement(record.ifp, record.addr)
        elif action is AcdAction.ARM_ANNOUNCE:
            self.timers.arm(record, now + config.announce_interval)
        elif action is AcdAction.ARM_NOW:
            self.timers.arm(record, now)
        elif action is AcdAction.REPORT_CONFLICT:
            if record.state is AcdState.CONFLICTED:
                self.timers.cancel(record)
            self._sink.report_conflict(record, other_mac, defended)
        elif action is AcdAction.DEFEND:
            record.last_defence = now
            self._sink.send_announcement(record.ifp, record.addr)

"""ARP settings and counters: the knobs of a modern neighbour cache, and what it counts.

Defaults follow Linux's ARP table (``net.ipv4.neigh.default.*``) where Linux
has a value, FreeBSD where it is the better router default, and RFC 5227 for
address conflict detection. Each field says where its default comes from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields

from router.errors import EINVAL, RouterError


@dataclass(slots=True, frozen=True)
class ArpConfig:
    """Timers and limits of the ARP protocol (seconds and counts)."""

    # Reachability (RFC 4861 / Linux neigh parameters).
    base_reachable_time: float = 30.0  # Linux base_reachable_time
    reachable_jitter_min: float = 0.5  # reachable time = base * uniform(min, max) (RFC 4861)
    reachable_jitter_max: float = 1.5
    reachable_redraw: float = 300.0  # Linux redraws the random reachable time every 300 s
    delay_first_probe_time: float = 5.0  # Linux delay_first_probe_time
    stale_time: float = 60.0  # Linux gc_stale_time: an unused STALE entry goes after this
    failed_hold_time: float = 20.0  # FreeBSD host_down_time: EHOSTUNREACH before a new try
    # Solicitations: broadcast while INCOMPLETE, unicast while PROBE.
    mcast_solicit: int = 3  # Linux mcast_solicit
    ucast_solicit: int = 3  # Linux ucast_solicit
    retrans_time: float = 1.0  # Linux retrans_time_ms: first retransmit interval
    retrans_backoff: float = 2.0  # each further interval is multiplied by this (RFC 7048) ...
    retrans_max: float = 8.0  # ... up to this cap; Linux uses a flat 1 s (factor 1)
    # Hold queue per unresolved neighbour: FreeBSD's maxhold (16) rather than
    # Linux's 101 packets, so 1024 unresolved neighbours hold at most ~24 MB.
    hold_limit: int = 16
    # Table size (dynamic entries of all interfaces; static and interface
    # address entries do not count and are never collected), Linux gc_thresh*.
    gc_thresh1: int = 128  # below this, STALE entries are never expired
    gc_thresh2: int = 512  # above this, collect if the last collection is gc_interval old
    gc_thresh3: int = 1024  # hard limit: collect now; nothing collectable → ENOBUFS
    gc_interval: float = 5.0  # Linux: at most one soft collection per 5 s
    # Unresolved entries (INCOMPLETE, and FAILED during their hold-down) of one
    # interface, bounded on their own: a new resolution beyond this takes the
    # place of the oldest one, so a scan recycles its own entries and never
    # pushes out a resolved neighbour (Linux gets there by collecting
    # INCOMPLETE entries older than 5 s first and never taking ones in use).
    unresolved_limit: int = 256
    # Address conflict detection (RFC 5227 section 1.1 constants). Probing is
    # an opt-in: like the seed, FreeBSD and Linux, a new address is used at
    # once and announced; detection and defence (section 2.4) stay on.
    probe_wait: float = 1.0  # PROBE_WAIT: random delay before the first probe
    probe_num: int = 0  # probes before an address is used; RFC 5227's PROBE_NUM is 3
    probe_min: float = 1.0  # PROBE_MIN
    probe_max: float = 2.0  # PROBE_MAX
    announce_wait: float = 2.0  # ANNOUNCE_WAIT: after the last probe
    announce_num: int = 2  # ANNOUNCE_NUM; 0 sends no gratuitous ARP
    announce_interval: float = 2.0  # ANNOUNCE_INTERVAL
    defend_interval: float = 10.0  # DEFEND_INTERVAL: at most one defence per this
    seed: int | None = None  # seed of the random source when none is injected

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "seed" and value < 0:
                raise RouterError(EINVAL, f.name, value, "ARP configuration")
        for name in ("base_reachable_time", "reachable_redraw", "retrans_time", "stale_time",
                     "failed_hold_time", "delay_first_probe_time", "gc_interval",
                     "announce_interval"):
            if getattr(self, name) <= 0:
                raise RouterError(EINVAL, name, getattr(self, name), "ARP configuration",
                                  "must be positive")
        self._check_order("reachable_jitter_min", "reachable_jitter_max")
        self._check_order("probe_min", "probe_max")
        self._check_order("retrans_time", "retrans_max")
        self._check_order("gc_thresh1", "gc_thresh2")
        self._check_order("gc_thresh2", "gc_thresh3")
        if self.retrans_backoff < 1 or self.hold_limit < 1 or self.gc_thresh3 < 1:
            raise RouterError(EINVAL, "retrans_backoff/hold_limit/gc_thresh3",
                              (self.retrans_backoff, self.hold_limit, self.gc_thresh3),
                              "ARP configuration", "backoff >= 1 and limits >= 1")
        if self.unresolved_limit < 1:
            raise RouterError(EINVAL, "unresolved_limit", self.unresolved_limit,
                              "ARP configuration", "must be at least 1")

    def _check_order(self, low: str, high: str) -> None:
        if getattr(self, low) > getattr(self, high):
            raise RouterError(EINVAL, high, getattr(self, high), "ARP configuration",
                              f"must not be below {low}")

    def retransmit_interval(self, sent: int) -> float:
        """Wait after the ``sent``-th solicitation (1-based): exponential, capped."""
        exponent = max(sent - 1, 0)
        return float(min(self.retrans_time * self.retrans_backoff ** exponent, self.retrans_max))


class ArpDrop(enum.Enum):
    """Why a received ARP packet was dropped (the first six are header checks)."""

    TRUNCATED = "truncated"
    BAD_HTYPE = "bad_htype"
    BAD_PTYPE = "bad_ptype"
    BAD_HLEN = "bad_hlen"
    BAD_PLEN = "bad_plen"
    BAD_OPCODE = "bad_opcode"
    NO_TABLE = "no_table"  # the interface has no ARP table (IPv4 not attached)
    NOARP = "noarp"  # the interface is flagged NOARP
    BAD_SENDER_HW = "bad_sender_hw"  # broadcast/multicast sender MAC
    OWN_FRAME = "own_frame"  # sent with our own MAC: a loop, or a spoof
    BAD_SENDER_IP = "bad_sender_ip"  # multicast, loopback or limited broadcast sender


@dataclass(slots=True)
class ArpStats:
    """Counters of the ARP protocol; they only ever grow."""

    requests_in: int = 0
    replies_in: int = 0
    requests_out: int = 0
    replies_out: int = 0
    proxy_replies_out: int = 0
    announcements_out: int = 0
    probes_out: int = 0
    drops: dict[ArpDrop, int] = field(default_factory=lambda: dict.fromkeys(ArpDrop, 0))
    hold_drops: int = 0  # oldest held packet dropped because the hold queue was full
    held_dropped: int = 0  # held packets freed with their entry (delete, flush, GC, detach)
    unreachable: int = 0  # held packets handed back for ICMP host-unreachable
    gc_evictions: int = 0
    unresolved_evictions: int = 0  # unresolved entries that gave way to a newer resolution
    static_kept: int = 0  # received ARP that would have changed a static entry
    learn_refused: int = 0  # sender for us, but no route covers it (rtcheck)
    duplicate_address: int = 0  # another host sent ARP from one of our addresses
    conflicts: int = 0
    table_full: int = 0  # resolution refused: nothing collectable at the hard limit

    def as_dict(self) -> dict[str, int]:
        """Flat counters for metrics: drops become ``drop_<reason>``."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "drops"}
        flat.update({f"drop_{reason.value}": n for reason, n in self.drops.items()})
        return flat

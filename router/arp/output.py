"""ARP's outgoing side: the sink the engine implements, and the frame and event builder.

:class:`ArpOutput` turns what the ARP protocol, its reachability machine and
conflict detection decide into Ethernet frames and events, counts what it
sends, and hands everything to the engine's :class:`ArpSink`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from router.arp.acd import AcdRecord
from router.arp.config import ArpStats
from router.arp.lltable import LleFlags, LlEntry, LlTable
from router.events import Event, EventKind
from router.link.ifnet import Interface
from router.wire import arp as wire


class ArpSink(Protocol):
    """Where ARP's output goes; implemented by the engine.

    Called synchronously from ``input``, ``resolve``, ``tick`` and the API
    calls. The callee owns the frames and packets it is given and must not
    call back into :class:`Arp` from inside these calls.
    """

    def send_frame(self, ifp: Interface, frame: bytes) -> None:
        """Transmit a complete Ethernet frame carrying ARP on ``ifp``."""
        ...

    def send_arp(self, ifp: Interface, op: int, sender_hw: bytes | None,
                 sender_ip: int | None, target_hw: bytes | None, target_ip: int) -> int:
        """A solicitation, through the data link layer's ``dlil_send_arp``.

        A request for a link-local target fans out to every ARPLL interface
        there (``router.link.arp_send``); ``target_hw`` None is a broadcast.
        Each interface's IPv4 attachment builds its frame with
        :func:`arp_frame`. Returns 0 or an errno (nothing is retried on one).
        """
        ...

    def release(self, ifp: Interface, lladdr: bytes, packets: list[bytes]) -> None:
        """Held IPv4 packets whose next hop is now ``lladdr``: frame and send them."""
        ...

    def unreachable(self, ifp: Interface, packets: list[bytes]) -> None:
        """Resolution gave up: answer each held packet with ICMP host-unreachable."""
        ...

    def emit(self, event: Event) -> None: ...


SendArp = Callable[[Interface, int, "bytes | None", "int | None", "bytes | None", int], int]


@dataclass(slots=True)
class CallableSink:
    """An :class:`ArpSink` made of five callables."""

    send_frame: Callable[[Interface, bytes], None]
    release: Callable[[Interface, bytes, list[bytes]], None]
    unreachable: Callable[[Interface, list[bytes]], None]
    emit: Callable[[Event], None]
    send_arp: SendArp


def ntoa(addr: int) -> str:
    return str(ipaddress.IPv4Address(addr))


def arp_frame(ifp: Interface, op: int, sender_hw: bytes | None, sender_ip: int | None,
              target_hw: bytes | None, target_ip: int) -> bytes:
    """The Ethernet frame of one ARP packet sent from ``ifp`` (``ether_inet_arp``).

    To ``target_hw``, or broadcast when it is None; the sender hardware
    address defaults to the interface's. A request's target hardware field is
    zero (the neighbour's MAC, if known, is only the frame's destination); a
    reply's is the target's.
    """
    eth_dst = target_hw if target_hw is not None else wire.ETHER_BROADCAST
    tha = target_hw if op == wire.OP_REPLY and target_hw is not None else wire.ZERO_MAC
    return wire.emit_frame(eth_dst, ifp.lladdr, op,
                           sender_hw if sender_hw is not None else ifp.lladdr,
                           sender_ip or 0, tha, target_ip)


class ArpOutput:
    """ARP's outgoing side: builds frames and events and hands them to the sink.

    It is the ``NudOutput`` of the reachability machine and the ``AcdSink``
    of conflict detection, and counts what it sends.
    """

    __slots__ = ("_sink", "_source_for", "_stats", "_tables")

    def __init__(self, sink: ArpSink, stats: ArpStats, tables: dict[int, LlTable],
                 source_for: Callable[[Interface, int, bytes | None], int]) -> None:
        self._sink = sink
        self._stats = stats
        self._tables = tables
        self._source_for = source_for

    def reply(self, ifp: Interface, sender_mac: bytes, request: wire.ArpHeader) -> None:
        """Answer ``request`` from ``ifp``, claiming its target for ``sender_mac``."""
        frame = wire.emit_frame(request.sha, ifp.lladdr, wire.OP_REPLY, sender_mac,
                                request.tpa, request.sha, request.spa)
        self._sink.send_frame(ifp, frame)

    def solicit(self, entry: LlEntry, eth_dst: bytes) -> None:
        """An ARP request for ``entry``, through the data link layer (which may fan
        a link-local one out); counted once, however many interfaces carry it."""
        ifp = entry.ifp
        source = self._source_for(ifp, entry.addr, entry.hold[-1] if entry.hold else None)
        entry.probes += 1
        self._stats.requests_out += 1
        target_hw = None if eth_dst == wire.ETHER_BROADCAST else eth_dst
        self._sink.send_arp(ifp, wire.OP_REQUEST, ifp.lladdr, source, target_hw, entry.addr)

    def release(self, ifp: Interface, lladdr: bytes, packets: list[bytes]) -> None:
        self._sink.release(ifp, lladdr, packets)

    def unreachable(self, ifp: Interface, packets: list[bytes]) -> None:
        self._sink.unreachable(ifp, packets)

    def send_probe(self, ifp: Interface, addr: int) -> None:
        """RFC 5227 probe: sender IP 0, target the address we want."""
        self._stats.probes_out += 1
        self._sink.send_frame(ifp, wire.emit_frame(
            wire.ETHER_BROADCAST, ifp.lladdr, wire.OP_REQUEST, ifp.lladdr, 0, wire.ZERO_MAC,
            addr))

    def send_announcement(self, ifp: Interface, addr: int) -> None:
        """Gratuitous ARP (RFC 5227 announcement): sender and target both our address."""
        self._stats.announcements_out += 1
        self._sink.send_frame(ifp, wire.emit_frame(
            wire.ETHER_BROADCAST, ifp.lladdr, wire.OP_REQUEST, ifp.lladdr, addr, wire.ZERO_MAC,
            addr))

    def report_conflict(self, record: AcdRecord, other_mac: bytes, defended: bool) -> None:
        self._stats.conflicts += 1
        ifp = record.ifp
        self._sink.emit(Event(EventKind.ARP_CONFLICT, ifp.name, ifp.index, {
            "addr": ntoa(record.addr),
            "lladdr": wire.mac_text(other_mac),
            "state": record.state.value,
            "defended": defended,
        }))

    def changed(self, entry: LlEntry, kind: EventKind) -> None:
        """An entry was added, changed or removed: new generation, and the news."""
        table = self._tables.get(entry.ifp.index)
        if table is not None:
            table.generation += 1
        ifp = entry.ifp
        self._sink.emit(Event(kind, ifp.name, ifp.index, {
            "addr": ntoa(entry.addr),
            "lladdr": wire.mac_text(entry.lladdr) if entry.lladdr else "",
            "state": entry.state.value,
            "static": entry.static,
            "published": bool(entry.flags & LleFlags.PUB),
        }))

"""The engine's core: the layers composed, and the packet I/O between them.

:class:`EngineCore` builds one router from its layers, each given what it
needs: the data link layer (:class:`~router.link.datalink.DataLink` with the
Ethernet family module and a queueing driver), the route table, IPv4
address control, ARP, IPv4 and ICMP, the forwarding fast path, ``ngN``
interfaces and taps. It is the sans-I/O loop: frames and ticks in
(:meth:`~EngineCore.receive_batch`, :meth:`~EngineCore.tick`), frames,
events and the next deadline out, and the wiring that carries packets from
one layer to the next. It never reads a clock: time is the ``now`` of the
last input.

The API calls (the ioctl equivalents) are :class:`router.engine.api.Engine`,
which is an ``EngineCore``. After every batch, tick and API call the data
link layer's deferred final detach runs (:meth:`EngineCore._settle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.arp.config import ArpConfig
from router.arp.lltable import NudState
from router.arp.output import arp_frame
from router.arp.protocol import Arp, CallableSink
from router.contracts import DemuxDesc, Packet, ProtoAttachment
from router.engine.edge import EventLog
from router.engine.parts import ArpDomain, HookOutlet, QueueDriver
from router.errors import EADDRNOTAVAIL, EINVAL, ENOTSUP
from router.events import Event
from router.inet.domain import InetDomain, SamePrefixPolicy
from router.inet.route import RouteTable
from router.ipv4.fastpath import FastPath
from router.ipv4.input import DropReason, Ipv4, Ipv4Config
from router.link.datalink import DataLink
from router.link.ether import (
    DEMUX_ETHERTYPE,
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    EthernetFamily,
    ipv4_multicast_mac,
    is_ipv4_multicast,
)
from router.link.ifnet import AF_INET, IfFamily, IfFlags, Interface
from router.link.io import output_one
from router.ng.hooks import NgHook
from router.ng.iface import NetgraphIfaces
from router.ng.tap import DEFAULT_MAX_QUEUED, Tap, TapRecord, Taps
from router.offload import OffloadError, OffloadFrame, Outgoing, finish

ETHER_FLAGS = IfFlags.BROADCAST | IfFlags.MULTICAST | IfFlags.SIMPLEX
_ARP_HIGH, _ARP_LOW = ETHERTYPE_ARP.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything configurable about one engine; the defaults are a router's."""

    ipv4: Ipv4Config = field(default_factory=Ipv4Config)
    arp: ArpConfig = field(default_factory=ArpConfig)
    fast_path: bool = True
    policy: SamePrefixPolicy = SamePrefixPolicy.ALLOW
    event_history: int = 4096  # events kept for subscribers resuming from a seq
    ng_max_nesting: int = 2  # net.graph.iface.max_nesting
    tap_queue: int = DEFAULT_MAX_QUEUED  # records a tap keeps before dropping the oldest


class EngineCore:
    """One router's layers and its packet I/O. Single-threaded: the agent serialises calls."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config = config or EngineConfig()
        self.now = 0.0
        self.events = EventLog(config.event_history)
        self.no_interface_drops = 0  # frames given for an index with no attached interface
        self._transmit: list[tuple[int, Outgoing]] = []
        self._hook_out: list[tuple[int, bytes]] = []
        self._hooks: dict[int, tuple[NgHook, HookOutlet]] = {}
        self._next_handle = 1
        self._taps_open: list[Tap] = []

        self.dl = DataLink()
        self.dl.subscribe(self.events.record)
        self.ether = EthernetFamily()
        self.taps = Taps()
        self.driver = QueueDriver(self._transmit, self.taps, self._clock)
        self.route_table = RouteTable(self._emit, self._interface_name)
        self.arp = Arp(CallableSink(self._arp_send, self._arp_release, self._arp_unreachable,
                                    self._emit, self.dl.send_arp),
                       self.route_table.lookup, config.arp, interface_of=self.dl.lookup,
                       on_link=self._arp_on_link)
        self.inet = InetDomain(self.route_table, self._emit, self.arp, config.policy)
        self.dl.add_domain(self.inet)
        self.dl.add_domain(ArpDomain(self.arp))
        self.dl.on_proto_freed = self._proto_freed
        self.ipv4 = Ipv4(routes=self.route_table, inet=self.inet, interface_of=self.dl.lookup,
                         output=self._ip_output, resolve=self.arp.resolve,
                         resolve_multi=self._resolve_multi, config=config.ipv4,
                         neighbour_failed=self._neighbour_failed)
        self.ng = NetgraphIfaces(self.dl, self._ng_deliver, taps=self.taps, clock=self._clock,
                                 max_nesting=config.ng_max_nesting)
        self.fastpath: FastPath | None = None
        if config.fast_path:
            self.fastpath = FastPath(dl=self.dl, routes=self.route_table, inet=self.inet,
                                     arp=self.arp, ipv4=self.ipv4, taps=self.taps,
                                     transmit=self._transmit)

    def _neighbour_failed(self, ifp: Interface, addr: int) -> bool:
        """ARP gave up on ``addr`` on ``ifp`` and holds it down (``NudState.FAILED``)."""
        table = self.arp.table(ifp)
        entry = table.lookup(addr) if table is not None else None
        return entry is not None and entry.state is NudState.FAILED

    # == inputs ============================================================

    def _clock(self) -> float:
        return self.now

    def _interface_name(self, ifindex: int) -> str | None:
        ifp = self.dl.lookup(ifindex)
        return ifp.name if ifp is not None else None

    def _advance(self, now: float) -> None:
        if now > self.now:
            self.now = now
        self.ipv4.now = self.now

    def receive(self, ifindex: int, frame: bytes, now: float) -> None:
        """One frame arrived on interface ``ifindex``."""
        self.receive_batch(ifindex, [frame], now)

    def receive_batch(self, ifindex: int, frames: list[bytes], now: float) -> None:
        """Frames that arrived together on interface ``ifindex`` (the agent's ring batch)."""
        self._advance(now)
        ifp = self.dl.lookup(ifindex)
        if ifp is None:
            self.no_interface_drops += len(frames)
            return
        if self.taps.is_tapped(ifp):
            for frame in frames:
                self.taps.tap_input(ifp, frame, self.now)
        try:
            if self.fastpath is not None:
                self.fastpath.receive(ifp, frames, self.dl.input)
            else:
                self.dl.input(ifp, list(frames))
        finally:
            self._settle()

    def tick(self, now: float) -> None:
        """Run the timers that are due at ``now``."""
        self._advance(now)
        try:
            self.arp.tick(self.now)
            self.ipv4.tick(self.now)
        finally:
            self._settle()

    def next_deadline(self) -> float | None:
        """When :meth:`tick` should run next, or None if no timer is pending."""
        # asked after every batch of frames: two calls and a comparison, no list
        first = self.arp.next_deadline()
        other = self.ipv4.next_deadline()
        if other is not None and (first is None or other < first):
            return other
        return first

    # == outputs ===========================================================

    def transmit(self) -> list[tuple[int, Outgoing]]:
        """Frames to put on the wire, as ``(ifindex, frame)``, oldest first (drained).

        A frame is ``bytes`` (an ``OffloadFrame`` when it carries offload work), or, out
        of an interface added with ``offload=True``, possibly a ``SplicedFrame``: a
        forwarded super-frame in two pieces for a scatter-gather send (``joined()``
        gives it whole)."""
        out = self._transmit[:]
        self._transmit.clear()
        return out

    def drain_events(self) -> list[Event]:
        """Events since the last drain, with increasing sequence numbers."""
        return self.events.drain()

    def events_after(self, seq: int) -> tuple[list[Event], bool]:
        """Recent events after ``seq`` (a subscriber resuming), and whether some were lost."""
        return self.events.after(seq)

    def client_output_pending(self) -> bool:
        """Would ``drain_events``, ``drain_hook_output`` or ``drain_taps`` return anything?

        One attribute test each: the agent's gate asks after every batch of frames and
        drains only when the answer is yes (most batches produce none of these).
        """
        return self.events.pending or bool(self._hook_out) or bool(self._taps_open)

    def drain_hook_output(self) -> list[tuple[int, bytes]]:
        """Packets ``ngN`` interfaces sent to API-connected hooks, as ``(handle, packet)``."""
        out = self._hook_out[:]
        self._hook_out.clear()
        return out

    def drain_taps(self) -> list[tuple[Tap, TapRecord]]:
        """Captured frames of every tap, as ``(tap handle, record)``; closed taps are forgotten
        once drained."""
        out = [(tap, record) for tap in self._taps_open for record in tap.drain()]
        self._taps_open = [tap for tap in self._taps_open if not tap.closed]
        return out

    # == internal wiring ===================================================

    def _settle(self) -> None:
        """After each input, tick or API call: deferred final detaches, then releases."""
        for ifp in self.dl.run_deferred():
            if ifp.family is IfFamily.ETHERNET:
                self.dl.release(ifp)

    def _emit(self, event: Event) -> None:
        """Route, address and ARP news: through the interface's event path when it has one."""
        ifp = self.dl.lookup(event.ifindex) if event.ifindex else None
        if ifp is not None:
            self.dl.deliver_event(ifp, event)
        else:
            self.events.record(event)

    def _arp_on_link(self, ifp: Interface, addr: int) -> bool:
        return self.inet.on_link(ifp, addr)  # built after ARP, which address control feeds

    def _proto_freed(self, ifp: Interface, family: int) -> None:
        self.route_table.remove_interface(ifp.index, family)

    def _inet_attachment(self, ifp: Interface) -> ProtoAttachment:
        demux: tuple[DemuxDesc, ...] = (DemuxDesc(DEMUX_ETHERTYPE, ETHERTYPE_IP),)
        if ifp.family is IfFamily.ETHERNET:
            demux += (DemuxDesc(DEMUX_ETHERTYPE, ETHERTYPE_ARP),)
        return ProtoAttachment(family=AF_INET, version=2, input_list=self._inet_input,
                               pre_output=self.ipv4.pre_output, demux=demux,
                               send_arp=self._inet_send_arp,
                               resolve_multi=self._inet_resolve_multi)

    def _inet_input(self, ifp: Interface, family: int, pkts: list[Packet]) -> int:
        """``ether_inet_input``: ARP to ARP, the rest to IPv4 (both are PF_INET here)."""
        ipv4 = self.ipv4
        now = self.now
        for pkt in pkts:
            data, l2len = pkt.data, pkt.l2len
            # the ethertype's low byte first: 0x00 for IPv4 settles it without a slice
            if l2len >= 2 and data[l2len - 1] == _ARP_LOW and data[l2len - 2] == _ARP_HIGH:
                self.arp.input(ifp, memoryview(data)[l2len:], now)
            else:
                ipv4.input(ifp, data, l2len, pkt.flags, now)
        return 0

    def _ip_output(self, ifp: Interface, datagram: bytes, next_hop: int) -> int:
        # one datagram: router.link.io.output_one, the one-packet form of DataLink.output
        if type(datagram) is OffloadFrame and not ifp.offload:
            return self._ip_output_finished(ifp, datagram, next_hop)
        return output_one(self.dl, ifp, AF_INET, Packet(datagram, 0, 0, 0, AF_INET), next_hop)

    def _ip_output_finished(self, ifp: Interface, datagram: OffloadFrame, next_hop: int) -> int:
        """Out of an interface that cannot hand offload work on (an ``ngN`` hook, say):
        checksum and segment here, then send each piece."""
        try:
            pieces = finish(datagram, 0)
        except OffloadError:
            self.ipv4.count_drop(DropReason.BAD_OFFLOAD)
            return EINVAL
        self.ipv4.stats.offload_finished += 1
        error = 0
        for piece in pieces:
            error = output_one(self.dl, ifp, AF_INET, Packet(piece, 0, 0, 0, AF_INET),
                               next_hop) or error
        return error

    def _inet_send_arp(self, ifp: Interface, op: int, sender_hw: bytes | None,
                       sender_ip: int | None, target_hw: bytes | None, target_ip: int) -> int:
        """The IPv4 attachment's ``send_arp`` (``ether_inet_arp``): one ARP frame on ``ifp``.

        ``DataLink.send_arp`` calls it once per interface the packet goes out
        on (the link-local fan-out picks the sender of each).
        """
        if ifp.family is not IfFamily.ETHERNET or ifp.flags & IfFlags.NOARP:
            return ENOTSUP
        self._arp_send(ifp, arp_frame(ifp, op, sender_hw, sender_ip, target_hw, target_ip))
        return 0

    @staticmethod
    def _inet_resolve_multi(ifp: Interface, addr: object) -> tuple[int, bytes]:
        """The IPv4 attachment's ``resolve_multi`` (``ether_inet_resolve_multi``)."""
        if not isinstance(addr, int) or not is_ipv4_multicast(addr):
            return EADDRNOTAVAIL, b""
        return 0, ipv4_multicast_mac(addr)

    def _resolve_multi(self, ifp: Interface, group: int) -> tuple[int, bytes]:
        """A multicast next hop's MAC: ``dlil_resolve_multi`` (attachment, then family check)."""
        return self.dl.resolve_multi(ifp, AF_INET, group)

    def _arp_send(self, ifp: Interface, frame: bytes) -> None:
        self.dl.output(ifp, AF_INET, [Packet(frame, family=AF_INET)], None, raw=True)

    def _arp_release(self, ifp: Interface, lladdr: bytes, packets: list[bytes]) -> None:
        if packets:
            self.dl.output(ifp, AF_INET, [Packet(p, family=AF_INET) for p in packets],
                           bytes(lladdr))

    def _arp_unreachable(self, ifp: Interface, packets: list[bytes]) -> None:
        self.ipv4.host_unreachable(ifp, packets, self.now)

    def _ng_deliver(self, ifp: Interface, family: int, packet: bytes) -> None:
        if family == AF_INET and AF_INET in ifp.protocols:
            self.ipv4.input(ifp, packet, 0, 0, self.now)

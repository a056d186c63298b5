"""The Engine facade: one router, sans-I/O, inputs in and outputs out.

```python
engine = Engine(EngineConfig())
engine.add_ethernet("eth0", mac=b"\\x02\\0\\0\\0\\0\\1")
engine.add_alias("eth0", "10.0.0.1/24")
engine.receive_batch(ifindex, frames, now)     # frames that arrived
engine.tick(now)                               # timers that are due
for ifindex, frame in engine.transmit(): ...   # frames to send (drained)
engine.next_deadline()                         # when to tick next, or None
engine.drain_events()                          # seq-numbered news
```

The engine composes the layers, each built with what it needs: the data
link layer (:class:`~router.link.datalink.DataLink` with the Ethernet family module
and a queueing driver), the route table, IPv4 address control, ARP, IPv4 and
ICMP, the forwarding fast path, ``ngN`` interfaces and taps. It never reads a
clock: time is the ``now`` of the last input; API calls use that time.

API calls take addresses as text or ``ipaddress`` objects and raise
:class:`~router.errors.RouterError` naming the field; packets never raise.
After every batch, tick and API call the data link layer's deferred final
detach runs (``DataLink.run_deferred``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.arp.config import ArpConfig
from router.arp.lltable import LlInfo
from router.arp.protocol import Arp, CallableSink
from router.contracts import DemuxDesc, IoctlCmd, Packet, ProtoAttachment
from router.engine.edge import (
    AddressLike,
    EventLog,
    PrefixLike,
    ntoa,
    parse_address,
    parse_alias,
    parse_mac,
    parse_optional,
    parse_prefix,
)
from router.engine.parts import ETHER_MTU_MAX, ETHER_MTU_MIN, ArpDomain, HookOutlet, QueueDriver
from router.errors import EADDRNOTAVAIL, EEXIST, EINVAL, ENETUNREACH, ENXIO, RouterError
from router.events import Event
from router.inet.domain import InAddr, InetDomain, SamePrefixPolicy
from router.inet.route import Route, RouteFlags, RouteTable
from router.ipv4.fastpath import FastPath
from router.ipv4.input import Ipv4, Ipv4Config
from router.link.datalink import DataLink
from router.link.ether import DEMUX_ETHERTYPE, ETHERTYPE_ARP, ETHERTYPE_IP, EthernetFamily
from router.link.ifnet import (
    AF_INET,
    IfCounters,
    IfExtFlags,
    IfFamily,
    IfFlags,
    IfType,
    Interface,
    LinkState,
)
from router.link.io import LinkDrop, output_one
from router.ng.control import IfaceCommand, MessageCookie
from router.ng.hooks import NgHook
from router.ng.iface import NetgraphIfaces
from router.ng.tap import DEFAULT_MAX_QUEUED, Tap, TapRecord, Taps
from router.wire import Malformed
from router.wire import ipv4 as ip_wire

ETHER_FLAGS = IfFlags.BROADCAST | IfFlags.MULTICAST | IfFlags.SIMPLEX
_ARP_HIGH, _ARP_LOW = ETHERTYPE_ARP.to_bytes(2, "big")
_QUERY_KINDS = ("local-subnet", "local-address", "can-forward", "broadcast")


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


class Engine:
    """One router engine. Single-threaded: the agent serialises calls into it."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config = config or EngineConfig()
        self.now = 0.0
        self.events = EventLog(config.event_history)
        self.no_interface_drops = 0  # frames given for an index with no attached interface
        self._transmit: list[tuple[int, bytes]] = []
        self._hook_out: list[tuple[int, bytes]] = []
        self._hooks: dict[int, tuple[NgHook, HookOutlet]] = {}
        self._next_handle = 1
        self._taps_open: list[Tap] = []
        self._to_release: list[Interface] = []

        self.dl = DataLink()
        self.dl.subscribe(self.events.record)
        self.ether = EthernetFamily()
        self.taps = Taps()
        self.driver = QueueDriver(self._transmit, self.taps, self._clock)
        self.route_table = RouteTable(self._emit)
        self.arp = Arp(CallableSink(self._arp_send, self._arp_release, self._arp_unreachable,
                                    self._emit),
                       self.route_table.lookup, config.arp, interface_of=self.dl.lookup)
        self.inet = InetDomain(self.route_table, self._emit, self.arp, config.policy)
        self.dl.add_domain(self.inet)
        self.dl.add_domain(ArpDomain(self.arp))
        self.dl.on_proto_freed = self._proto_freed
        self.ipv4 = Ipv4(routes=self.route_table, inet=self.inet, interface_of=self.dl.lookup,
                         output=self._ip_output, resolve=self.arp.resolve, config=config.ipv4)
        self.ng = NetgraphIfaces(self.dl, self._ng_deliver, taps=self.taps, clock=self._clock,
                                 max_nesting=config.ng_max_nesting)
        self.fastpath: FastPath | None = None
        if config.fast_path:
            self.fastpath = FastPath(dl=self.dl, routes=self.route_table, inet=self.inet,
                                     arp=self.arp, ipv4=self.ipv4, taps=self.taps,
                                     transmit=self._transmit)

    # == inputs ============================================================

    def _clock(self) -> float:
        return self.now

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
        finally:
            self._settle()

    def next_deadline(self) -> float | None:
        """When :meth:`tick` should run next, or None if no timer is pending."""
        return self.arp.next_deadline()

    # == outputs ===========================================================

    def transmit(self) -> list[tuple[int, bytes]]:
        """Frames to put on the wire, as ``(ifindex, frame)``, oldest first (drained)."""
        out = self._transmit[:]
        self._transmit.clear()
        return out

    def drain_events(self) -> list[Event]:
        """Events since the last drain, with increasing sequence numbers."""
        return self.events.drain()

    def events_after(self, seq: int) -> tuple[list[Event], bool]:
        """Recent events after ``seq`` (a subscriber resuming), and whether some were lost."""
        return self.events.after(seq)

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

    def _proto_freed(self, ifp: Interface, family: int) -> None:
        self.route_table.remove_interface(ifp.index, family)

    def _inet_attachment(self, ifp: Interface) -> ProtoAttachment:
        demux: tuple[DemuxDesc, ...] = (DemuxDesc(DEMUX_ETHERTYPE, ETHERTYPE_IP),)
        if ifp.family is IfFamily.ETHERNET:
            demux += (DemuxDesc(DEMUX_ETHERTYPE, ETHERTYPE_ARP),)
        return ProtoAttachment(family=AF_INET, version=2, input_list=self._inet_input,
                               pre_output=self.ipv4.pre_output, demux=demux)

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
        # one datagram: dlil_io.output_one, the one-packet form of DataLink.output
        return output_one(self.dl, ifp, AF_INET, Packet(datagram, 0, 0, 0, AF_INET), next_hop)

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

    def send_datagram(self, datagram: bytes) -> int:
        """Originate an IPv4 datagram (what a raw socket would send); returns 0 or an errno.

        It is routed, resolved and framed like the engine's own ICMP. ``EINVAL``
        (raised) if the header does not pass the input checks.
        """
        try:
            ip_wire.parse(datagram)
        except Malformed as exc:
            raise RouterError(EINVAL, "datagram", exc.reason, "send datagram") from None
        try:
            return self.ipv4.send(bytes(datagram), self.now)
        finally:
            self._settle()

    # == interfaces ========================================================

    def _require(self, name: str) -> Interface:
        ifp = self.dl.lookup(name) if isinstance(name, str) and name else None
        if ifp is None:
            raise RouterError(ENXIO, "interface", name, detail="no such interface")
        return ifp

    def interfaces(self) -> list[Interface]:
        return self.dl.interfaces()

    def interface(self, name: str) -> Interface | None:
        return self.dl.lookup(name) if isinstance(name, str) else None

    def add_ethernet(self, name: str, mac: bytes | str, mtu: int = 1500,
                     up: bool = True) -> Interface:
        """A new Ethernet interface with IPv4 and ARP attached.

        ``EINVAL`` for an empty name, a MAC that is not 6 bytes of unicast or
        an MTU outside 68..9216; ``EBUSY``/``EEXIST`` if the name is taken. A
        name that was removed before gets its old index back (recycling).
        """
        subject = f"add ethernet {name}"
        if not isinstance(name, str) or not name:
            raise RouterError(EINVAL, "name", name, subject)
        lladdr = parse_mac("mac", mac)
        if lladdr[0] & 1 or lladdr == bytes(6):
            raise RouterError(EINVAL, "mac", lladdr.hex(":"), subject, "not a unicast MAC")
        if not isinstance(mtu, int) or not ETHER_MTU_MIN <= mtu <= ETHER_MTU_MAX:
            raise RouterError(EINVAL, "mtu", mtu, subject)
        if self.dl.lookup(name) is not None:
            raise RouterError(EEXIST, "name", name, subject)
        ifp = self.dl.acquire(IfFamily.ETHERNET, name.encode(), name=name, type=IfType.ETHER,
                              flags=ETHER_FLAGS, eflags=IfExtFlags.ARPLL, mtu=mtu, addrlen=6)
        ifp.hdrlen = 14
        try:
            self.dl.attach(ifp, lladdr, self.ether, self.driver)
        except RouterError:
            self.dl.release(ifp)
            raise
        self.arp.attach_interface(ifp)
        self.dl.attach_protocol(ifp, self._inet_attachment(ifp))
        if up:
            self._set_up(ifp, True)
        self._settle()
        return ifp

    def remove_interface(self, name: str) -> None:
        """Detach an interface (an ``ngN`` is shut down); the final detach follows."""
        ifp = self._require(name)
        if ifp.family is IfFamily.NETGRAPH:
            self.destroy_ng(name)
            return
        self.taps.close_interface(ifp)
        self.dl.detach(ifp)
        self._settle()

    def set_interface(self, name: str, up: bool | None = None, mtu: int | None = None,
                      point_to_point: bool | None = None) -> Interface:
        """Change UP, the MTU, or (``ngN`` only, while down) point-to-point vs broadcast.

        A request to go down is applied first and one to go up last, so
        ``up=False, point_to_point=True`` works on a running ``ngN``.
        """
        ifp = self._require(name)
        try:
            if up is False:
                self._set_up(ifp, False)
            if point_to_point is not None:
                self._set_mode(ifp, point_to_point)
            if mtu is not None:
                error = self.dl.ioctl(ifp, 0, IoctlCmd.SIOCSIFMTU, mtu)
                if error:
                    raise RouterError(error, "mtu", mtu, f"mtu of {name}")
            if up is True:
                self._set_up(ifp, True)
        finally:
            self._settle()
        return ifp

    def _set_up(self, ifp: Interface, up: bool) -> None:
        if ifp.family is IfFamily.NETGRAPH:
            error = self.ng.set_up(ifp, up)
            if error:
                raise RouterError(error, "up", up, f"flags of {ifp.name}")
            return
        self.dl.set_up(ifp, up)
        running = ifp.flags | IfFlags.RUNNING if up else ifp.flags & ~IfFlags.RUNNING
        if running != ifp.flags:
            ifp.flags = running
            ifp.generation += 1
        self.dl.set_link_state(ifp, LinkState.UP if up else LinkState.DOWN)

    def _set_mode(self, ifp: Interface, point_to_point: bool) -> None:
        if ifp.family is not IfFamily.NETGRAPH:
            raise RouterError(EINVAL, "point_to_point", point_to_point, f"mode of {ifp.name}",
                              "only ngN interfaces switch modes")
        cmd = IfaceCommand.POINT2POINT if point_to_point else IfaceCommand.BROADCAST
        self.ng.message(ifp, MessageCookie.IFACE, cmd)

    def counters(self, name: str) -> dict[str, int]:
        return self._require(name).counters.as_dict()

    # == IPv4 addresses ====================================================

    def add_alias(self, ifname: str, address: PrefixLike | AddressLike,
                  broadcast: AddressLike | None = None, dest: AddressLike | None = None,
                  vhid: int = 0, mask: AddressLike | None = None) -> InAddr:
        """Add (or replace) an address: ``"A/LEN"``, or an address with ``mask``."""
        ifp = self._require(ifname)
        addr, netmask = parse_alias("address", address, mask)
        try:
            return self.inet.add_alias(ifp, addr, netmask, parse_optional("broadcast", broadcast),
                                       parse_optional("dest", dest), vhid)
        finally:
            self._settle()

    def delete_alias(self, ifname: str, address: AddressLike | None = None) -> InAddr:
        """Delete ``address`` (the first address when None); ``EADDRNOTAVAIL`` if absent."""
        ifp = self._require(ifname)
        try:
            return self.inet.delete_alias(ifp, parse_optional("address", address))
        finally:
            self._settle()

    def get_address(self, ifname: str, address: AddressLike | None = None,
                    which: str | None = None) -> dict[str, Any]:
        """An address as ``{address, netmask, plen, broadcast, dest}`` (text).

        ``which`` ("address", "netmask", "broadcast", "destination") asks for
        one value the seed's way: broadcast is ``EINVAL`` unless the interface
        is BROADCAST, destination unless POINTOPOINT; an unknown address is
        ``EADDRNOTAVAIL``. Without ``which`` the fields the interface does not
        have are None.
        """
        ifp = self._require(ifname)
        value = parse_optional("address", address)
        commands = {"address": IoctlCmd.SIOCGIFADDR, "netmask": IoctlCmd.SIOCGIFNETMASK,
                    "broadcast": IoctlCmd.SIOCGIFBRDADDR,
                    "destination": IoctlCmd.SIOCGIFDSTADDR, "dest": IoctlCmd.SIOCGIFDSTADDR}
        if which is not None and which not in commands:
            raise RouterError(EINVAL, "which", which, f"get address on {ifname}")
        mask = self.inet.get(ifp, IoctlCmd.SIOCGIFNETMASK, value)  # EADDRNOTAVAIL
        if which is not None:
            self.inet.get(ifp, commands[which], value)  # the seed's EINVAL rules
        ia = self._find_address(ifp, value)
        flags = ifp.flags
        return {
            "address": ntoa(ia.addr),
            "netmask": ntoa(mask),
            "plen": mask.bit_count(),
            "broadcast": ntoa(ia.peer) if flags & IfFlags.BROADCAST else None,
            "dest": ntoa(ia.peer) if flags & IfFlags.POINTOPOINT else None,
            "vhid": ia.vhid,
            "owns_route": ia.owns_route,
        }

    def _find_address(self, ifp: Interface, value: int | None) -> InAddr:
        ia = self.inet.address(ifp, value)  # one dict probe, not a scan of the aliases
        if ia is not None:
            return ia
        raise RouterError(EADDRNOTAVAIL, "address", value, f"get address on {ifp.name}")

    def get_policy(self) -> str:
        return self.inet.policy.value

    def set_policy(self, policy: str | SamePrefixPolicy) -> None:
        """The same-prefix policy: "allow", "refuse" or "multipath"."""
        try:
            self.inet.policy = SamePrefixPolicy(
                policy.lower() if isinstance(policy, str) else policy)
        except ValueError:
            raise RouterError(EINVAL, "policy", policy,
                              detail="expected allow, refuse or multipath") from None

    def query(self, kind: str, address: AddressLike, ifname: str | None = None) -> bool:
        """local-subnet (``in_localaddr``), local-address (``in_localip``),
        can-forward (``in_canforward``), broadcast (``in_broadcast``, needs ``ifname``)."""
        value = parse_address("address", address)
        if kind == "local-subnet":
            return self.inet.local_subnet(value)
        if kind == "local-address":
            return self.inet.local_ip(value)
        if kind == "can-forward":
            return self.inet.can_forward(value)
        if kind == "broadcast":
            if not ifname:
                raise RouterError(EINVAL, "ifname", ifname, "broadcast query",
                                  "needs an interface")
            return self.inet.is_broadcast(value, self._require(ifname))
        raise RouterError(EINVAL, "kind", kind, detail=f"expected one of {_QUERY_KINDS}")

    # == routes ============================================================

    def routes(self) -> list[Route]:
        """Every route, ordered by prefix then length."""
        return self.route_table.routes()

    def add_route(self, prefix: PrefixLike, gateway: AddressLike | None = None,
                  ifname: str | None = None) -> Route:
        """A STATIC route via ``gateway`` (on a connected network) and/or out of ``ifname``.

        ``EINVAL`` with neither; ``ENETUNREACH`` for a gateway no connected
        route reaches; ``EEXIST`` if the prefix has a route already.
        """
        network, plen = parse_prefix("prefix", prefix)
        subject = f"route {ntoa(network)}/{plen}"
        via = parse_optional("gateway", gateway)
        if via is None and not ifname:
            raise RouterError(EINVAL, "gateway", gateway, subject, "needs a gateway or interface")
        ifp = self._require(ifname) if ifname else None
        if ifp is None:
            connected = self.route_table.lookup(via) if via is not None else None
            if connected is None or connected.flags & (RouteFlags.GATEWAY | RouteFlags.LOCAL):
                raise RouterError(ENETUNREACH, "gateway", gateway, subject,
                                  "gateway is not on a connected network")
            ifp = self.dl.lookup(connected.ifindex)
            if ifp is None:
                raise RouterError(ENETUNREACH, "gateway", gateway, subject)
        flags = RouteFlags.UP | RouteFlags.STATIC
        if via is not None:
            flags |= RouteFlags.GATEWAY
        if plen == 32:
            flags |= RouteFlags.HOST
        try:
            return self.route_table.add(network, plen, ifindex=ifp.index, flags=flags,
                                   gateway=via or 0, ifname=ifp.name)
        finally:
            self._settle()

    def delete_route(self, prefix: PrefixLike) -> Route:
        """Delete the (non-local) route of exactly ``prefix``; ``ESRCH`` if none."""
        network, plen = parse_prefix("prefix", prefix)
        try:
            return self.route_table.delete(network, plen, local=False)
        finally:
            self._settle()

    # == ARP ===============================================================

    def arp_entries(self, ifname: str | None = None) -> list[LlInfo]:
        return self.arp.entries(self._require(ifname) if ifname else None)

    def set_arp(self, ifname: str, ip: AddressLike, mac: bytes | str,
                published: bool = False) -> LlInfo:
        ifp = self._require(ifname)
        try:
            return self.arp.set_static(ifp, parse_address("ip", ip), parse_mac("mac", mac),
                                       published)
        finally:
            self._settle()

    def delete_arp(self, ifname: str, ip: AddressLike) -> None:
        ifp = self._require(ifname)
        try:
            self.arp.delete(ifp, parse_address("ip", ip))
        finally:
            self._settle()

    def flush_arp(self, ifname: str | None = None) -> int:
        """Drop the dynamic entries (of one interface, or all); returns how many went."""
        try:
            return self.arp.flush(self._require(ifname) if ifname else None)
        finally:
            self._settle()

    # == ngN interfaces, hooks and taps ====================================

    def create_ng(self) -> str:
        """A new ``ngN`` (first free unit) with IPv4 attached; returns its name."""
        ifp = self.ng.create()
        self.dl.attach_protocol(ifp, self._inet_attachment(ifp))
        self._settle()
        return ifp.name

    def destroy_ng(self, name: str) -> None:
        ifp = self._require(name)
        if ifp.family is not IfFamily.NETGRAPH:
            raise RouterError(EINVAL, "name", name, f"destroy {name}", "not an ngN interface")
        for handle, (hook, _outlet) in list(self._hooks.items()):
            if hook.ifp is ifp:
                del self._hooks[handle]
        try:
            self.ng.shutdown(ifp)
        finally:
            self._settle()

    def hook_connect(self, ifname: str, hookname: str) -> int:
        """Connect the API to hook ``hookname`` of ``ngN``; returns a handle.

        ``EPFNOSUPPORT`` for an unknown hook, ``EISCONN`` if it is taken,
        ``EINVAL`` for an interface that is not an ``ngN``.
        """
        ifp = self._require(ifname)
        if ifp.family is not IfFamily.NETGRAPH:
            raise RouterError(EINVAL, "ifname", ifname, f"hook {hookname}", "not an ngN interface")
        handle = self._next_handle
        outlet = HookOutlet(handle, self._hook_out)
        hook = self.ng.connect(ifp, hookname, outlet)
        self._next_handle += 1
        self._hooks[handle] = (hook, outlet)
        return handle

    def _hook(self, handle: int) -> NgHook:
        found = self._hooks.get(handle)
        if found is None or not found[0].connected:
            raise RouterError(ENXIO, "hook", handle, detail="no such hook connection")
        return found[0]

    def hook_send(self, handle: int, packet: bytes) -> None:
        """The API client sends ``packet`` into the interface through its hook."""
        hook = self._hook(handle)
        try:
            error = hook.inject(packet)
        finally:
            self._settle()
        if error:
            raise RouterError(error, "hook", f"{hook.ifp.name}:{hook.name}",
                              f"send on hook {hook.name} of {hook.ifp.name}")

    def hook_disconnect(self, handle: int) -> None:
        found = self._hooks.pop(handle, None)
        if found is not None and found[0].connected:
            self.ng.disconnect(found[0])

    def tap(self, ifname: str, snaplen: int = 65535) -> Tap:
        """Start capturing an interface; the handle is the :class:`~router.ng.tap.Tap`."""
        ifp = self._require(ifname)
        tap = self.taps.open(ifp, snaplen, self.config.tap_queue)
        self._taps_open.append(tap)
        ifp.generation += 1  # the fast path steps aside for tapped interfaces
        return tap

    def untap(self, handle: Tap) -> None:
        if self.taps.close(handle):
            ifp = self.dl.lookup(handle.ifindex)
            if ifp is not None:
                ifp.generation += 1

    # == counters ==========================================================

    def drop_counts(self) -> dict[str, int]:
        """Every drop counter of the engine by ``layer.reason``."""
        drops = {f"ipv4.{r.value}": n for r, n in self.ipv4.stats.drops.items()}
        drops.update({f"link.{r.name.lower()}": n
                      for r, n in zip(LinkDrop, self.dl.drops, strict=False)})
        drops.update({f"arp.{r.value}": n for r, n in self.arp.stats.drops.items()})
        drops.update({f"icmp.{r.value}": n for r, n in self.ipv4.icmp.stats.suppressed.items()})
        drops["engine.no_interface"] = self.no_interface_drops
        return drops

    def stats(self) -> dict[str, dict[str, int]]:
        """Protocol counters: IPv4, ICMP, ARP and the fast path."""
        return {
            "ipv4": self.ipv4.stats.as_dict(),
            "icmp": self.ipv4.icmp.stats.as_dict(),
            "arp": self.arp.stats.as_dict(),
            "fastpath": {"hits": self.fastpath.hits if self.fastpath else 0},
        }

    def interface_counters(self) -> dict[str, IfCounters]:
        return {ifp.name: ifp.counters for ifp in self.dl.interfaces()}

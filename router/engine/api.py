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

:class:`Engine` is the :class:`~router.engine.core.EngineCore` (the layers
and the packet I/O) with the API calls, the ioctl equivalents: interfaces,
IPv4 addresses and the same-prefix policy, routes, ARP, ``ngN`` interfaces,
their hooks, taps and counters. API calls take addresses as text or
``ipaddress`` objects, use the time of the last input, and raise
:class:`~router.errors.RouterError` naming the field; packets never raise.
"""

from __future__ import annotations

from collections.abc import KeysView, Sequence
from typing import Any

from router.arp.lltable import LlInfo
from router.contracts import IoctlCmd
from router.engine.core import ETHER_FLAGS, EngineCore
from router.engine.edge import (
    AddressLike,
    PrefixLike,
    ntoa,
    parse_address,
    parse_alias,
    parse_mac,
    parse_optional,
    parse_prefix,
)
from router.engine.parts import ETHER_MTU_MAX, ETHER_MTU_MIN, HookOutlet, mtu_bounds
from router.errors import EADDRNOTAVAIL, EEXIST, EINVAL, ENETUNREACH, ENXIO, RouterError
from router.inet.domain import InAddr, SamePrefixPolicy
from router.inet.multipath import NextHop
from router.inet.route import Route, RouteFlags, plen_to_mask
from router.link.ifnet import (
    IfCounters,
    IfExtFlags,
    IfFamily,
    IfFlags,
    IfType,
    Interface,
    LinkState,
)
from router.link.io import LinkDrop
from router.ng.control import IfaceCommand, MessageCookie
from router.ng.hooks import NgHook
from router.ng.tap import Tap
from router.wire import Malformed
from router.wire import ipv4 as ip_wire

_STATIC = int(RouteFlags.STATIC)
_GATEWAY = int(RouteFlags.GATEWAY)
#: Routes that do not make their prefix on-link.
_NOT_CONNECTED = int(RouteFlags.GATEWAY | RouteFlags.LOCAL | RouteFlags.REJECT
                     | RouteFlags.BLACKHOLE)

_QUERY_KINDS = ("local-subnet", "local-address", "can-forward", "broadcast")


class Engine(EngineCore):
    """One router engine: :class:`EngineCore` and its API calls. Single-threaded."""

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

    def local_address_keys(self) -> KeysView[bytes]:
        """Our IPv4 addresses, 4 network-order bytes each: a live view (the agent gives
        frames to them a receive ring of their own)."""
        return self.inet.index.value_keys.keys()

    def interface(self, name: str) -> Interface | None:
        return self.dl.lookup(name) if isinstance(name, str) else None

    def add_ethernet(self, name: str, mac: bytes | str, mtu: int = 1500,
                     up: bool = True, offload: bool = False) -> Interface:
        """A new Ethernet interface with IPv4 and ARP attached.

        ``offload``: its driver hands frames with offload work left (a partial
        checksum, a GSO super-frame: ``router.offload``) to a kernel that
        finishes them, as the agent's AF_PACKET links do; without it the
        engine does that work itself before such a frame leaves. Such a
        driver also sends scatter-gather: forwarded super-frames leave by it
        as ``SplicedFrame`` pieces (``transmit``).

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
        ifp.offload = bool(offload)
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
                    raise RouterError(error, "mtu", mtu, f"mtu of {name}",
                                      mtu_bounds(ifp) if error == EINVAL else "")
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
                  vhid: int = 0, mask: AddressLike | None = None,
                  probes: int | None = None) -> InAddr:
        """Add (or replace) an address: ``"A/LEN"``, or an address with ``mask``.

        The address is used at once and announced with a gratuitous ARP;
        ``probes`` (0..255) asks for RFC 5227 probing first (None: the
        engine's ``ArpConfig.probe_num``, 0 unless configured).
        """
        ifp = self._require(ifname)
        addr, netmask = parse_alias("address", address, mask)
        try:
            return self.inet.add_alias(ifp, addr, netmask, parse_optional("broadcast", broadcast),
                                       parse_optional("dest", dest), vhid, probes)
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
        one value the seed's way (``in_control``): "address" (SIOCGIFADDR)
        answers with the interface's first address whatever address is
        named, ``EADDRNOTAVAIL`` only when it has none; the others look the
        named address up (``EADDRNOTAVAIL`` if unknown), broadcast is
        ``EINVAL`` unless the interface is BROADCAST, destination unless
        POINTOPOINT. Without ``which`` the named address (or the first) is
        described and the fields the interface does not have are None.
        """
        ifp = self._require(ifname)
        value = parse_optional("address", address)
        commands = {"address": IoctlCmd.SIOCGIFADDR, "netmask": IoctlCmd.SIOCGIFNETMASK,
                    "broadcast": IoctlCmd.SIOCGIFBRDADDR,
                    "destination": IoctlCmd.SIOCGIFDSTADDR, "dest": IoctlCmd.SIOCGIFDSTADDR}
        if which is not None and which not in commands:
            raise RouterError(EINVAL, "which", which, f"get address on {ifname}")
        if which == "address":
            value = None  # SIOCGIFADDR: the first address, whichever was named
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
                  ifname: str | None = None, *,
                  gateways: Sequence[tuple[AddressLike, str]] | None = None) -> Route:
        """A STATIC route via ``gateway`` (on a connected network) and/or out of ``ifname``.

        ``EINVAL`` with neither; ``ENETUNREACH`` for a gateway no connected
        route reaches, or (with ``ifname``) one that is not on-link through
        that interface; ``EEXIST`` if the prefix has a route already.
        ``gateways``, a list of ``(gateway, ifname)``, instead makes a
        multipath (``ECMP``) route, each gateway on-link through its
        interface (see :meth:`set_route`).
        """
        network, plen = parse_prefix("prefix", prefix)
        subject = f"route {ntoa(network)}/{plen}"
        if gateways is not None:
            if gateway is not None or ifname:
                raise RouterError(EINVAL, "gateways", "", subject,
                                  "give gateways or gateway/ifname, not both")
            legs = self._legs(gateways, subject)
            try:
                return self._add_static(network, plen, legs)
            finally:
                self._settle()
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
        elif via is not None and not self._on_link(via, ifp):
            raise RouterError(ENETUNREACH, "gateway", gateway, subject,
                              f"gateway is not on-link through {ifp.name}")
        flags = RouteFlags.UP | RouteFlags.STATIC
        if via is not None:
            flags |= RouteFlags.GATEWAY
        if plen == 32:
            flags |= RouteFlags.HOST
        # the address the route goes through (rt_ifa): it goes when that address goes
        ifaddr = self.inet.ifaddr_for(ifp, via if via is not None else network)
        try:
            route = self.route_table.add(network, plen, ifindex=ifp.index, flags=flags,
                                         gateway=via or 0, ifname=ifp.name, ifaddr=ifaddr)
            self.inet.tie_route(route, [(ifaddr, None)] if ifaddr is not None else [])
            return route
        finally:
            self._settle()

    def set_route(self, prefix: PrefixLike,
                  gateways: Sequence[tuple[AddressLike, str]]) -> Route:
        """Make the STATIC route of ``prefix`` go via exactly ``gateways``, creating or
        replacing it in one step.

        ``gateways`` is a list of ``(gateway, ifname)``; each gateway must be
        on-link through its interface (a connected route over that interface
        covers it), else ``ENETUNREACH`` naming ``gateways[i].gateway``; a
        duplicate is ``EINVAL``. One makes an ordinary gateway route, several
        a multipath (``ECMP``) one over which flows are spread. Replacing
        keeps the route in the table throughout — one ``RTM_CHANGE``, never a
        lookup that finds the prefix unrouted — and the same set again
        changes nothing (no event), so a reconciler may call it every time.
        ``EEXIST`` if the prefix's route is not a STATIC one (a connected
        route); nothing is changed on any error.
        """
        network, plen = parse_prefix("prefix", prefix)
        subject = f"route {ntoa(network)}/{plen}"
        legs = self._legs(gateways, subject)
        current = [r for r in self.route_table.get(network, plen) if not r.is_local]
        try:
            if not current:
                return self._add_static(network, plen, legs)
            route = current[0]
            if not route.bits & _STATIC or len(current) > 1:
                raise RouterError(EEXIST, "prefix", prefix, subject,
                                  "the prefix has a route that is not static")
            if (route.nexthops or (NextHop(route.gateway, route.ifindex, route.ifname),)) != (
                    legs) or not route.bits & _GATEWAY:
                self.route_table.set_nexthops(route, legs)
                self._tie_legs(route, legs)
            return route
        finally:
            self._settle()

    def next_hop_usable(self, hop: NextHop) -> bool:
        """Would forwarding use this leg of a multipath route now? (its interface is
        up and ARP has not given up on its gateway)."""
        return self.ipv4.leg_usable(hop)

    def _add_static(self, network: int, plen: int, legs: tuple[NextHop, ...]) -> Route:
        flags = RouteFlags.UP | RouteFlags.STATIC | RouteFlags.GATEWAY
        if plen == 32:
            flags |= RouteFlags.HOST
        first = legs[0]
        route = self.route_table.add(network, plen, ifindex=first.ifindex, flags=flags,
                                     gateway=first.gateway, ifname=first.ifname, nexthops=legs,
                                     ifaddr=self._leg_ifaddr(first))
        self._tie_legs(route, legs)
        return route

    def _leg_ifaddr(self, leg: NextHop) -> InAddr | None:
        """The address a leg goes through (its interface's, on the gateway's subnet)."""
        ifp = self.dl.lookup(leg.ifindex)
        return self.inet.ifaddr_for(ifp, leg.gateway) if ifp is not None else None

    def _tie_legs(self, route: Route, legs: tuple[NextHop, ...]) -> None:
        """Tie ``route`` to the addresses its legs go through (one leg: the whole route)."""
        through: list[tuple[InAddr, NextHop | None]] = []
        for leg in legs:
            ia = self._leg_ifaddr(leg)
            if ia is not None:
                through.append((ia, leg if len(legs) > 1 else None))
        self.inet.tie_route(route, through)

    def _legs(self, gateways: Sequence[tuple[AddressLike, str]], subject: str
              ) -> tuple[NextHop, ...]:
        """Checked ``(gateway, ifname)`` pairs as next hops, in the given order."""
        if not gateways:
            raise RouterError(EINVAL, "gateways", "", subject, "needs at least one gateway")
        legs: list[NextHop] = []
        for i, pair in enumerate(gateways):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise RouterError(EINVAL, f"gateways[{i}]", pair, subject,
                                  "expected (gateway, ifname)")
            gateway, ifname = pair
            via = parse_optional(f"gateways[{i}].gateway", gateway)
            if via is None:
                raise RouterError(EINVAL, f"gateways[{i}].gateway", gateway, subject,
                                  "needs a gateway")
            ifp = self._require(ifname)
            if not self._on_link(via, ifp):
                raise RouterError(ENETUNREACH, f"gateways[{i}].gateway", gateway, subject,
                                  f"gateway is not on-link through {ifp.name}")
            leg = NextHop(via, ifp.index, ifp.name)
            if leg in legs:
                raise RouterError(EINVAL, f"gateways[{i}]", f"{gateway}%{ifname}", subject,
                                  "listed twice")
            legs.append(leg)
        return tuple(legs)

    def _on_link(self, addr: int, ifp: Interface) -> bool:
        """Is ``addr`` a neighbour reachable through ``ifp``? (Linux: else "Nexthop has
        invalid gateway".) Yes when one of ``ifp``'s addresses has it in its subnet
        or as its point-to-point peer — even an address whose prefix route another
        interface owns (same-prefix policy ``allow``) — or a connected route over
        ``ifp`` covers it; never for one of our own addresses."""
        if self.inet.local_ip(addr):
            return False
        for ia in self.inet.addresses(ifp):
            network, plen = ia.route_key
            if addr & plen_to_mask(plen) == network:
                return True
        return any(not route.bits & _NOT_CONNECTED and addr & route.mask == route.prefix
                   for route in self.route_table.routes_of(ifp.index))

    def delete_route(self, prefix: PrefixLike) -> Route:
        """Delete the (non-local) route of exactly ``prefix``; ``ESRCH`` if none."""
        network, plen = parse_prefix("prefix", prefix)
        try:
            route = self.route_table.delete(network, plen, local=False)
            self.inet.untie_route(route)
            return route
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

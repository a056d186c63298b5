"""IPv4 address control: aliases, prefix routes, hand-over and the queries (in.c).

``InetDomain`` adds and deletes interface addresses, keeps the prefix route
of each prefix owned by exactly one address (or one per address under the
multipath policy), hands the route over when its owner goes, keeps one
loopback route per local address value, and answers the local/broadcast
queries.

Unlike the seed, which walks the global address list on every change, every
lookup goes through the indexes of ``router/inet/index.py``, so each
operation costs the same with 10 or 100,000 addresses, on one interface or
spread over many.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence

from router.contracts import IoctlCmd
from router.errors import (
    EADDRNOTAVAIL,
    EDESTADDRREQ,
    EEXIST,
    EINVAL,
    EJUSTRETURN,
    EOPNOTSUPP,
    EPROTONOSUPPORT,
    RouterError,
)
from router.events import Event, EventKind
from router.inet.addr import (
    ALL_HOSTS_GROUP,
    LIMITED_BROADCAST,
    AliasRequest,
    DeleteRequest,
    IfaFlags,
    InAddr,
    InetIfInfo,
    NeighborHooks,
    NoNeighbors,
    SamePrefixPolicy,
    can_forward,
    classful_mask,
    default_peer,
)
from router.inet.index import AddressIndex, PrefixKey, count_in, count_out
from router.inet.multipath import NextHop
from router.inet.route import ALL_ONES, Route, RouteFlags, RouteTable, mask_to_plen, ntoa
from router.link.ifnet import AF_INET, IfFlags, Interface

__all__ = [
    "AliasRequest",
    "DeleteRequest",
    "InAddr",
    "InetDomain",
    "InetIfInfo",
    "NeighborHooks",
    "NoNeighbors",
    "SamePrefixPolicy",
]

Emit = Callable[[Event], None]

_GETS = frozenset({
    IoctlCmd.SIOCGIFADDR, IoctlCmd.SIOCGIFBRDADDR, IoctlCmd.SIOCGIFDSTADDR,
    IoctlCmd.SIOCGIFNETMASK,
})
_OLD_SETS = frozenset({
    IoctlCmd.SIOCSIFADDR, IoctlCmd.SIOCSIFBRDADDR, IoctlCmd.SIOCSIFDSTADDR,
    IoctlCmd.SIOCSIFNETMASK,
})


#: The most RFC 5227 probes an address may ask for (PROBE_NUM is 3).
MAX_PROBES = 255

_LOOPBACK = int(IfFlags.LOOPBACK)
_POINTOPOINT = int(IfFlags.POINTOPOINT)
_NOARP = int(IfFlags.NOARP)
_MULTICAST = int(IfFlags.MULTICAST)
_BROADCAST = int(IfFlags.BROADCAST)


def _no_emit(event: Event) -> None:
    del event


def _alias_subject(ifp: Interface, addr: int) -> str:
    return f"alias {ntoa(addr)} on {ifp.name}"


class InetDomain:
    """IPv4 address control over one route table (the address half of in.c).

    ``emit`` receives ``RTM_NEWADDR``/``RTM_DELADDR`` and the alias routing
    messages (the route table emits its own ``RTM_ADD``/``RTM_DELETE``);
    ``neighbors`` is the ARP/IGMP side (see :class:`NeighborHooks`).
    ``policy`` may be changed at any time and applies to later operations.
    """

    def __init__(
        self,
        routes: RouteTable,
        emit: Emit | None = None,
        neighbors: NeighborHooks | None = None,
        policy: SamePrefixPolicy = SamePrefixPolicy.ALLOW,
    ) -> None:
        self.routes = routes
        self.emit: Emit = emit or _no_emit
        self.neighbors: NeighborHooks = neighbors or NoNeighbors()
        self.policy = policy
        self.index = AddressIndex()
        # prefix key -> the addresses among them that own a prefix route
        self._owners: dict[PrefixKey, dict[InAddr, None]] = {}
        # address value -> its loopback route to self
        self._local: dict[int, Route] = {}
        # address -> the configured routes that go through it (the seed's rt_ifa):
        # the legs of a multipath route through it, or None for the whole route
        self._tied: dict[InAddr, dict[Route, tuple[NextHop, ...] | None]] = {}
        self._ties_of: dict[Route, list[InAddr]] = {}  # route -> the addresses it is tied to
        self._seq = itertools.count(1)

    # -- in_control ------------------------------------------------------

    def control(self, ifp: Interface | None, cmd: IoctlCmd, arg: object = None) -> int:
        """The ioctl entry (``in_control``): returns the value of a get, else 0.

        ``SIOCAIFADDR`` takes an :class:`AliasRequest`, ``SIOCDIFADDR`` a
        :class:`DeleteRequest` (or None), the gets an optional address value.
        The old set commands are ``EINVAL``; anything else goes to the
        interface driver (``EOPNOTSUPP`` without one).
        """
        if ifp is None:
            raise RouterError(EADDRNOTAVAIL, "interface", None, f"{cmd.name}: no interface")
        if cmd in _GETS:
            return self.get(ifp, cmd, arg if isinstance(arg, int) else None)
        if cmd is IoctlCmd.SIOCAIFADDR:
            if not isinstance(arg, AliasRequest):
                raise RouterError(EINVAL, "request", arg, f"{cmd.name} on {ifp.name}")
            self.apply_alias(ifp, arg)
            return 0
        if cmd is IoctlCmd.SIOCDIFADDR:
            req = arg if isinstance(arg, DeleteRequest) else DeleteRequest(
                arg if isinstance(arg, int) else None)
            self.delete_alias(ifp, req.addr, req.family)
            return 0
        if cmd in _OLD_SETS:
            raise RouterError(EINVAL, "cmd", cmd.name, f"{cmd.name} on {ifp.name}",
                              "old set command no longer supported")
        return self._forward_to_driver(ifp, cmd, arg)

    @staticmethod
    def _forward_to_driver(ifp: Interface, cmd: IoctlCmd, arg: object) -> int:
        if ifp.driver is None:
            raise RouterError(EOPNOTSUPP, "cmd", cmd.name, f"{cmd.name} on {ifp.name}")
        error = ifp.driver.ioctl(ifp, cmd, arg)
        if error not in (0, EJUSTRETURN):
            raise RouterError(error, "cmd", cmd.name, f"{cmd.name} on {ifp.name}")
        return 0

    def get(self, ifp: Interface | None, cmd: IoctlCmd, addr: int | None = None) -> int:
        """``SIOCGIF{ADDR,BRDADDR,DSTADDR,NETMASK}`` for ``addr`` on ``ifp``.

        As in the seed, ``SIOCGIFADDR`` always answers with the interface's
        first address; the others look ``addr`` up, or take the first address
        when it is absent or 0.
        """
        if ifp is None:
            raise RouterError(EADDRNOTAVAIL, "interface", None, f"{cmd.name}: no interface")
        subject = f"{cmd.name} on {ifp.name}"
        if cmd not in _GETS:
            raise RouterError(EINVAL, "cmd", cmd.name, subject)
        info = self.info(ifp)
        first = cmd is IoctlCmd.SIOCGIFADDR or not addr
        ia = info.addrs.first() if first or addr is None else info.addrs.get(addr)
        if ia is None:
            raise RouterError(EADDRNOTAVAIL, "addr", None if addr is None else ntoa(addr), subject)
        if cmd is IoctlCmd.SIOCGIFBRDADDR:
            if not ifp.flags & IfFlags.BROADCAST:
                raise RouterError(EINVAL, "interface", ifp.name, subject, "not a broadcast link")
            return ia.peer
        if cmd is IoctlCmd.SIOCGIFDSTADDR:
            if not ifp.flags & IfFlags.POINTOPOINT:
                raise RouterError(EINVAL, "interface", ifp.name, subject,
                                  "not a point-to-point link")
            return ia.peer
        if cmd is IoctlCmd.SIOCGIFNETMASK:
            return ia.mask
        return ia.addr

    # -- in_aifaddr_ioctl ------------------------------------------------

    def add_alias(
        self,
        ifp: Interface,
        addr: int,
        mask: int | None = None,
        broadcast: int | None = None,
        dest: int | None = None,
        vhid: int = 0,
        probes: int | None = None,
    ) -> InAddr:
        """Add (or replace) an IPv4 address on ``ifp``; see :meth:`apply_alias`."""
        return self.apply_alias(ifp, AliasRequest(addr, mask, broadcast, dest, vhid,
                                                  probes=probes))

    def apply_alias(self, ifp: Interface, req: AliasRequest) -> InAddr:
        """``in_aifaddr_ioctl``: validate, replace, link, initialise, route, join.

        Every failure after the address is linked undoes what was done (the
        seed's fail1/fail2/fail3). "First address" for the all-hosts join
        does not count the address being replaced (the seed counts it, so
        re-adding the only address lost the membership; later FreeBSD fixed
        it the same way).
        """
        self._validate(ifp, req)
        info = self.info(ifp)
        old = info.addrs.get(req.addr)
        if old is not None:
            self._delete(old)
        ia = self._build(ifp, req)
        first = not info.addrs
        self._link(ia)
        try:
            self._init_interface(ia)
            self._add_prefix(ia)
        except RouterError:  # fail2/fail1: nothing routed yet
            self._unlink(ia)
            raise
        try:
            self._add_local_route(ia)
        except RouterError:  # fail3: undo the prefix route (or its alias message) too
            self._unlink(ia)
            self._scrub_prefix(ia, include_static=True)
            raise
        if first and int(ifp.flags) & _MULTICAST:
            self.join_group(ifp, ALL_HOSTS_GROUP)
            info.allhosts = True
        if self.emit is not _no_emit:
            self.emit(Event(EventKind.RTM_NEWADDR, ifp.name, ifp.index, ia.describe()))
        self.neighbors.address_added(ifp, ia)
        return ia

    @staticmethod
    def _validate(ifp: Interface, req: AliasRequest) -> None:
        subject = _alias_subject(ifp, req.addr)
        if req.addr_family != AF_INET:
            raise RouterError(EINVAL, "addr_family", req.addr_family, subject)
        if not 0 <= req.addr <= ALL_ONES:
            raise RouterError(EINVAL, "addr", req.addr, subject)
        if req.broadcast is not None:
            if req.broadcast_family != AF_INET:
                raise RouterError(EINVAL, "broadcast_family", req.broadcast_family, subject)
            if not 0 <= req.broadcast <= ALL_ONES:
                raise RouterError(EINVAL, "broadcast", req.broadcast, subject)
        if req.mask is not None:
            if req.mask_family != AF_INET:
                raise RouterError(EINVAL, "mask_family", req.mask_family, subject)
            # vrc's table is prefix-length based: a mask with holes has no route.
            if not 0 <= req.mask <= ALL_ONES or mask_to_plen(req.mask) is None:
                raise RouterError(EINVAL, "mask", hex(req.mask), subject, "mask is not contiguous")
        if req.dest is not None and not 0 <= req.dest <= ALL_ONES:
            raise RouterError(EINVAL, "dest", req.dest, subject)
        if ifp.flags & IfFlags.POINTOPOINT and not req.dest:
            raise RouterError(EDESTADDRREQ, "dest", req.dest, subject)
        if req.vhid > 0:
            raise RouterError(EPROTONOSUPPORT, "vhid", req.vhid, subject,
                              "no redundancy protocol (CARP) in vrc")
        if req.vhid < 0:
            raise RouterError(EINVAL, "vhid", req.vhid, subject)
        probes = req.probes
        if probes is not None and (type(probes) is not int or not 0 <= probes <= MAX_PROBES):
            raise RouterError(EINVAL, "probes", probes, subject,
                              f"RFC 5227 probes: 0..{MAX_PROBES}")

    def _build(self, ifp: Interface, req: AliasRequest) -> InAddr:
        mask = req.mask if req.mask is not None else classful_mask(req.addr)
        plen = mask.bit_count()
        subnet = req.addr & mask
        peer = default_peer(ifp, req.addr, mask, req)
        flags = int(ifp.flags)
        host = bool(flags & (_LOOPBACK | _POINTOPOINT))
        key = (peer, 32) if host else (subnet, plen)
        p2p_self = bool(flags & _POINTOPOINT) and peer == req.addr
        wants_local = req.addr != 0 and not flags & _LOOPBACK and not p2p_self
        return InAddr(req.addr, mask, plen, subnet, peer, ifp, key, host, wants_local, req.vhid,
                      seq=next(self._seq), probes=req.probes)

    def _init_interface(self, ia: InAddr) -> None:
        """Let the driver initialise for (or refuse) the address (``SIOCSIFADDR``)."""
        driver = ia.ifp.driver
        if driver is None:
            return
        error = driver.ioctl(ia.ifp, IoctlCmd.SIOCSIFADDR, ia)
        if error not in (0, EOPNOTSUPP, EJUSTRETURN):
            raise RouterError(error, "interface", ia.ifp.name, _alias_subject(ia.ifp, ia.addr),
                              "driver refused address")

    # -- in_addprefix / in_addralias_rtmsg --------------------------------

    def _add_prefix(self, ia: InAddr) -> None:
        """``in_addprefix``: route the prefix, or leave it to its current owner."""
        owners = self._owners.get(ia.route_key)
        if owners:
            if self.policy is SamePrefixPolicy.REFUSE:
                raise RouterError(EEXIST, "prefix", self._key_text(ia),
                                  _alias_subject(ia.ifp, ia.addr),
                                  "prefix already routed (same-prefix policy: refuse)")
            if self.policy is SamePrefixPolicy.ALLOW:
                self._alias_message(EventKind.RTM_ADD, ia)
                return
            if self.index.value_routed_at_key(ia):
                raise RouterError(EEXIST, "addr", ntoa(ia.addr), _alias_subject(ia.ifp, ia.addr),
                                  "address already routed on another interface")
            if self._has_leg_on(ia.ifp, ia.route_key):
                # a second leg on one interface would be identical to the first:
                # the address is an alias of the prefix, as under allow
                self._alias_message(EventKind.RTM_ADD, ia)
                return
        self._install_prefix_route(ia)

    def _has_leg_on(self, ifp: Interface, key: PrefixKey) -> bool:
        """Does an address of ``ifp`` own a route to ``key`` (a multipath leg there)?

        A second leg on the same interface would be identical to the first
        (same prefix, same interface, no gateway), the leg the seed's insert
        refuses with ``EEXIST``; so an interface holds one leg at most. One
        probe per owner of the prefix: one per interface at most.
        """
        return any(owner.ifp is ifp for owner in self._owners.get(key, ()))

    def _install_prefix_route(self, ia: InAddr) -> None:
        prefix, plen = ia.route_key
        flags = RouteFlags.UP | (RouteFlags.HOST if ia.host_route else RouteFlags.NONE)
        route = self.routes.add(
            prefix, plen, ifindex=ia.ifp.index, flags=flags, source=ia.addr, ifaddr=ia,
            ifname=ia.ifp.name, multipath=ia.route_key in self._owners,
        )
        ia.prefix_route = route
        ia.flags |= IfaFlags.ROUTE
        self._owners.setdefault(ia.route_key, {})[ia] = None

    def _drop_prefix_route(self, ia: InAddr) -> None:
        if ia.prefix_route is not None:
            self.routes.remove(ia.prefix_route)
        ia.prefix_route = None
        ia.flags &= ~IfaFlags.ROUTE
        owners = self._owners.get(ia.route_key)
        if owners is not None:
            owners.pop(ia, None)
            if not owners:
                del self._owners[ia.route_key]

    def _alias_message(self, kind: EventKind, ia: InAddr) -> None:
        """``in_addralias_rtmsg``: report the prefix route as if the alias had added it.

        No route is added or removed; the message copies the prefix's route
        with the gateway pointed at the alias. Without a route, no message.
        """
        if self.emit is _no_emit:
            return
        prefix, plen = ia.route_key
        route = next((r for r in self.routes.get(prefix, plen) if not r.is_local), None)
        if route is None:
            return
        data = route.describe()
        data.update(gateway=ntoa(ia.addr), alias=True, ifa=ntoa(ia.addr), alias_if=ia.ifp.name)
        self.emit(Event(kind, route.ifname, route.ifindex, data))

    @staticmethod
    def _key_text(ia: InAddr) -> str:
        return f"{ntoa(ia.route_key[0])}/{ia.route_key[1]}"

    # -- loopback route to self (in_localip_more) -------------------------

    def _add_local_route(self, ia: InAddr) -> None:
        """One loopback route per address value, owned by one of its addresses."""
        if not ia.wants_local or self._live_local_route(ia.addr) is not None:
            return
        flags = RouteFlags.LOCAL | RouteFlags.HOST | RouteFlags.STATIC
        self._local[ia.addr] = self.routes.add(
            ia.addr, 32, ifindex=ia.ifp.index, flags=flags, source=ia.addr, ifaddr=ia,
            ifname=ia.ifp.name,
        )

    def _release_local_route(self, ia: InAddr) -> None:
        """Switch the loopback route to another address with the value, or remove it.

        The heir must itself want a loopback route (the seed would also
        switch to a loopback-interface or p2p-to-self address, which are
        reached through their own host routes; it would also leave an address
        added after such a one without any). So a loopback route exists
        exactly while some address that wants one has its value.
        """
        route = self._live_local_route(ia.addr)
        if route is None or route.ifaddr is not ia:
            return
        heir = self._local_heir(ia)
        if heir is None:
            self.routes.remove(route)
            del self._local[ia.addr]
        else:
            self.routes.change(route, ifaddr=heir, source=heir.addr, ifindex=heir.ifp.index,
                               ifname=heir.ifp.name)

    def _local_heir(self, ia: InAddr) -> InAddr | None:
        """``in_localip_more`` for the loopback-route switch (see ``AddressIndex.local_heir``)."""
        return self.index.local_heir(ia)

    def _live_local_route(self, value: int) -> Route | None:
        route = self._local.get(value)
        if route is not None and not route.installed:  # removed under us
            del self._local[value]
            return None
        return route

    # -- in_difaddr_ioctl / in_scrubprefix -------------------------------

    def delete_alias(self, ifp: Interface, addr: int | None = None,
                     family: int = AF_INET) -> InAddr:
        """``in_difaddr_ioctl``: delete ``addr`` from ``ifp``.

        Without an address, or with one that is not ``AF_INET``, the
        interface's first address goes — unless the value given matches an
        address, which the seed then prefers. Unknown → ``EADDRNOTAVAIL``.
        """
        info = self.info(ifp)
        ia = info.addrs.get(addr if addr is not None else 0)
        if ia is None and (addr is None or family != AF_INET):
            ia = info.addrs.first()
        if ia is None:
            shown = None if addr is None else ntoa(addr)
            raise RouterError(EADDRNOTAVAIL, "addr", shown, f"delete {shown} on {ifp.name}")
        self._delete(ia)
        return ia

    def _delete(self, ia: InAddr) -> None:
        """Unlink, scrub with statics, remove the routes tied to the address
        (``in_ifadown(ia, 1)``), and leave all-hosts once no IPv4 address is left.

        "Last" is judged on what remains, not by the seed's ``iaIsLast`` walk,
        which misfires when delete-first finds a later address by value.
        """
        ifp = ia.ifp
        info = self.info(ifp)
        self._unlink(ia)
        self._scrub_prefix(ia, include_static=True)
        self._ifadown(ia)
        if not info.addrs and info.allhosts:
            info.allhosts = False
            self.leave_group(ifp, ALL_HOSTS_GROUP)
        if self.emit is not _no_emit:
            self.emit(Event(EventKind.RTM_DELADDR, ifp.name, ifp.index, ia.describe()))

    def scrub_prefix(self, ia: InAddr, *, include_static: bool = False) -> None:
        """``in_scrubprefix`` for an address that stays configured.

        Hands the prefix route over (or removes it and flushes the non-static
        ARP entries on the prefix). With ``include_static`` the loopback
        route and the ARP entry of the address itself go too, and the flush
        takes static entries as well: that is what deleting the address does.
        """
        self._scrub_prefix(ia, include_static)

    def _scrub_prefix(self, ia: InAddr, include_static: bool) -> None:
        ifp = ia.ifp
        flags = int(ifp.flags)
        if include_static:
            self._release_local_route(ia)  # a no-op unless ia holds the value's route
            if ia.addr != 0 and not flags & (_LOOPBACK | _NOARP):
                self.neighbors.scrub_address(ifp, ia.addr)
        if not ia.owns_route:
            self._alias_message(EventKind.RTM_DELETE, ia)
            return
        heir = self._prefix_heir(ia)
        if heir is not None:
            self._drop_prefix_route(ia)
            # Should the heir's route fail, the seed logs and goes on unrouted:
            # so it does when the heir's interface has a leg already (the
            # insert of an identical leg is EEXIST); that leg keeps the prefix.
            if not self._has_leg_on(heir.ifp, ia.route_key):
                with contextlib.suppress(RouterError):
                    self._install_prefix_route(heir)
            return
        self.neighbors.flush_prefix(ia.subnet, ia.mask, include_static)
        self._drop_prefix_route(ia)

    # -- configured routes through an address (rt_ifa, in_ifadown) --------

    def ifaddr_for(self, ifp: Interface, addr: int) -> InAddr | None:
        """The address of ``ifp`` a configured route to or via ``addr`` goes through.

        ``ifaof_ifpforaddr``: the earliest-added address of ``ifp`` on
        ``addr``'s subnet, else its first address; None without any.
        """
        info = ifp.inet
        if not isinstance(info, InetIfInfo):
            return None
        return self.index.address_on(info, addr)

    def tie_route(self, route: Route,
                  through: Sequence[tuple[InAddr, NextHop | None]]) -> None:
        """Remember which addresses ``route`` goes through (replacing what was known):
        each ``(address, leg)``, ``leg`` None for a route of one next hop. The route,
        or those legs of it, go when the address goes (:meth:`_ifadown`)."""
        self.untie_route(route)
        addresses: list[InAddr] = []
        for ia, leg in through:
            tied = self._tied.setdefault(ia, {})
            if leg is None:
                tied[route] = None
            else:
                tied[route] = (*(tied.get(route) or ()), leg)
            if ia not in addresses:
                addresses.append(ia)
        if addresses:
            self._ties_of[route] = addresses

    def untie_route(self, route: Route) -> None:
        """``route`` was deleted or re-tied: forget its ties."""
        for ia in self._ties_of.pop(route, ()):
            tied = self._tied.get(ia)
            if tied is not None:
                tied.pop(route, None)
                if not tied:
                    del self._tied[ia]

    def routes_through(self, ia: InAddr) -> list[Route]:
        """The configured routes tied to ``ia``, oldest first."""
        return list(self._tied.get(ia, ()))

    def _ifadown(self, ia: InAddr) -> None:
        """``in_ifadown(ia, 1)``: every route still going through ``ia`` is removed.

        The scrub has handed over or removed the prefix route and switched
        or removed the loopback route; what is left are the configured
        routes added through the address, static ones included. The seed
        says why: "not quite the right thing to do, but at least if we are
        running a routing process they will come back". A multipath route
        loses the legs through ``ia`` (each is a route of its own with its
        own address in the seed's ``RADIX_MPATH``) and goes with its last.
        """
        for route, legs in self._tied.pop(ia, {}).items():
            others = self._ties_of.get(route)
            if others is not None and ia in others:
                others.remove(ia)
            if not route.installed:
                self._ties_of.pop(route, None)
                continue
            remaining = () if legs is None else tuple(
                hop for hop in route.nexthops if hop not in legs)
            if remaining:
                self.routes.set_nexthops(route, remaining)
            else:
                self.untie_route(route)
                self.routes.remove(route)

    def _prefix_heir(self, ia: InAddr) -> InAddr | None:
        """``in_scrubprefix``'s hand-over target (see ``AddressIndex.prefix_heir``)."""
        return self.index.prefix_heir(ia)

    # -- indexes ---------------------------------------------------------

    def _link(self, ia: InAddr) -> None:
        self.index.link(ia, self.info(ia.ifp))
        ia.ifp.generation += 1

    def _unlink(self, ia: InAddr) -> None:
        self.index.unlink(ia, self.info(ia.ifp))
        ia.ifp.generation += 1

    @staticmethod
    def info(ifp: Interface) -> InetIfInfo:
        """The interface's IPv4 data, created on first use."""
        info = ifp.inet
        if info is None:
            info = ifp.inet = InetIfInfo()
        if not isinstance(info, InetIfInfo):
            raise TypeError(f"{ifp.name}: Interface.inet holds {type(info).__name__}")
        return info

    # -- multicast memberships --------------------------------------------

    def join_group(self, ifp: Interface, group: int) -> None:
        """Join ``group`` on ``ifp`` (counted: the hook sees only the first join)."""
        groups = self.info(ifp).groups
        count_in(groups, group)
        if groups[group] == 1:
            self.neighbors.join_group(ifp, group)

    def leave_group(self, ifp: Interface, group: int) -> None:
        groups = self.info(ifp).groups
        if group not in groups:
            return
        count_out(groups, group)
        if group not in groups:
            self.neighbors.leave_group(ifp, group)

    def groups(self, ifp: Interface) -> dict[int, int]:
        return dict(self.info(ifp).groups)

    # -- interface removal (AddressDomain) --------------------------------

    def purge_interface(self, ifp: Interface) -> None:
        """Delete every IPv4 address of ``ifp`` and leave its groups.

        The data link layer's final detach (``if_purgeaddrs`` then
        ``in_ifdetach``/``in_purgemaddrs``): each address goes as a delete
        alias would, prefix routes are handed over to other interfaces.
        """
        info = ifp.inet
        if not isinstance(info, InetIfInfo):
            return
        for ia in list(info.addrs.values()):
            self._delete(ia)
        self._purge_groups(ifp, info)

    def _purge_groups(self, ifp: Interface, info: InetIfInfo) -> None:
        """``in_purgemaddrs``: release every membership left on the interface."""
        for group in list(info.groups):
            del info.groups[group]
            self.neighbors.leave_group(ifp, group)
        info.allhosts = False

    def unplumb(self, ifp: Interface, family: int) -> None:
        """IPv4 detached from ``ifp``: nothing of it may stay (idempotent)."""
        if family == AF_INET:
            self.purge_interface(ifp)

    # -- queries ---------------------------------------------------------

    def local_subnet(self, addr: int) -> bool:
        """``in_localaddr``: is ``addr`` on the subnet of one of our addresses?"""
        return self.index.local_subnet(addr)

    def on_link(self, ifp: Interface, addr: int) -> bool:
        """Is ``addr`` on the subnet of one of ``ifp``'s own addresses?

        What the ARP table's rtcheck asks when the covering route is on
        another interface: one probe per netmask in use on ``ifp``.
        """
        info = ifp.inet
        if not isinstance(info, InetIfInfo):
            return False
        return any((addr & mask) in by_subnet for mask, by_subnet in info.subnets.items())

    def local_ip(self, addr: int) -> bool:
        """``in_localip``: is ``addr`` configured on one of our interfaces?

        ``AddressIndex.local_ip`` inlined: one dict probe, called for every datagram.
        """
        return addr in self.index.by_value

    #: ``in_canforward`` (:func:`router.inet.addr.can_forward` itself: no wrapper call
    #: per forwarded packet).
    can_forward = staticmethod(can_forward)

    def is_broadcast(self, addr: int, ifp: Interface) -> bool:
        """``in_broadcast``: might ``addr`` be a broadcast address on ``ifp``?

        The limited broadcast and 0.0.0.0 always are; otherwise only on a
        broadcast interface, as an address's broadcast or (except for a /31)
        its subnet number, never for an address with an all-ones mask.
        """
        if addr == LIMITED_BROADCAST or addr == 0:
            return True
        info = ifp.inet
        if not isinstance(info, InetIfInfo) or addr not in info.broadcast_hits:
            return False  # the usual answer, known without reading the flags property
        return bool(ifp.flags & _BROADCAST)  # plain ints: no IntFlag operator per packet

    def addresses(self, ifp: Interface) -> list[InAddr]:
        """The IPv4 addresses of ``ifp`` in the order they were added."""
        info = ifp.inet
        return list(info.addrs.values()) if isinstance(info, InetIfInfo) else []

    def address(self, ifp: Interface, addr: int | None = None) -> InAddr | None:
        """The address ``addr`` on ``ifp`` (its first address when None or 0), or None."""
        info = ifp.inet
        if not isinstance(info, InetIfInfo):
            return None
        return info.addrs.first() if not addr else info.addrs.get(addr)

    def address_on(self, ifp: Interface, dst: int) -> int:
        """``ifp``'s earliest-added address on ``dst``'s subnet, else its first; 0 if none.

        The source for a message about a datagram that came in on ``ifp``
        (``icmp_reflect``), found through the per-interface subnet index: one
        probe per netmask in use on the interface, whatever its address count.
        """
        info = ifp.inet
        if not isinstance(info, InetIfInfo):
            return 0
        best = self.index.address_on(info, dst)
        return best.addr if best is not None else 0

    def find(self, addr: int) -> InAddr | None:
        """The most recently added address with value ``addr`` (``ifa_ifwithaddr``)."""
        return self.index.find(addr)

    def prefix_members(self, prefix: int, plen: int) -> list[InAddr]:
        """The addresses serving ``prefix/plen`` (host routes: ``(dest, 32)``), oldest first."""
        return self.index.prefix_members((prefix, plen))

    def local_route(self, addr: int) -> Route | None:
        return self._live_local_route(addr)

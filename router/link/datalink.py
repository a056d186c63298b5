"""The data link layer (XNU ``dlil.c``): interfaces, protocols, filters, events.

``DataLink`` owns every ``Interface`` object of the engine and its lifecycle
(acquire, attach, detach, final detach, release, recycle — the table is in
``router/link/lifecycle.py``), the protocol attachments per (interface,
family), the interface filters, and the paths that cross the layer: input
and output (``router/link/io.py``), ioctl and events (the passes through an
interface's filters, protocols and driver are ``router/link/dispatch.py``),
ARP send and multicast resolution (``router/link/arp_send.py``).

Final detach is deferred, as in the seed (whose worker thread runs
``ifnet_detach_final``): ``detach`` only queues the interface, and
``run_deferred`` finishes every queued interface that has no I/O reference
left. The engine calls ``run_deferred`` after each batch, tick and API call;
it never runs from inside an input, output, ioctl or event pass, so no
callback sees its interface torn down under it.

API calls raise ``RouterError``; the per-packet paths and the callback-style
calls (``ioctl``, ``send_arp``, ``resolve_multi``) return errno ints.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, cast

from router.contracts import (
    AddressDomain,
    Driver,
    FamilyModule,
    InterfaceFilter,
    IoctlCmd,
    Packet,
    ProtoAttachment,
)
from router.errors import (
    EBUSY,
    EEXIST,
    EINVAL,
    EJUSTRETURN,
    ENODEV,
    ENXIO,
    EOPNOTSUPP,
    RouterError,
)
from router.events import Event, EventKind
from router.link import arp_send
from router.link import io as link_io
from router.link.dispatch import event_to_interface, ioctl_chain, protocols_in_hash_order
from router.link.ifnet import (
    IfExtFlags,
    IfFamily,
    IfFlags,
    IfState,
    IfType,
    Interface,
    LinkAddress,
    LinkState,
)
from router.link.lifecycle import LifeEvent, next_state
from router.link.stubs import DETACHED_DRIVER, DETACHED_FAMILY, stub_protocol

EventCallback = Callable[[Event], None]


def _no_route_cleanup(ifp: Interface, family: int) -> None:
    return None


class DataLink:
    """The data link layer of one engine. Single-threaded; see the module docstring."""

    def __init__(self) -> None:
        self._all: list[Interface] = []  # every interface ever acquired (dlil_ifnet_head)
        self._by_uid: dict[tuple[int, bytes], Interface] = {}
        self._by_name: dict[str, Interface] = {}  # attached only (ifnet_head)
        self._by_index: dict[int, Interface] = {}  # attached only (ifindex2ifnet)
        self._indexes: dict[int, Interface] = {}  # index -> its interface, whatever its state
        self._detaching: deque[Interface] = deque()
        self._subscribers: list[EventCallback] = []
        self._domains: list[AddressDomain] = []
        self.drops: list[int] = [0] * len(link_io.LinkDrop)
        # recycled interfaces whose link-layer memberships wait for the first
        # input or output to be handed to the driver again (if_updatemcasts)
        self.suspended_multicast: set[Interface] = set()
        self.on_proto_freed: Callable[[Interface, int], None] = _no_route_cleanup
        # sysctl net.link.ether.inet.ipv4_ll_arp_aware: fan out link-local ARP
        self.ipv4_ll_arp_aware = True

    # -- registry: acquire / release / lookup -----------------------------

    def acquire(
        self,
        family: IfFamily,
        uniqueid: bytes,
        *,
        name: str,
        unit: int = 0,
        type: IfType = IfType.ETHER,
        flags: IfFlags = IfFlags.NONE,
        eflags: IfExtFlags = IfExtFlags.NONE,
        mtu: int = 1500,
        addrlen: int = 0,
    ) -> Interface:
        """``dlil_if_acquire``: a fresh interface, or the released one with this id.

        A reused interface is the same object with the same index, marked
        ``reused``; its descriptive fields take the values given now. An id
        whose interface is still in use is ``EBUSY``; an empty id never
        conflicts (it only recycles a released interface that had none).
        """
        ifp = self._find_reusable(family, uniqueid, name)
        if ifp is not None:
            ifp.state = next_state(ifp.state, LifeEvent.ACQUIRE, name)
            ifp.in_use = True
            ifp.reused = True
        else:
            ifp = Interface(name, family=family, uniqueid=uniqueid)
            self._all.append(ifp)
            if uniqueid:
                self._by_uid[(int(family), uniqueid)] = ifp
        ifp.name = name
        ifp.unit = unit
        ifp.type = type
        ifp.flags = flags
        ifp.eflags = eflags
        ifp.mtu = mtu
        ifp.addrlen = addrlen
        return ifp

    def _find_reusable(self, family: IfFamily, uniqueid: bytes, name: str) -> Interface | None:
        if uniqueid:
            # in use or not, the table decides (EBUSY unless released)
            return self._by_uid.get((int(family), uniqueid))
        for ifp in self._all:
            if ifp.family == family and not ifp.uniqueid and ifp.state is IfState.RELEASED:
                return ifp
        return None

    def release(self, ifp: Interface) -> None:
        """``dlil_if_release``: give the interface back; its id becomes reusable."""
        ifp.state = next_state(ifp.state, LifeEvent.RELEASE, ifp.name)
        ifp.in_use = False

    def lookup(self, name_or_index: str | int) -> Interface | None:
        """An attached (not detaching) interface by name or index."""
        if isinstance(name_or_index, int):
            return self._by_index.get(name_or_index)
        return self._by_name.get(name_or_index)

    def interfaces(self) -> list[Interface]:
        """The attached interfaces in attach order (``ifnet_head``)."""
        return list(self._by_index.values())

    def all_interfaces(self) -> list[Interface]:
        """Every interface object, whatever its state (``dlil_ifnet_head``)."""
        return list(self._all)

    # -- I/O references ----------------------------------------------------

    def io_ref(self, ifp: Interface) -> bool:
        """``ifnet_is_attached(ifp, 1)``: take an I/O reference if attached and not detaching."""
        if ifp.state is IfState.ATTACHED:
            ifp.ioref += 1
            return True
        return False

    def io_unref(self, ifp: Interface) -> None:
        """``ifnet_decr_iorefcnt``: release an I/O reference.

        The final detach of a detaching interface waits for the count to reach
        zero; it then runs at the next ``run_deferred``.
        """
        if ifp.ioref <= 0 or ifp.state not in (IfState.ATTACHED, IfState.DETACHING):
            raise RouterError(EINVAL, "ioref", ifp.ioref, ifp.name,
                              detail="I/O reference released that was never taken")
        ifp.ioref -= 1

    # -- attach / detach ---------------------------------------------------

    def attach(
        self,
        ifp: Interface,
        lladdr: bytes | None,
        family_module: FamilyModule | None,
        driver: Driver,
    ) -> None:
        """``ifnet_attach``: put the interface on the list and make it usable.

        Refused with ``EEXIST`` if attached, ``EINVAL`` if ``lladdr``'s length
        disagrees with a non-zero ``addrlen`` (zero takes the given length),
        ``ENODEV`` without a family module. An interface attached for the first
        time gets the lowest free index; a recycled one keeps its own. The link
        address becomes the first address entry; counters start from zero. A
        recycled interface keeps its link-layer memberships, suspended until
        its first input or output restores them
        (``router.link.io.restore_suspended_multicast``).
        """
        state = next_state(ifp.state, LifeEvent.ATTACH, ifp.name)
        if lladdr is not None:
            if ifp.addrlen == 0:
                ifp.addrlen = len(lladdr)
            elif len(lladdr) != ifp.addrlen:
                raise RouterError(EINVAL, "lladdr", lladdr.hex(":"), f"attach {ifp.name}",
                                  detail=f"link address length must be {ifp.addrlen}")
        if family_module is None:
            raise RouterError(ENODEV, "family_module", None, f"attach {ifp.name}",
                              detail="no family module")
        if ifp.name in self._by_name:
            raise RouterError(EEXIST, "name", ifp.name, f"attach {ifp.name}")
        if ifp.index == 0:
            ifp.index = self._next_index()
            self._indexes[ifp.index] = ifp
        ifp.lladdr = bytes(lladdr) if lladdr is not None else b""
        ifp.addresses = [LinkAddress(ifp.lladdr, ifp.name, ifp.index)]
        ifp.filters = ()
        ifp.protocols = {}
        ifp.demux_table = {}
        ifp.counters.reset()
        if not ifp.reused:
            ifp.multicast = {}  # only a recycled interface keeps its memberships
        if ifp.multicast:
            self.suspended_multicast.add(ifp)
        else:
            self.suspended_multicast.discard(ifp)
        ifp.family_module = family_module
        ifp.driver = driver
        ifp.state = state
        ifp.generation += 1
        self._by_name[ifp.name] = ifp
        self._by_index[ifp.index] = ifp
        self.post_event(ifp, EventKind.IF_ATTACHED, {})

    def _next_index(self) -> int:
        """``if_next_index``: the lowest index no interface object holds."""
        index = 1
        while index in self._indexes:
            index += 1
        return index

    def detach(self, ifp: Interface) -> None:
        """``ifnet_detach``: start detaching; the final detach is deferred.

        ``EINVAL`` if not attached, ``ENXIO`` if already detaching. The
        interface leaves the lookups, is marked down and ``IF_DETACHING`` is
        posted; ``run_deferred`` finishes it once no I/O reference is left.
        """
        ifp.state = next_state(ifp.state, LifeEvent.DETACH, ifp.name)
        self._unlist(ifp)
        ifp.generation += 1
        self.set_up(ifp, False)
        self.post_event(ifp, EventKind.IF_DETACHING, {})
        self._detaching.append(ifp)

    def _unlist(self, ifp: Interface) -> None:
        """Take ``ifp`` off the lookups (by identity: its name may have changed)."""
        del self._by_index[ifp.index]
        for name, listed in list(self._by_name.items()):
            if listed is ifp:
                del self._by_name[name]

    @property
    def pending_detach(self) -> tuple[Interface, ...]:
        """Interfaces detaching and waiting for their final detach."""
        return tuple(self._detaching)

    def run_deferred(self) -> list[Interface]:
        """Run the final detach of every queued interface with no I/O reference left.

        Returns the interfaces finished now; the others stay queued.
        """
        if not self._detaching:
            return []  # the usual case: the engine asks after every batch
        finished: list[Interface] = []
        waiting: list[Interface] = []
        while self._detaching:
            ifp = self._detaching.popleft()
            if ifp.ioref > 0:
                waiting.append(ifp)
                continue
            self.detach_final(ifp)
            finished.append(ifp)
        self._detaching.extend(waiting)
        return finished

    def detach_final(self, ifp: Interface) -> None:
        """``ifnet_detach_final``: tear a detaching interface down for good.

        In the seed's order: filters detached (each ``detached`` callback
        runs), addresses purged by every domain, protocols unplumbed, the link
        address removed, driver and family module swapped for safe stubs,
        ``IF_DETACHED`` posted, the driver's ``free`` called, state DETACHED.
        ``EBUSY`` while I/O references are outstanding.
        """
        if ifp.state is IfState.DETACHING and ifp.ioref > 0:
            raise RouterError(EBUSY, "ioref", ifp.ioref, ifp.name,
                              detail="I/O references outstanding")
        state = next_state(ifp.state, LifeEvent.FINAL_DETACH, ifp.name)
        if ifp in self._detaching:
            self._detaching.remove(ifp)
        filters, ifp.filters = ifp.filters, ()
        for filt in filters:
            self._finish_filter(ifp, filt)
        for domain in list(self._domains):
            domain.purge_interface(ifp)
        self._unplumb_all(ifp)
        ifp.addresses = []
        driver = ifp.driver
        ifp.driver = DETACHED_DRIVER
        ifp.family_module = DETACHED_FAMILY
        ifp.demux_table = {}
        ifp.generation += 1
        self.post_event(ifp, EventKind.IF_DETACHED, {})
        if driver is not None:
            driver.free(ifp)
        ifp.state = state

    def _unplumb_all(self, ifp: Interface) -> None:
        """``proto_unplumb`` for every attached family (hash order), then detach what is left."""
        for family in [proto.family for proto in protocols_in_hash_order(ifp)]:
            for domain in list(self._domains):
                domain.unplumb(ifp, family)
            if family in ifp.protocols:
                self.detach_protocol(ifp, family)

    # -- flags and link state ----------------------------------------------

    def set_up(self, ifp: Interface, up: bool) -> None:
        """``if_up`` / ``if_down``: change IFF_UP; posts IF_FLAGS_CHANGED if it changed."""
        if bool(ifp.flags & IfFlags.UP) == up:
            return
        ifp.flags = ifp.flags | IfFlags.UP if up else ifp.flags & ~IfFlags.UP
        ifp.generation += 1
        self.post_event(ifp, EventKind.IF_FLAGS_CHANGED, {"flags": int(ifp.flags), "up": up})

    def set_link_state(self, ifp: Interface, state: LinkState) -> None:
        """Record the link state; posts LINK_UP / LINK_DOWN when it changes to one."""
        if ifp.link_state is state:
            return
        ifp.link_state = state
        ifp.generation += 1
        if state is LinkState.UP:
            self.post_event(ifp, EventKind.LINK_UP, {})
        elif state is LinkState.DOWN:
            self.post_event(ifp, EventKind.LINK_DOWN, {})

    # -- domains and subscribers -------------------------------------------

    def add_domain(self, domain: AddressDomain) -> None:
        """Register a network-layer domain for purge/unplumb at final detach."""
        self._domains.append(domain)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Receive every event, attached interface or not; returns an unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # -- protocols ---------------------------------------------------------

    def attach_protocol(self, ifp: Interface, proto: ProtoAttachment) -> None:
        """``ifnet_attach_protocol`` (v1) / ``ifnet_attach_protocol_v2`` (v2).

        ``EINVAL`` for family 0, an unknown version, a missing input callback
        or an attachment that was already used and detached; ``ENXIO`` if the
        interface is not attached; ``EEXIST`` if the family is attached. The
        family module's ``add_proto`` registers (and may refine) the demux
        descriptors; its error aborts the attach. Posts PROTO_ATTACHED with
        the number of protocols now attached.
        """
        subject = f"protocol {proto.family} on {ifp.name}"
        self._check_proto_details(proto, subject)
        if ifp.state is not IfState.ATTACHED:
            raise RouterError(ENXIO, "interface", ifp.name, subject)
        if proto.family in ifp.protocols:
            raise RouterError(EEXIST, "family", proto.family, subject)
        error = ifp.family_module.add_proto(  # type: ignore[union-attr]
            ifp, proto.family, proto.demux)
        if error:
            raise RouterError(error, "demux", proto.demux, subject)
        proto.refcount = 1  # the attach reference
        proto.ifindex = ifp.index
        ifp.protocols[proto.family] = proto
        ifp.generation += 1
        self.post_event(ifp, EventKind.PROTO_ATTACHED,
                        {"family": proto.family, "count": len(ifp.protocols)})

    @staticmethod
    def _check_proto_details(proto: ProtoAttachment, subject: str) -> None:
        if proto.family == 0:
            raise RouterError(EINVAL, "family", 0, subject)
        if proto.version not in (1, 2):
            raise RouterError(EINVAL, "version", proto.version, subject)
        handler = proto.input if proto.version == 1 else proto.input_list
        if handler is None:
            raise RouterError(EINVAL, "input", None, subject,
                              detail=f"a version {proto.version} protocol needs its input")
        if proto.detached:
            raise RouterError(EINVAL, "proto", "detached", subject,
                              detail="a detached attachment cannot be attached again")

    def detach_protocol(self, ifp: Interface, family: int) -> None:
        """``ifnet_detach_protocol``: unhook a protocol; it is freed with its last reference.

        ``EINVAL`` for family 0, ``ENXIO`` if not attached. The family module
        forgets its demux descriptors, the callbacks become ENXIO stubs, and
        the attach reference is dropped (see :meth:`proto_unref`).
        """
        subject = f"protocol {family} on {ifp.name}"
        if family == 0:
            raise RouterError(EINVAL, "family", 0, subject)
        proto = ifp.protocols.pop(family, None)
        if proto is None:
            raise RouterError(ENXIO, "family", family, subject)
        ifp.family_module.del_proto(ifp, family)  # type: ignore[union-attr]
        stub_protocol(proto)
        ifp.generation += 1
        self.proto_unref(ifp, proto)

    def find_protocol(self, ifp: Interface, family: int) -> ProtoAttachment | None:
        """``find_attached_proto`` without the reference (the caller does not keep it)."""
        return ifp.protocols.get(family)

    def proto_unref(self, ifp: Interface, proto: ProtoAttachment) -> None:
        """``if_proto_free``: drop one reference; the last one frees the protocol.

        Freeing runs the protocol's ``detached_cb``, the route clean-up hook
        ``on_proto_freed(ifp, family)`` and posts PROTO_DETACHED with the
        number of protocols still attached.
        """
        proto.refcount -= 1
        if proto.refcount > 0:
            return
        if proto.detached_cb is not None:
            proto.detached_cb(ifp, proto.family)
        self.on_proto_freed(ifp, proto.family)
        self.post_event(ifp, EventKind.PROTO_DETACHED,
                        {"family": proto.family, "count": len(ifp.protocols)})

    # -- interface filters -------------------------------------------------

    def attach_filter(self, ifp: Interface, filt: InterfaceFilter) -> None:
        """``dlil_attach_filter``: append a filter to the interface's chain.

        ``ENXIO`` if the interface is not attached; ``EEXIST`` if this filter
        object is already on a chain. The chain is a tuple replaced as a
        whole, so a pass running over the old one is undisturbed.
        """
        subject = f"filter {filt.name} on {ifp.name}"
        if ifp.state is not IfState.ATTACHED:
            raise RouterError(ENXIO, "interface", ifp.name, subject)
        if self._filter_chain_owner(filt) is not None:
            raise RouterError(EEXIST, "filter", filt.name, subject)
        filt.skip = False
        filt.ifindex = ifp.index
        ifp.filters = (*ifp.filters, filt)
        ifp.generation += 1

    def _filter_chain_owner(self, filt: InterfaceFilter) -> Interface | None:
        """The interface whose chain holds ``filt`` (attached or detaching), if any."""
        ifp = self._indexes.get(filt.ifindex)
        if ifp is not None and any(f is filt for f in ifp.filters):
            return ifp
        return None

    def detach_filter(self, filt: InterfaceFilter) -> None:
        """``dlil_detach_filter``: remove a filter and run its ``detached`` callback once.

        ``EINVAL`` if the filter is on no attached interface's chain (never
        attached, already detached, or its interface is detaching: the final
        detach will take care of it).
        """
        ifp = self._filter_chain_owner(filt)
        if ifp is None or ifp.state is not IfState.ATTACHED or filt.skip:
            raise RouterError(EINVAL, "filter", filt.name, "detach filter",
                              detail="not attached to an attached interface")
        filt.skip = True
        ifp.filters = tuple(f for f in ifp.filters if f is not filt)
        ifp.generation += 1
        self._finish_filter(ifp, filt)

    @staticmethod
    def _finish_filter(ifp: Interface, filt: InterfaceFilter) -> None:
        filt.skip = True
        if filt.detached is not None:
            filt.detached(ifp)

    # -- packet paths ------------------------------------------------------

    def input(self, ifp: Interface, frames: list[bytes]) -> None:
        """``ifnet_input``: frames received on ``ifp``; see ``router.link.io.input_frames``."""
        link_io.input_frames(self, ifp, frames)

    def output(
        self, ifp: Interface, family: int, pkts: list[Packet], dest: Any, raw: bool = False
    ) -> int:
        """``dlil_output``: send packets of ``family``; see ``router.link.io.output_packets``."""
        return link_io.output_packets(self, ifp, family, pkts, dest, raw)

    # -- ioctl -------------------------------------------------------------

    def ioctl(self, ifp: Interface, family: int, cmd: IoctlCmd | int, arg: Any) -> int:
        """``ifnet_ioctl``: filters, then the protocol, then the driver.

        ``EINVAL`` for command 0; ``EOPNOTSUPP`` if not attached. A handler's
        result is taken only while nobody has handled the request
        (``EOPNOTSUPP`` so far) or when it is ``EJUSTRETURN``; the first real
        error, or ``EJUSTRETURN``, ends the chain. ``EJUSTRETURN`` becomes 0.
        As on input and output (and unlike the seed's ioctl pass), a filter
        detached earlier in the same pass is skipped.
        """
        if cmd == 0:
            return EINVAL
        if not self.io_ref(ifp):
            return EOPNOTSUPP
        try:
            retval = ioctl_chain(ifp, family, cast(IoctlCmd, cmd), arg, self.proto_unref)
        finally:
            self.io_unref(ifp)
        return 0 if retval == EJUSTRETURN else retval

    # -- events ------------------------------------------------------------

    def post_event(self, ifp: Interface, kind: EventKind, data: dict[str, Any]) -> Event:
        """``dlil_post_msg``: build an event about ``ifp`` and deliver it."""
        event = Event(kind, ifp.name, ifp.index, data)
        self.deliver_event(ifp, event)
        return event

    def deliver_event(self, ifp: Interface, event: Event) -> None:
        """``dlil_event_internal``: filters, protocols, the driver, then subscribers.

        The interface's own parties hear the event only while it is attached
        (under an I/O reference); subscribers always do. Protocols hear it in
        :func:`protocols_in_hash_order`. Unlike the seed, a filter detached
        earlier in the same pass (``skip`` set, ``detached`` already run) is
        not called: its owner has been told it is gone.
        """
        if self.io_ref(ifp):
            try:
                event_to_interface(ifp, event, self.proto_unref)
            finally:
                self.io_unref(ifp)
        for callback in list(self._subscribers):
            callback(event)

    # -- ARP and multicast (router/link/arp_send.py) --------------------

    def send_arp(
        self,
        ifp: Interface,
        op: int,
        sender_hw: bytes | None,
        sender_ip: int | None,
        target_hw: bytes | None,
        target_ip: int | None,
    ) -> int:
        """``dlil_send_arp``; see ``router.link.arp_send.send_arp``."""
        return arp_send.send_arp(self, ifp, op, sender_hw, sender_ip, target_hw, target_ip)

    def resolve_multi(self, ifp: Interface, family: int, addr: Any) -> tuple[int, bytes]:
        """``dlil_resolve_multi``; see ``router.link.arp_send.resolve_multi``."""
        return arp_send.resolve_multi(self, ifp, family, addr)


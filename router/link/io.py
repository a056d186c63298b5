"""The per-packet paths of the data link layer: input, output and the filter passes.

``DataLink.input`` and ``DataLink.output`` delegate here. These loops run for
every packet that takes the generic path, so they bind what they use to local
names, build one ``Packet`` per frame and nothing else, and never raise for a
bad packet: every drop bumps an interface counter and a ``LinkDrop`` count.

What they need of the data link layer (references, drop counts, the ioctl
chain) is :class:`LinkLayer`, which ``DataLink`` is; this module never
imports ``router.link.datalink``.
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

from router.contracts import IoctlCmd, Packet, PacketFlags, ProtoAttachment
from router.errors import EJUSTRETURN, EMSGSIZE, ENXIO
from router.link.ifnet import IfExtFlags, IfState, Interface

# plain ints: IntFlag operators are far too slow for the per-packet path
_BCAST_OR_MCAST = int(PacketFlags.BCAST | PacketFlags.MCAST)
_VLAN = int(PacketFlags.VLAN_TAGGED)
_SENDLIST = int(IfExtFlags.SENDLIST)
_PROMISC = int(PacketFlags.PROMISC)
_ATTACHED = IfState.ATTACHED
_DETACHING = IfState.DETACHING


class LinkDrop(enum.IntEnum):
    """Why the data link layer dropped a packet (``DataLink.drops`` counts each)."""

    NOT_ATTACHED = 0  # interface not attached, or detaching
    RUNT = 1  # shorter than the link header (also counted in ierrors)
    FILTER = 2  # an interface filter refused it
    PROMISC = 3  # not addressed to us
    NO_PROTO = 4  # no protocol attached for its family (also counted in noproto)
    PROTO_ERROR = 5  # the protocol's input refused it (also counted in iqdrops)
    PRE_OUTPUT = 6  # pre-output refused it, or a packet before it in the same list
    FRAMER = 7  # the family module could not frame it
    DRIVER = 8  # the driver refused it (also counted in oerrors)


class LinkLayer(Protocol):
    """What the packet paths use of the data link layer (``DataLink`` is one).

    ``drops`` is indexed by ``LinkDrop``; ``suspended_multicast`` holds the
    recycled interfaces whose memberships wait for their first input or
    output. The reference calls are ``DataLink``'s, with its errors.
    """

    drops: list[int]
    suspended_multicast: set[Interface]

    def io_ref(self, ifp: Interface) -> bool: ...

    def io_unref(self, ifp: Interface) -> None: ...

    def proto_unref(self, ifp: Interface, proto: ProtoAttachment) -> None: ...

    def ioctl(self, ifp: Interface, family: int, cmd: IoctlCmd | int, arg: Any) -> int: ...


def filters_input(ifp: Interface, pkt: Packet, family: int) -> int:
    """``dlil_interface_filters_input``: run the input filters in order.

    The first non-zero result ends the pass and is returned: ``EJUSTRETURN``
    (the filter took the packet) or an error (drop it). The pass iterates the
    tuple it started with, so a filter detached meanwhile changes nothing
    except that its ``skip`` mark keeps it from being called again.
    """
    for filt in ifp.filters:
        if filt.skip or filt.input is None or (filt.family and filt.family != family):
            continue
        result = filt.input(ifp, family, pkt)
        if result:
            return result
    return 0


def filters_output(ifp: Interface, pkt: Packet, family: int) -> int:
    """``dlil_interface_filters_output``: the output twin of :func:`filters_input`."""
    for filt in ifp.filters:
        if filt.skip or filt.output is None or (filt.family and filt.family != family):
            continue
        result = filt.output(ifp, family, pkt)
        if result:
            return result
    return 0


def restore_suspended_multicast(dl: LinkLayer, ifp: Interface) -> None:
    """``if_mcasts_update``: hand a recycled interface's memberships to its driver again.

    The first input batch or output after the attach sends one
    ``SIOCADDMULTI`` ioctl (family 0, no argument: the driver reprograms its
    filter from ``ifp.multicast``). Whatever the chain answers, the
    memberships count as restored: the seed only logs a failure.
    """
    dl.suspended_multicast.discard(ifp)
    dl.ioctl(ifp, 0, IoctlCmd.SIOCADDMULTI, None)


def input_frames(dl: LinkLayer, ifp: Interface, frames: list[bytes]) -> None:
    """``ifnet_input`` + ``dlil_input_packet_list`` for one batch from one interface.

    Every frame handed in is counted in ``ipackets``/``ibytes`` first, as the
    seed's ``ifnet_input`` adds the driver's receive statistics before the
    input thread looks at the interface's state: a frame that arrives on a
    detaching interface was still received. One I/O reference covers the
    batch; each frame re-checks that the interface is still attached (a
    callback may have detached it), which is what the seed's per-frame
    reference amounts to. Consecutive frames for the same protocol are
    collected into one run and delivered together. Suspended multicast
    memberships are restored after the batch (the seed: after its first
    frame).

    Two deliberate differences, both about counting: a frame shorter than
    its link header (``EMSGSIZE`` from demux) is an input error dropped
    before the filters (the seed's drivers never hand such frames up), and
    a VLAN-tagged frame demux could not classify is counted in ``noproto``
    like any other unclassified frame (the seed drops it one step earlier,
    uncounted). And every interface, loopback included, needs the I/O
    reference: the seed exempts its one ``lo0``, which never detaches.
    """
    drops = dl.drops
    counters = ifp.counters
    counters.ipackets += len(frames)
    counters.ibytes += sum(map(len, frames))
    if not dl.io_ref(ifp):
        drops[LinkDrop.NOT_ATTACHED] += len(frames)
        return
    demux = ifp.family_module.demux  # type: ignore[union-attr]
    index = ifp.index
    run_proto: ProtoAttachment | None = None
    run: list[Packet] = []
    try:
        for frame in frames:
            if ifp.state is not _ATTACHED:
                drops[LinkDrop.NOT_ATTACHED] += 1
                continue
            pkt = Packet(frame, 0, 0, index)
            error, family = demux(ifp, pkt)
            if error:
                if error == EJUSTRETURN:
                    continue
                if error == EMSGSIZE:
                    counters.ierrors += 1
                    drops[LinkDrop.RUNT] += 1
                    continue
                family = 0
            flags = pkt.flags
            if flags & _BCAST_OR_MCAST:
                counters.imcasts += 1
            if not flags & _VLAN and ifp.filters:
                error = filters_input(ifp, pkt, family)
                if error:
                    if error != EJUSTRETURN:
                        counters.iqdrops += 1
                        drops[LinkDrop.FILTER] += 1
                    continue
            if pkt.flags & _PROMISC:
                drops[LinkDrop.PROMISC] += 1
                continue
            if run_proto is None or run_proto.family != family:
                proto = ifp.protocols.get(family) if family else None
                if proto is None:
                    counters.noproto += 1
                    drops[LinkDrop.NO_PROTO] += 1
                    continue
                if run_proto is not None:
                    finished, run_proto = run_proto, None
                    _deliver(dl, ifp, finished, run)
                    run = []
                proto.refcount += 1
                run_proto = proto
            pkt.family = family
            run.append(pkt)
        if run_proto is not None:
            finished, run_proto = run_proto, None
            _deliver(dl, ifp, finished, run)
        if dl.suspended_multicast and ifp in dl.suspended_multicast:
            restore_suspended_multicast(dl, ifp)
    finally:
        try:
            if run_proto is not None:  # a callback raised: drop the run, keep the books
                dl.proto_unref(ifp, run_proto)
        finally:
            dl.io_unref(ifp)


def _deliver(dl: LinkLayer, ifp: Interface, proto: ProtoAttachment, pkts: list[Packet]) -> None:
    """``dlil_ifproto_input``: hand a run to its protocol, then drop the run's reference.

    Version 2 protocols get the whole list in one call, version 1 one packet
    at a time. A result other than 0 or ``EJUSTRETURN`` drops what was handed.
    """
    family = proto.family
    refused = 0
    try:
        if proto.version == 2:
            error = proto.input_list(ifp, family, pkts)  # type: ignore[misc]
            if error and error != EJUSTRETURN:
                refused = len(pkts)
        else:
            for pkt in pkts:
                error = proto.input(ifp, family, pkt)  # type: ignore[misc]
                if error and error != EJUSTRETURN:
                    refused += 1
    finally:
        if refused:
            ifp.counters.iqdrops += refused
            dl.drops[LinkDrop.PROTO_ERROR] += refused
        dl.proto_unref(ifp, proto)


def output_packets(
    dl: LinkLayer, ifp: Interface, family: int, pkts: list[Packet], dest: Any, raw: bool
) -> int:
    """``dlil_output``: pre-output, framer, output filters, then the driver.

    Pre-output runs packet by packet only until one gets through it (the
    seed's ``preout_again``): a packet it holds (``EJUSTRETURN``) is skipped,
    an error drops that packet and the rest of the list and is returned.
    The packet that gets through fixes the link destination and frame type
    for the rest of the list, which is framed without asking pre-output
    again: one call carries packets for one destination. Otherwise returns
    the last step's result the way the seed does (``EJUSTRETURN`` as 0).
    """
    if not dl.io_ref(ifp):
        dl.drops[LinkDrop.NOT_ATTACHED] += len(pkts)
        return ENXIO
    proto: ProtoAttachment | None = None
    try:
        if dl.suspended_multicast and ifp in dl.suspended_multicast:
            restore_suspended_multicast(dl, ifp)
        if not raw:
            proto = ifp.protocols.get(family)
            if proto is None:
                dl.drops[LinkDrop.NO_PROTO] += len(pkts)
                return ENXIO
            proto.refcount += 1
        retval = _output_loop(dl, ifp, family, pkts, dest, proto)
        return 0 if retval == EJUSTRETURN else retval
    finally:
        if proto is not None:
            dl.proto_unref(ifp, proto)
        dl.io_unref(ifp)


def _output_loop(
    dl: LinkLayer, ifp: Interface, family: int, pkts: list[Packet], dest: Any,
    proto: ProtoAttachment | None,
) -> int:
    drops = dl.drops
    framer = ifp.family_module.framer  # type: ignore[union-attr]
    driver_output = ifp.driver.output  # type: ignore[union-attr]
    counters = ifp.counters
    batch: list[Packet] | None = [] if ifp.eflags & _SENDLIST else None
    retval = 0
    resolved = False  # a packet got through pre-output: its destination serves the rest
    lldst = b""
    frame_type = 0
    for position, pkt in enumerate(pkts):
        if proto is not None:
            if not resolved:
                pre_output = proto.pre_output
                if pre_output is not None:
                    retval, lldst, frame_type = pre_output(ifp, family, pkt, dest)
                    if retval:
                        if retval == EJUSTRETURN:
                            continue
                        drops[LinkDrop.PRE_OUTPUT] += len(pkts) - position
                        return retval
                resolved = True
            retval = framer(ifp, pkt, lldst, frame_type)
            if retval:
                if retval != EJUSTRETURN:
                    drops[LinkDrop.FRAMER] += 1
                continue
        if not pkt.flags & _VLAN:
            retval = filters_output(ifp, pkt, family) if ifp.filters else 0
            if retval:
                if retval != EJUSTRETURN:
                    drops[LinkDrop.FILTER] += 1
                continue
        if batch is not None:
            batch.append(pkt)
            continue
        data = pkt.data
        retval = driver_output(ifp, [data])  # type: ignore[list-item]
        if retval and retval != EJUSTRETURN:
            counters.oerrors += 1
            drops[LinkDrop.DRIVER] += 1
        else:
            counters.opackets += 1
            counters.obytes += len(data)
            if pkt.flags & _BCAST_OR_MCAST:
                counters.omcasts += 1
    if batch:
        retval = _transmit_list(dl, ifp, batch)
    return retval


def output_one(dl: LinkLayer, ifp: Interface, family: int, pkt: Packet, dest: Any) -> int:
    """:func:`output_packets` for one packet of an attached protocol (never raw).

    The generic IPv4 path sends one datagram at a time: this is the same
    ``dlil_output`` sequence (I/O and protocol references, pre-output, framer,
    output filters, driver) with the same counters, drops and results, in one
    frame without the list walk. The references are taken and dropped inline
    (:func:`_io_unref`, :func:`_proto_unref`), each with the ``LinkLayer``
    method's exact outcome.
    """
    if ifp.state is not _ATTACHED:  # DataLink.io_ref refuses
        dl.drops[LinkDrop.NOT_ATTACHED] += 1
        return ENXIO
    ifp.ioref += 1
    proto: ProtoAttachment | None = None
    try:
        if dl.suspended_multicast and ifp in dl.suspended_multicast:
            restore_suspended_multicast(dl, ifp)
        proto = ifp.protocols.get(family)
        if proto is None:
            dl.drops[LinkDrop.NO_PROTO] += 1
            return ENXIO
        proto.refcount += 1
        lldst = b""
        frame_type = 0
        pre_output = proto.pre_output
        if pre_output is not None:
            retval, lldst, frame_type = pre_output(ifp, family, pkt, dest)
            if retval:
                if retval != EJUSTRETURN:
                    dl.drops[LinkDrop.PRE_OUTPUT] += 1
                    return retval
                return 0
        retval = ifp.family_module.framer(ifp, pkt, lldst, frame_type)  # type: ignore[union-attr]
        if retval:
            if retval != EJUSTRETURN:
                dl.drops[LinkDrop.FRAMER] += 1
                return retval
            return 0
        if ifp.filters and not pkt.flags & _VLAN:
            retval = filters_output(ifp, pkt, family)
            if retval:
                if retval != EJUSTRETURN:
                    dl.drops[LinkDrop.FILTER] += 1
                    return retval
                return 0
        if ifp.eflags & _SENDLIST:
            retval = _transmit_list(dl, ifp, [pkt])
        else:
            retval = _transmit_one(dl, ifp, pkt)
        return 0 if retval == EJUSTRETURN else retval
    finally:
        if proto is not None:
            _proto_unref(dl, ifp, proto)
        _io_unref(dl, ifp)


def _transmit_one(dl: LinkLayer, ifp: Interface, pkt: Packet) -> int:
    """One packet to the driver (not SENDLIST); count the outcome as :func:`_output_loop` does."""
    data = pkt.data
    retval: int = ifp.driver.output(ifp, [data])  # type: ignore[union-attr,list-item]
    counters = ifp.counters
    if retval and retval != EJUSTRETURN:
        counters.oerrors += 1
        dl.drops[LinkDrop.DRIVER] += 1
    else:
        counters.opackets += 1
        counters.obytes += len(data)
        if pkt.flags & _BCAST_OR_MCAST:
            counters.omcasts += 1
    return retval


def _io_unref(dl: LinkLayer, ifp: Interface) -> None:
    """``DataLink.io_unref`` where it succeeds; the method itself (which raises) otherwise."""
    state = ifp.state
    if ifp.ioref > 0 and (state is _ATTACHED or state is _DETACHING):
        ifp.ioref -= 1
    else:
        dl.io_unref(ifp)


def _proto_unref(dl: LinkLayer, ifp: Interface, proto: ProtoAttachment) -> None:
    """``DataLink.proto_unref``: the method only for the last reference (which frees)."""
    if proto.refcount > 1:
        proto.refcount -= 1
    else:
        dl.proto_unref(ifp, proto)


def _transmit_list(dl: LinkLayer, ifp: Interface, pkts: list[Packet]) -> int:
    """One driver call for a whole list (SENDLIST interfaces); count the outcome."""
    result = ifp.driver.output(ifp, [pkt.data for pkt in pkts])  # type: ignore[union-attr,misc]
    counters = ifp.counters
    if result and result != EJUSTRETURN:
        counters.oerrors += len(pkts)
        dl.drops[LinkDrop.DRIVER] += len(pkts)
        return result
    for pkt in pkts:
        counters.opackets += 1
        counters.obytes += len(pkt.data)
        if pkt.flags & _BCAST_OR_MCAST:
            counters.omcasts += 1
    return result

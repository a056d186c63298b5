"""Virtual point-to-point interfaces ``ngN`` (FreeBSD ``ng_iface.c``).

An ``ngN`` interface is a network interface on one side and a netgraph node
on the other: it has one hook per address family (``inet``, ``inet6``), and
packets are relayed between the interface and the hook of their family, with
no link header. A hook's peer is anything that implements
``router.ng.hooks.HookPeer``: the agent's gRPC packet stream, or another
``ngN`` (an inter-host link; ``router.ng.backtoback`` joins two in memory).
Control messages and ioctls are in ``router/ng/control.py``.

How it fits the data link layer (``router/link/datalink.py``): each ``ngN`` is
acquired and attached through the ``DataLink`` with :class:`PointToPointFamily`
as its family module and :class:`NgDriver` as its driver, so the stack sends
to it with ``DataLink.output`` like to any interface (I/O reference, output
filters and counters included) and configures it with ``DataLink.ioctl``.

The driver only receives bytes, so the framer hands it an ``NgFrame``:
the packet's bytes, unchanged, carrying its address family and the list of
``ngN`` interfaces it has already crossed. That list is the seed's nesting
tags (``if_tunnel_check_nesting``): a packet that would cross the same
``ngN`` twice, or more ``ngN`` than ``max_nesting``, is refused with ``EIO``.
The tags travel with the packet object through hooks and into the engine; if
the engine copies the bytes (forwarding builds a new packet), the manager's
in-flight tags — those of the packet it is relaying or delivering right now,
on this call stack — stand in, which is exactly the recursion the limit is
there to stop. Bytes that leave the process (a gRPC stream) lose their tags,
as mbuf tags do on a real wire.

Input from a hook does not go through ``DataLink.input``: as in the seed
(``netisr_dispatch``), the packet goes straight to the network layer through
the injected ``deliver(ifp, family, packet)`` callable.
"""

from __future__ import annotations

import errno as _errno
import heapq
import struct
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any

from router.contracts import DemuxDesc, IoctlCmd, Packet
from router.errors import (
    EAFNOSUPPORT,
    EINVAL,
    EISCONN,
    EMSGSIZE,
    ENETDOWN,
    ENXIO,
    EPFNOSUPPORT,
    RouterError,
)
from router.events import Event
from router.link.datalink import DataLink
from router.link.ifnet import (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    IfFamily,
    IfFlags,
    IfState,
    IfType,
    Interface,
)
from router.ng import control
from router.ng.control import MessageCookie
from router.ng.hooks import (
    HOOK_INET,
    HOOK_INET6,
    HookPeer,
    NgFrame,
    NgHook,
    family_of_hook,
    hook_of_family,
    own_frame,
)
from router.ng.pcap import NULL_HEADER_LEN, null_header
from router.ng.tap import Taps

# ng_iface.h (the MTU bounds are router.ng.control's)
NG_IFACE_MTU_DEFAULT = 1500
NG_IFACE_IFACE_NAME = "ng"
NG_IFACE_UNIT_MAX = 0xFFFF  # the unit number space of the seed's unrhdr
DEFAULT_MAX_NESTING = 2  # sysctl net.graph.iface.max_nesting

EIO = _errno.EIO  # if_tunnel_check_nesting's answer to a loop or a too deep nest
ENOSPC = _errno.ENOSPC  # every unit number is taken
ENOTCONN = _errno.ENOTCONN  # data on a hook that is no longer connected

NG_FLAGS = IfFlags.SIMPLEX | IfFlags.POINTOPOINT | IfFlags.NOARP | IfFlags.MULTICAST

_UP_AND_RUNNING = IfFlags.UP | IfFlags.RUNNING
_NULL_FAMILY = struct.Struct("<I" if sys.byteorder == "little" else ">I")

Deliver = Callable[[Interface, int, bytes], object]
Clock = Callable[[], float]


class NgNode:
    """The node side of one ``ngN`` (the seed's ``priv``): its unit and its hooks."""

    __slots__ = ("hooks", "ifp", "unit")

    def __init__(self, unit: int, ifp: Interface) -> None:
        self.unit = unit
        self.ifp = ifp
        self.hooks: dict[int, NgHook] = {}  # family -> hook


class PointToPointFamily:
    """The family module of ``ngN`` interfaces: no link header at all.

    The framer wraps the packet in an :class:`NgFrame` so the driver learns
    its family and tags. Demux only serves frames that reach the interface
    through ``DataLink.input`` (hooks bypass it): those carry the DLT_NULL
    4-byte family header.
    """

    __slots__ = ("_manager",)

    def __init__(self, manager: NetgraphIfaces) -> None:
        self._manager = manager

    def demux(self, ifp: Interface, pkt: Packet) -> tuple[int, int]:
        if len(pkt.data) < NULL_HEADER_LEN:
            return EMSGSIZE, 0
        pkt.l2len = NULL_HEADER_LEN
        family: int = _NULL_FAMILY.unpack_from(pkt.data)[0]
        return 0, family

    def framer(self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int) -> int:
        data = pkt.data
        family = pkt.family or ip_version_family(data)
        pkt.data = own_frame(data, family, self._manager.tags_of(data))
        return 0

    def add_proto(self, ifp: Interface, family: int, demux: Sequence[DemuxDesc]) -> int:
        return 0  # the hook names the family; nothing to register

    def del_proto(self, ifp: Interface, family: int) -> int:
        return 0

    def check_multi(self, ifp: Interface, addr: bytes) -> int:
        return 0  # SIOCADDMULTI/SIOCDELMULTI are accepted and ignored


def ip_version_family(data: bytes | bytearray | memoryview) -> int:
    """The family of an IP packet by its version nibble; AF_UNSPEC if neither 4 nor 6.

    Used only when the packet's family was not given: a point-to-point
    interface without a link header carries nothing else to tell by.
    """
    if not data:
        return AF_UNSPEC
    version = data[0] >> 4
    if version == 4:
        return AF_INET
    if version == 6:
        return AF_INET6
    return AF_UNSPEC


class NgDriver:
    """The driver of ``ngN`` interfaces: output to hooks and the seed's ioctls."""

    __slots__ = ("_manager",)

    def __init__(self, manager: NetgraphIfaces) -> None:
        self._manager = manager

    def output(self, ifp: Interface, frames: list[bytes]) -> int:
        result = 0
        for frame in frames:
            error = self._manager.if_output(ifp, frame)
            if error:
                result = error
        return result

    def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
        return self._manager.if_ioctl(ifp, cmd, arg)

    def event(self, ifp: Interface, event: Event) -> None:
        return None

    def free(self, ifp: Interface) -> None:
        return None


class NetgraphIfaces:
    """Creates, runs and shuts down the ``ngN`` interfaces of one engine.

    ``deliver(ifp, family, packet)`` hands a packet received from a hook to
    the network layer; ``input_families`` are the families it has an input
    handler for (the others are ``EAFNOSUPPORT``, as for a kernel without
    INET6). ``taps`` sees the traffic with the DLT_NULL family header;
    ``clock`` returns the engine's current time for tap records (the time
    the caller last passed in, never a wall clock).
    """

    def __init__(
        self,
        datalink: DataLink,
        deliver: Deliver,
        *,
        taps: Taps | None = None,
        clock: Clock = lambda: 0.0,
        input_families: Collection[int] = (AF_INET,),
        max_nesting: int = DEFAULT_MAX_NESTING,
    ) -> None:
        self._dl = datalink
        self._deliver = deliver
        self._taps = taps if taps is not None else Taps()
        self._clock = clock
        self.input_families = frozenset(input_families)
        self.max_nesting = max_nesting
        self.family_module = PointToPointFamily(self)
        self.driver = NgDriver(self)
        self._nodes: dict[Interface, NgNode] = {}
        self._closing: list[NgNode] = []  # shut down, final detach still pending
        self._free_units: list[int] = []  # heap of released unit numbers
        self._next_unit = 0
        self._in_flight: tuple[Interface, ...] = ()

    # -- constructor / shutdown -------------------------------------------

    def create(self) -> Interface:
        """``ng_iface_constructor``: a new ``ngN`` on the first free unit, attached.

        Type PROPVIRTUAL, flags SIMPLEX|POINTOPOINT|NOARP|MULTICAST, MTU 1500,
        no link address and no link header. A unit released by a shutdown is
        reused (and with it the same interface object and index).
        """
        self._reap()
        unit = self._alloc_unit()
        name = f"{NG_IFACE_IFACE_NAME}{unit}"
        try:
            ifp = self._dl.acquire(
                IfFamily.NETGRAPH, name.encode(), name=name, unit=unit,
                type=IfType.PROPVIRTUAL, flags=NG_FLAGS, mtu=NG_IFACE_MTU_DEFAULT, addrlen=0,
            )
        except RouterError:
            self._free_unit(unit)
            raise
        ifp.hdrlen = 0
        node = NgNode(unit, ifp)
        ifp.softc = node
        try:
            self._dl.attach(ifp, None, self.family_module, self.driver)
        except RouterError:
            self._dl.release(ifp)
            self._free_unit(unit)
            raise
        self._nodes[ifp] = node
        return ifp

    def shutdown(self, ifp: Interface) -> None:
        """``ng_iface_shutdown``: cut the hooks, close the taps, detach, free the unit.

        ``ENXIO`` if ``ifp`` is not a live ``ngN`` of this manager. The unit
        becomes free for the next :meth:`create` once the final detach has
        run (at once, unless an I/O reference is still out).
        """
        node = self._node(ifp, "shutdown")
        for hook in list(node.hooks.values()):
            self.disconnect(hook)
        self._taps.close_interface(ifp)
        del self._nodes[ifp]
        self._closing.append(node)
        self._dl.detach(ifp)
        self._dl.run_deferred()
        self._reap()

    def _reap(self) -> None:
        """Release the interfaces whose final detach has run and free their units."""
        still: list[NgNode] = []
        for node in self._closing:
            if node.ifp.state is IfState.DETACHED:
                self._dl.release(node.ifp)
                node.ifp.softc = None
                self._free_unit(node.unit)
            else:
                still.append(node)
        self._closing = still

    def _alloc_unit(self) -> int:
        """``alloc_unr``: the lowest free unit in 0..0xffff."""
        if self._free_units:
            return heapq.heappop(self._free_units)
        if self._next_unit > NG_IFACE_UNIT_MAX:
            raise RouterError(ENOSPC, "unit", self._next_unit, "create ng interface",
                              detail="every ng unit number is in use")
        unit = self._next_unit
        self._next_unit += 1
        return unit

    def _free_unit(self, unit: int) -> None:
        """``free_unr``."""
        heapq.heappush(self._free_units, unit)

    # -- lookups -------------------------------------------------------------

    def interfaces(self) -> list[Interface]:
        """The live ``ngN`` interfaces, in creation order."""
        return list(self._nodes)

    def find(self, name: str) -> Interface | None:
        for ifp in self._nodes:
            if ifp.name == name:
                return ifp
        return None

    def hook(self, ifp: Interface, name: str) -> NgHook | None:
        """The connected hook called ``name`` on ``ifp``, if any."""
        family = family_of_hook(name)
        node = self._nodes.get(ifp)
        if family is None or node is None:
            return None
        return node.hooks.get(family)

    def _node(self, ifp: Interface, what: str) -> NgNode:
        node = self._nodes.get(ifp)
        if node is None:
            raise RouterError(ENXIO, "interface", ifp.name, f"{what} {ifp.name}",
                              detail="not an ng interface of this engine")
        return node

    # -- hooks -------------------------------------------------------------

    def connect(self, ifp: Interface, name: str, peer: HookPeer) -> NgHook:
        """``ng_iface_newhook``: connect ``peer`` to the hook ``name`` of ``ifp``.

        ``EPFNOSUPPORT`` for a name that is no family's hook, ``EISCONN`` if
        that hook is already connected, ``ENXIO`` if ``ifp`` is no live ``ngN``.
        """
        subject = f"hook {name} on {ifp.name}"
        node = self._node(ifp, "connect hook on")
        family = family_of_hook(name)
        if family is None:
            raise RouterError(EPFNOSUPPORT, "hook", name, subject,
                              detail=f"hooks are {HOOK_INET!r} and {HOOK_INET6!r}")
        if family in node.hooks:
            raise RouterError(EISCONN, "hook", name, subject)
        hook = NgHook(self, ifp, name, family, peer)
        node.hooks[family] = hook
        return hook

    def disconnect(self, hook: NgHook) -> None:
        """``ng_iface_disconnect``: cut a hook; the interface stays (no shutdown).

        ``EINVAL`` for a hook that is not connected to one of our interfaces.
        The peer is told once through ``disconnected``.
        """
        node = self._nodes.get(hook.ifp)
        if node is None or node.hooks.get(hook.family) is not hook:
            raise RouterError(EINVAL, "hook", hook.name, f"disconnect {hook!r}",
                              detail="not connected")
        del node.hooks[hook.family]
        peer, hook.peer = hook.peer, None
        if peer is not None:
            peer.disconnected()

    # -- nesting tags --------------------------------------------------------

    def tags_of(self, data: bytes | bytearray | memoryview) -> tuple[Interface, ...]:
        """The ``ngN`` interfaces ``data`` has crossed: its own tags, else the in-flight ones."""
        if isinstance(data, NgFrame):
            return data.crossed
        return self._in_flight

    def check_nesting(self, ifp: Interface, crossed: tuple[Interface, ...]) -> int:
        """``if_tunnel_check_nesting``: ``EIO`` for a loop or a nest deeper than the limit.

        A packet that already went out of ``ifp`` is a loop; otherwise the
        crossing it is about to make counts with the earlier ones against
        ``max_nesting``.
        """
        if any(seen is ifp for seen in crossed):
            return EIO
        if len(crossed) + 1 > self.max_nesting:
            return EIO
        return 0

    # -- output ------------------------------------------------------------

    def output(self, ifp: Interface, family: int,
               packet: bytes | bytearray | memoryview) -> int:
        """Send one network-layer packet of ``family`` out of ``ifp``.

        Goes through ``DataLink.output`` as a raw packet (no protocol
        pre-output, no framer): I/O reference, output filters, the driver
        and the output counters, as any interface output.
        """
        frame = NgFrame(packet, family, self.tags_of(packet))
        return self._dl.output(ifp, family, [Packet(frame, family=family)], None, raw=True)

    def if_output(self, ifp: Interface, frame: bytes) -> int:
        """``ng_iface_output``: the driver's output of one frame.

        ``ENETDOWN`` unless UP and RUNNING; ``EIO`` from the nesting check;
        then the tap sees the packet with its family header and it goes to
        the hook of its family. A frame that is not an :class:`NgFrame` (a
        raw write) starts with the DLT_NULL 4-byte family header, like a
        BPF write on the seed's interface (``AF_UNSPEC`` destination).
        """
        if ifp.flags & _UP_AND_RUNNING != _UP_AND_RUNNING:
            return ENETDOWN
        crossed = self.tags_of(frame)
        error = self.check_nesting(ifp, crossed)
        if error:
            return error
        if isinstance(frame, NgFrame):
            packet = frame
        elif len(frame) < NULL_HEADER_LEN:
            return EINVAL
        else:
            family: int = _NULL_FAMILY.unpack_from(frame)[0]
            packet = NgFrame(memoryview(frame)[NULL_HEADER_LEN:], family)
        packet.crossed = (*crossed, ifp)  # the tag travels on, as the seed's m_tag does
        self._bpftap(ifp, packet.family, packet, output=True)
        return self._send(ifp, packet.family, packet)

    def _send(self, ifp: Interface, family: int, packet: NgFrame) -> int:
        """``ng_iface_send``: relay to the hook of ``family``.

        ``EAFNOSUPPORT`` for a family with no hook name, ``ENETDOWN`` when
        that hook is not connected; otherwise the peer's answer. The data
        link layer counts the packet as sent when the answer is 0.
        """
        if hook_of_family(family) is None:
            return EAFNOSUPPORT
        node = self._nodes.get(ifp)
        hook = node.hooks.get(family) if node is not None else None
        peer = hook.peer if hook is not None else None
        if peer is None:
            return ENETDOWN
        outer, self._in_flight = self._in_flight, packet.crossed
        try:
            return peer.receive(family, packet)
        finally:
            self._in_flight = outer

    def _bpftap(self, ifp: Interface, family: int, packet: bytes, *, output: bool) -> None:
        """``ng_iface_bpftap``: show the packet to the taps behind a 4-byte family header."""
        taps = self._taps
        if not taps.is_tapped(ifp):
            return
        frame = null_header(family) + packet
        if output:
            taps.tap_output(ifp, frame, self._clock())
        else:
            taps.tap_input(ifp, frame, self._clock())

    # -- input -------------------------------------------------------------

    def receive(self, hook: NgHook, packet: bytes | bytearray | memoryview) -> int:
        """``ng_iface_rcvdata``: a packet from a hook into the network layer.

        ``ENOTCONN`` for a hook that was cut, ``ENETDOWN`` unless the
        interface is UP; then it is counted, tapped and handed to
        ``deliver`` — ``EAFNOSUPPORT`` if no input handler exists for the
        hook's family (after counting and tapping, as in the seed).
        """
        ifp = hook.ifp
        node = self._nodes.get(ifp)
        if node is None or node.hooks.get(hook.family) is not hook:
            return ENOTCONN
        if not ifp.flags & IfFlags.UP:
            return ENETDOWN
        counters = ifp.counters
        counters.ipackets += 1
        counters.ibytes += len(packet)
        family = hook.family
        frame = own_frame(packet, family, self.tags_of(packet))
        self._bpftap(ifp, family, frame, output=False)
        if family not in self.input_families:
            return EAFNOSUPPORT
        outer, self._in_flight = self._in_flight, frame.crossed
        try:
            self._deliver(ifp, family, frame)
        finally:
            self._in_flight = outer
        return 0

    # -- ioctl and control messages (router/ng/control.py) -------------------

    def if_ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
        """``ng_iface_ioctl``, reached through ``DataLink.ioctl``'s chain; see
        ``router.ng.control.iface_ioctl``."""
        return control.iface_ioctl(self._dl, ifp, cmd, arg)

    def set_up(self, ifp: Interface, up: bool, family: int = 0) -> int:
        """``ifconfig ngN up|down``: IFF_UP changes first, then SIOCSIFFLAGS reaches the driver.

        The generic part of the seed's ``ifhwioctl``, which sets IFF_UP
        before the driver's ioctl sees the request.
        """
        self._node(ifp, "set flags on")
        self._dl.set_up(ifp, up)
        flags = ifp.flags | IfFlags.UP if up else ifp.flags & ~IfFlags.UP
        return self._dl.ioctl(ifp, family, IoctlCmd.SIOCSIFFLAGS, int(flags))

    def message(self, ifp: Interface, cookie: MessageCookie | str, cmd: int) -> str | int | None:
        """``ng_iface_rcvmsg`` to the node of ``ifp`` (``ENXIO`` if it is none of ours);
        see ``router.ng.control.node_message``."""
        self._node(ifp, "message to")
        return control.node_message(self._dl, ifp, cookie, cmd)

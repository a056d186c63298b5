"""The seams between the engine's layers, written down in one place.

Each class here is a ``typing.Protocol``: what the caller may assume, who owns
a packet after a call, and what a callee may mutate. Registration is always
explicit — the engine is built with the modules it gets — never an import side
effect or a global registry.

Ownership rule for packets: a packet handed to a callee belongs to the callee
once the call returns 0 or ``EJUSTRETURN`` (it was delivered, held or taken).
On any other error the caller counts and drops it. Nothing here is thread
safe: the engine is single-threaded, and the agent serialises calls into it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from router.events import Event

if TYPE_CHECKING:
    # The one type-only reference back: an Interface holds its Driver and
    # FamilyModule, whose calls take the Interface. router.link.ifnet imports
    # this module at run time, never the other way round.
    from router.link.ifnet import Interface


class IoctlCmd(enum.IntEnum):
    """The ioctl requests the engine understands (values are vrc's own).

    The vocabulary of every ioctl seam below (``Driver.ioctl``,
    ``ProtoAttachment.ioctl``, ``InterfaceFilter.ioctl``).
    """

    SIOCSIFADDR = 1
    SIOCGIFADDR = 2
    SIOCSIFFLAGS = 3
    SIOCGIFFLAGS = 4
    SIOCSIFMTU = 5
    SIOCGIFMTU = 6
    SIOCADDMULTI = 7
    SIOCDELMULTI = 8
    SIOCSIFPHYS = 9
    SIOCAIFADDR = 10
    SIOCDIFADDR = 11
    SIOCGIFBRDADDR = 12
    SIOCGIFDSTADDR = 13
    SIOCGIFNETMASK = 14
    SIOCSIFBRDADDR = 15
    SIOCSIFDSTADDR = 16
    SIOCSIFNETMASK = 17
    SIOCSIFLLADDR = 18


class PacketFlags(enum.IntFlag):
    """Per-packet marks set by the family module's demux or by the stack."""

    NONE = 0
    BCAST = 0x1  # link-level broadcast
    MCAST = 0x2  # link-level multicast
    PROMISC = 0x4  # not addressed to us; seen only because the NIC is promiscuous
    VLAN_TAGGED = 0x8  # 802.1Q tagged: interface filters skip it
    LOOP = 0x10  # a copy looped back to ourselves


class Packet:
    """A packet on the generic path (the ``mbuf`` equivalent).

    ``data`` is the whole frame on input (``l2len`` bytes of link header, then
    the network-layer packet) and the network-layer packet on output until the
    framer prepends the link header. The fast path in front of the generic
    path works on raw ``bytes`` and never builds one of these.

    ``flags`` holds ``PacketFlags`` bits as a plain ``int``: ``IntFlag``
    operators cost about a microsecond each, several times per packet, so
    the per-packet code tests and sets bits on ints (``pkt.flags &
    PacketFlags.BCAST`` still reads fine, only slower).
    """

    __slots__ = ("data", "family", "flags", "l2len", "rcvif", "vlan")

    def __init__(
        self,
        data: bytes | bytearray,
        l2len: int = 0,
        flags: int = 0,
        rcvif: int = 0,
        family: int = 0,
    ) -> None:
        self.data = data
        self.l2len = l2len
        self.flags = int(flags)
        self.rcvif = rcvif
        self.family = family
        self.vlan = 0

    @property
    def payload(self) -> memoryview:
        """The network-layer part (after the link header)."""
        return memoryview(self.data)[self.l2len :]

    def __len__(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class DemuxDesc:
    """One demux descriptor: which frames belong to a protocol.

    For Ethernet, ``kind`` is ``"ethertype"`` and ``value`` the 16-bit type.
    The family module may refine the list when a protocol attaches.
    """

    kind: str
    value: int


class FamilyModule(Protocol):
    """Link-layer family module (Ethernet, loopback, netgraph point-to-point).

    Called by the data link layer only, with the interface attached. Without
    one, an interface cannot attach (``ENODEV``).
    """

    def demux(self, ifp: Interface, pkt: Packet) -> tuple[int, int]:
        """Classify an input frame: return ``(error, protocol family)``.

        Sets ``pkt.l2len`` and the BCAST/MCAST/PROMISC/VLAN flags. ``error`` is
        0 (family found), ``ENOENT`` (no protocol claims it: family 0),
        ``EJUSTRETURN`` (consumed: the caller forgets the packet) or
        ``EMSGSIZE`` (too short for a link header: the caller counts an input
        error and drops it). Any other error is treated like ``ENOENT``.
        """
        ...

    def framer(
        self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int
    ) -> int:
        """Prepend the link header to ``pkt.data``; 0, ``EJUSTRETURN`` (consumed) or an error."""
        ...

    def add_proto(self, ifp: Interface, family: int, demux: Sequence[DemuxDesc]) -> int:
        """Register a protocol's demux descriptors (may refine them); 0 or an errno."""
        ...

    def del_proto(self, ifp: Interface, family: int) -> int:
        """Forget a protocol's demux descriptors; 0 or an errno."""
        ...

    def check_multi(self, ifp: Interface, addr: bytes) -> int:
        """Validate a multicast address; 0, ``EADDRNOTAVAIL``, ``EAFNOSUPPORT`` or ``EOPNOTSUPP``.

        ``addr`` is a link-layer address (e.g. 6 bytes for Ethernet) or, when
        no protocol resolved one, the protocol address in network byte order
        (4 bytes for an IPv4 group).
        """
        ...


class Driver(Protocol):
    """The bottom of an interface: where framed packets leave the engine.

    ``output`` receives one frame (or, for ``SENDLIST`` interfaces, a list in
    one call) and owns it from then on. ``ioctl`` returns 0, ``EOPNOTSUPP`` or
    another errno. ``event`` sees every event about the interface.
    """

    def output(self, ifp: Interface, frames: list[bytes]) -> int: ...

    def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int: ...

    def event(self, ifp: Interface, event: Event) -> None: ...

    def free(self, ifp: Interface) -> None: ...


@dataclass(slots=True, eq=False)
class ProtoAttachment:
    """A protocol attached to one interface (``struct if_proto``).

    ``version`` 1 protocols get ``input(ifp, family, pkt)`` per packet;
    version 2 get ``input_list(ifp, family, pkts)`` once per run of packets.
    ``pre_output(ifp, family, pkt, dest)`` returns ``(error, lldst,
    frame_type)``; ``EJUSTRETURN`` means it is holding the packet (e.g. ARP
    resolution pending) and output goes on with the next one. After detach the
    callbacks are swapped for stubs returning ``ENXIO``; ``refcount`` reaching
    zero runs ``detached`` and removes the routes of (interface, family).
    """

    family: int
    version: int
    input: Callable[[Interface, int, Packet], int] | None = None
    input_list: Callable[[Interface, int, list[Packet]], int] | None = None
    pre_output: Callable[[Interface, int, Packet, Any], tuple[int, bytes, int]] | None = None
    event: Callable[[Interface, int, Event], None] | None = None
    ioctl: Callable[[Interface, int, IoctlCmd, Any], int] | None = None
    resolve_multi: Callable[[Interface, Any], tuple[int, bytes]] | None = None
    send_arp: Callable[..., int] | None = None
    detached_cb: Callable[[Interface, int], None] | None = None
    demux: tuple[DemuxDesc, ...] = ()
    refcount: int = 0
    detached: bool = False
    ifindex: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class InterfaceFilter:
    """An interface filter (``struct ifnet_filter``).

    ``family`` 0 means every family. ``input(ifp, family, pkt)`` and
    ``output(ifp, family, pkt)`` return 0 (pass on), ``EJUSTRETURN`` (the
    filter took the packet) or another errno (drop). ``ioctl(ifp, family,
    cmd, arg)`` follows the ioctl chain's precedence rules. ``detached(ifp)``
    runs once when the filter goes, whether by request or interface detach.
    ``skip`` is set the moment detach starts so no new pass calls it.
    """

    name: str
    family: int = 0
    input: Callable[[Interface, int, Packet], int] | None = None
    output: Callable[[Interface, int, Packet], int] | None = None
    event: Callable[[Interface, int, Event], None] | None = None
    ioctl: Callable[[Interface, int, IoctlCmd, Any], int] | None = None
    detached: Callable[[Interface], None] | None = None
    cookie: Any = None
    skip: bool = False
    ifindex: int = 0


class EventSubscriber(Protocol):
    """Receives every event after filters, protocols and the interface saw it."""

    def __call__(self, event: Event) -> None: ...


class AddressDomain(Protocol):
    """A network-layer domain with per-interface state (IPv4: ``router/inet/domain.py``).

    The data link layer calls ``purge_interface`` during the final detach
    (``if_purgeaddrs``), after filters are gone and before protocols are
    unplumbed, and ``unplumb`` for each attached protocol family it owns.
    """

    def purge_interface(self, ifp: Interface) -> None: ...

    def unplumb(self, ifp: Interface, family: int) -> None: ...

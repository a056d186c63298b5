"""Interface objects: names, flags, counters and the per-interface state.

The data link layer (``router/link/datalink.py``) owns the lifecycle (acquire, attach,
detach, final detach, recycle); this module only describes what an interface
*is*. An ``Interface`` is created per NIC, per ``ngN`` and per loopback and
lives for the engine's life (released ones are recycled by unique id).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from router.contracts import Driver, FamilyModule, InterfaceFilter, ProtoAttachment

# Address families, BSD numbering (the seeds are BSD; DLT_NULL headers use it).
AF_UNSPEC = 0
AF_INET = 2
AF_LINK = 18
AF_INET6 = 28


class IfFlags(enum.IntFlag):
    """Interface flags (``ifconfig`` flags)."""

    NONE = 0
    UP = 0x1
    BROADCAST = 0x2
    DEBUG = 0x4
    LOOPBACK = 0x8
    POINTOPOINT = 0x10
    RUNNING = 0x40  # the driver is running (BSD keeps it in if_drv_flags)
    NOARP = 0x80
    PROMISC = 0x100
    ALLMULTI = 0x200
    OACTIVE = 0x400
    SIMPLEX = 0x800
    MULTICAST = 0x8000
    STATICARP = 0x80000


class IfExtFlags(enum.IntFlag):
    """Extended flags (XNU ``if_eflags``)."""

    NONE = 0
    ARPLL = 0x20  # ARP for IPv4 link-local (169.254/16) targets goes out here
    SENDLIST = 0x10000000  # the driver takes a list of frames in one call


class IfType(enum.IntEnum):
    """IANA ifType values used by the engine."""

    ETHER = 6
    LOOP = 24
    PROPVIRTUAL = 53


class IfFamily(enum.IntEnum):
    """Interface family: which family module frames this interface."""

    ETHERNET = 2
    LOOPBACK = 1
    NETGRAPH = 100


class LinkState(enum.IntEnum):
    UNKNOWN = 0
    DOWN = 1
    UP = 2


class IfState(enum.Enum):
    """Lifecycle of an interface; transitions live in ``router/link/datalink.py``."""

    EMBRYONIC = "embryonic"  # acquired, not yet attached
    ATTACHED = "attached"
    DETACHING = "detaching"  # invisible to lookups, waiting for I/O references
    DETACHED = "detached"  # final detach done; may be released and recycled
    RELEASED = "released"  # given back (dlil_if_release): reusable by its unique id


_UP = int(IfFlags.UP)  # plain int: IntFlag operators are slow on the packet path


@dataclass(slots=True)
class IfCounters:
    """Per-interface counters, the ``if_data`` statistics."""

    ipackets: int = 0
    ibytes: int = 0
    ierrors: int = 0
    iqdrops: int = 0
    imcasts: int = 0
    opackets: int = 0
    obytes: int = 0
    oerrors: int = 0
    oqdrops: int = 0
    omcasts: int = 0
    noproto: int = 0
    collisions: int = 0

    def reset(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True, eq=False)
class LinkAddress:
    """The link-level address entry: always the first entry of ``Interface.addresses``."""

    lladdr: bytes
    ifname: str
    ifindex: int
    family: int = AF_LINK


class Interface:
    """One network interface (``struct ifnet``).

    ``addresses`` holds the link address first, then the primary address of
    each family that has one (IPv4: the interface's first ``InAddr``, kept by
    ``router/inet/index.py``); it is not a list of every IPv4 alias, which
    ``InetDomain.addresses``/``address``/``address_on`` answer. ``filters``
    is a tuple replaced as a whole on change, so a pass that is iterating it
    is never disturbed (copy-on-write instead of the seed's busy monitor).
    ``driver`` and ``family_module`` are replaced by safe stubs when the
    interface is finally detached.
    """

    __slots__ = (
        "_eflags",
        "_flags",
        "addresses",
        "addrlen",
        "counters",
        "demux_table",
        "driver",
        "family",
        "family_module",
        "filters",
        "generation",
        "hdrlen",
        "in_use",
        "index",
        "inet",
        "ioref",
        "link_state",
        "lladdr",
        "mtu",
        "multicast",
        "name",
        "offload",
        "protocols",
        "reused",
        "softc",
        "state",
        "type",
        "uniqueid",
        "unit",
    )

    def __init__(
        self,
        name: str,
        *,
        family: IfFamily = IfFamily.ETHERNET,
        type: IfType = IfType.ETHER,
        unit: int = 0,
        flags: IfFlags = IfFlags.NONE,
        eflags: IfExtFlags = IfExtFlags.NONE,
        mtu: int = 1500,
        addrlen: int = 0,
        hdrlen: int = 0,
        uniqueid: bytes = b"",
    ) -> None:
        self.name = name
        self.unit = unit
        self.family = family
        self.type = type
        self.index = 0
        self._flags = int(flags)
        self._eflags = int(eflags)
        self.mtu = mtu
        self.addrlen = addrlen
        self.hdrlen = hdrlen
        self.lladdr = b""
        self.link_state = LinkState.UNKNOWN
        self.uniqueid = uniqueid
        self.in_use = True
        self.reused = False
        self.state = IfState.EMBRYONIC
        self.ioref = 0
        self.counters = IfCounters()
        self.addresses: list[Any] = []
        self.filters: tuple[InterfaceFilter, ...] = ()
        self.protocols: dict[int, ProtoAttachment] = {}
        self.driver: Driver | None = None
        self.family_module: FamilyModule | None = None
        self.softc: Any = None  # the driver's private state (e.g. the ngN node)
        self.inet: Any = None  # IPv4 per-interface data (router/inet/domain.py, ARP table)
        self.multicast: dict[bytes, int] = {}  # link-layer multicast memberships
        self.generation = 0  # bumped on any change the fast path depends on
        # The driver takes frames with offload work left (router/offload.py): it
        # hands the description on to a kernel that finishes them. Without it
        # the engine checksums and segments such frames itself.
        self.offload = False
        # The family module's per-interface demux table (Ethernet: ethertype
        # -> protocol family), filled by its add_proto and emptied at attach.
        self.demux_table: dict[int, int] = {}

    # Flags are stored as plain ints: ``IntFlag`` operators run in Python and
    # cost about a microsecond each, which the per-packet path cannot afford.
    # Per-packet tests must use a plain-int constant too (``int(IfFlags.UP)``):
    # ``int & IntFlag`` still dispatches to ``IntFlag.__rand__``.
    @property
    def flags(self) -> int:
        return self._flags

    @flags.setter
    def flags(self, value: int) -> None:
        self._flags = int(value)

    @property
    def eflags(self) -> int:
        return self._eflags

    @eflags.setter
    def eflags(self, value: int) -> None:
        self._eflags = int(value)

    @property
    def is_up(self) -> bool:
        return bool(self._flags & _UP)

    @property
    def attached(self) -> bool:
        """Attached and not detaching: the only state that accepts I/O."""
        return self.state is IfState.ATTACHED

    def __repr__(self) -> str:
        return f"<Interface {self.name} index={self.index} {self.state.value}>"

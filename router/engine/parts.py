"""Small pieces the Engine facade plugs into the layers: drivers, a hook outlet, a domain.

* :class:`QueueDriver` — the driver of every Ethernet interface: frames go
  to the engine's transmit queue (and to the interface's taps), nothing else.
* :class:`HookOutlet` — the peer of an ``ngN`` hook connected through the
  API: packets the interface sends to the hook wait for
  ``Engine.drain_hook_output``.
* :class:`ArpDomain` — frees an interface's ARP table at its final detach,
  after address control purged its addresses (``in_domifdetach``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from router.arp.protocol import Arp
from router.contracts import IoctlCmd
from router.errors import EINVAL, EOPNOTSUPP
from router.events import Event
from router.link.ifnet import IfFamily, Interface
from router.ng.control import NG_IFACE_MTU_MAX, NG_IFACE_MTU_MIN
from router.ng.tap import Taps
from router.offload import OffloadFrame, Outgoing

#: Ethernet MTU bounds: RFC 791's 68 up to a 9216-byte jumbo frame.
ETHER_MTU_MIN = 68
ETHER_MTU_MAX = 9216


def mtu_bounds(ifp: Interface) -> str:
    """What an MTU refused with EINVAL had to be, by the interface's driver."""
    if ifp.family is IfFamily.ETHERNET:
        return f"not within {ETHER_MTU_MIN}..{ETHER_MTU_MAX}"
    if ifp.family is IfFamily.NETGRAPH:
        return f"not within {NG_IFACE_MTU_MIN}..{NG_IFACE_MTU_MAX}"
    return ""


def _as_frame(frame: bytes | bytearray | memoryview) -> bytes:
    """Immutable bytes for the queue; a frame with offload work keeps its description."""
    return frame if type(frame) is bytes or type(frame) is OffloadFrame else bytes(frame)


class QueueDriver:
    """``Driver`` for Ethernet interfaces: append to the transmit queue.

    ``clock()`` gives the engine's current time for tap records. ioctl:
    SIOCSIFMTU within 68..9216 (``EINVAL`` outside), SIOCSIFFLAGS and the
    multicast list are accepted, anything else ``EOPNOTSUPP``.
    """

    __slots__ = ("_clock", "_queue", "_taps")

    def __init__(self, queue: list[tuple[int, Outgoing]], taps: Taps,
                 clock: Callable[[], float]) -> None:
        self._queue = queue
        self._taps = taps
        self._clock = clock

    def output(self, ifp: Interface, frames: list[bytes]) -> int:
        index = ifp.index
        if self._taps.is_tapped(ifp):
            now = self._clock()
            for frame in frames:
                self._taps.tap_output(ifp, frame, now)
        if len(frames) == 1:  # the generic path's usual call: no list comprehension
            self._queue.append((index, _as_frame(frames[0])))
        else:
            self._queue.extend([(index, _as_frame(frame)) for frame in frames])
        return 0

    def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
        if cmd == IoctlCmd.SIOCSIFMTU:
            if not isinstance(arg, int) or not ETHER_MTU_MIN <= arg <= ETHER_MTU_MAX:
                return EINVAL
            if arg != ifp.mtu:
                ifp.mtu = arg
                ifp.generation += 1
            return 0
        if cmd in (IoctlCmd.SIOCSIFFLAGS, IoctlCmd.SIOCADDMULTI, IoctlCmd.SIOCDELMULTI,
                   IoctlCmd.SIOCSIFADDR):
            return 0
        return EOPNOTSUPP

    def event(self, ifp: Interface, event: Event) -> None:
        return None

    def free(self, ifp: Interface) -> None:
        return None


class HookOutlet:
    """``HookPeer`` for a hook the API connected: queues what the interface sends."""

    __slots__ = ("_queue", "connected", "handle")

    def __init__(self, handle: int, queue: list[tuple[int, bytes]]) -> None:
        self.handle = handle
        self._queue = queue
        self.connected = True

    def receive(self, family: int, packet: bytes) -> int:
        self._queue.append((self.handle, bytes(packet)))
        return 0

    def disconnected(self) -> None:
        self.connected = False


class ArpDomain:
    """``AddressDomain`` that drops the ARP table of an interface at its final detach."""

    __slots__ = ("_arp",)

    def __init__(self, arp: Arp) -> None:
        self._arp = arp

    def purge_interface(self, ifp: Interface) -> None:
        table = self._arp.table(ifp)
        if table is not None and table.ifp is ifp:
            self._arp.detach_interface(ifp)

    def unplumb(self, ifp: Interface, family: int) -> None:
        return None

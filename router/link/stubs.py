"""Safe stand-ins for callbacks whose owner has gone (dlil.c ``ifp_if_*``, ``ifproto_media_*``).

After the final detach an interface keeps a driver and a family module that
can be called without harm: output drops, demux and framer consume, ioctl and
check_multi say EOPNOTSUPP, add_proto/del_proto say EINVAL. A detached protocol
attachment that is still referenced (an input list in flight) gets callbacks
that answer ENXIO. Stateless, so one instance of each serves everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.contracts import DemuxDesc, IoctlCmd, Packet, ProtoAttachment
from router.errors import EINVAL, EJUSTRETURN, ENXIO, EOPNOTSUPP
from router.events import Event
from router.link.ifnet import Interface


class DetachedDriver:
    """``ifp_if_output`` and friends: the driver after the final detach."""

    __slots__ = ()

    def output(self, ifp: Interface, frames: list[bytes]) -> int:
        return 0  # dropped, and nobody needs to hear about it

    def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
        return EOPNOTSUPP

    def event(self, ifp: Interface, event: Event) -> None:
        return None

    def free(self, ifp: Interface) -> None:
        return None


class DetachedFamily:
    """``ifp_if_demux`` and friends: the family module after the final detach."""

    __slots__ = ()

    def demux(self, ifp: Interface, pkt: Packet) -> tuple[int, int]:
        return EJUSTRETURN, 0

    def framer(self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int) -> int:
        return EJUSTRETURN

    def add_proto(self, ifp: Interface, family: int, demux: Sequence[DemuxDesc]) -> int:
        return EINVAL

    def del_proto(self, ifp: Interface, family: int) -> int:
        return EINVAL

    def check_multi(self, ifp: Interface, addr: bytes) -> int:
        return EOPNOTSUPP


DETACHED_DRIVER = DetachedDriver()
DETACHED_FAMILY = DetachedFamily()


def _input(ifp: Interface, family: int, pkt: Packet) -> int:
    return ENXIO


def _input_list(ifp: Interface, family: int, pkts: list[Packet]) -> int:
    return ENXIO


def _pre_output(ifp: Interface, family: int, pkt: Packet, dest: Any) -> tuple[int, bytes, int]:
    return ENXIO, b"", 0


def _event(ifp: Interface, family: int, event: Event) -> None:
    return None


def _ioctl(ifp: Interface, family: int, cmd: IoctlCmd, arg: Any) -> int:
    return ENXIO


def _resolve_multi(ifp: Interface, addr: Any) -> tuple[int, bytes]:
    return ENXIO, b""


def _send_arp(*args: Any) -> int:
    return ENXIO


def stub_protocol(proto: ProtoAttachment) -> None:
    """Swap a detached protocol's callbacks for ENXIO stubs (``ifnet_detach_protocol``).

    ``detached_cb`` stays: it runs when the last reference goes.
    """
    proto.input = _input
    proto.input_list = _input_list
    proto.pre_output = _pre_output
    proto.event = _event
    proto.ioctl = _ioctl
    proto.resolve_multi = _resolve_multi
    proto.send_arp = _send_arp
    proto.detached = True

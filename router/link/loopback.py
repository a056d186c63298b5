"""The loopback family module and driver (``lo0``): what goes out comes back in.

Frames carry the 4-byte DLT_NULL header (the protocol family in host byte
order), so a pcap of ``lo0`` opens in Wireshark as is. The driver does not
call back into the data link layer from inside ``output`` (the seed hands
loopback packets to its input thread for the same reason): it queues them,
and the engine feeds ``drain()`` to ``DataLink.input`` after the batch.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from typing import Any

from router.contracts import DemuxDesc, IoctlCmd, Packet, PacketFlags
from router.errors import EAFNOSUPPORT, EMSGSIZE, ENOBUFS, ENOENT, EOPNOTSUPP
from router.events import Event
from router.link.ifnet import Interface

NULL_HEADER_LEN = 4
_LOOP = int(PacketFlags.LOOP)
_FAMILY = struct.Struct("<I" if sys.byteorder == "little" else ">I")


class LoopbackFamily:
    """``FamilyModule`` for loopback interfaces: demux and frame by the family header."""

    __slots__ = ()

    def demux(self, ifp: Interface, pkt: Packet) -> tuple[int, int]:
        """The family is in the header; ``ENOENT`` if no protocol of it is attached."""
        data = pkt.data
        if len(data) < NULL_HEADER_LEN:
            return EMSGSIZE, 0
        pkt.l2len = NULL_HEADER_LEN
        pkt.flags |= _LOOP
        family: int = _FAMILY.unpack_from(data)[0]
        if family not in ifp.protocols:
            return ENOENT, 0
        return 0, family

    def framer(self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int) -> int:
        """Prepend the family header; ``frame_type`` is the family (``pkt.family`` if 0)."""
        family = frame_type or pkt.family
        if family <= 0:
            return EAFNOSUPPORT
        pkt.data = _FAMILY.pack(family) + bytes(pkt.data)
        pkt.l2len = NULL_HEADER_LEN
        return 0

    def add_proto(self, ifp: Interface, family: int, demux: Sequence[DemuxDesc]) -> int:
        return 0  # the header names the family: nothing to register

    def del_proto(self, ifp: Interface, family: int) -> int:
        return 0

    def check_multi(self, ifp: Interface, addr: bytes) -> int:
        return 0  # every group "reaches" loopback


class LoopbackDriver:
    """Queues every frame sent for the engine to feed back as input (bounded)."""

    __slots__ = ("dropped", "limit", "queue")

    def __init__(self, limit: int = 4096) -> None:
        self.queue: list[bytes] = []
        self.limit = limit
        self.dropped = 0

    def output(self, ifp: Interface, frames: list[bytes]) -> int:
        room = self.limit - len(self.queue)
        if room < len(frames):
            self.dropped += len(frames) - max(room, 0)
            self.queue.extend(frames[: max(room, 0)])
            return ENOBUFS
        self.queue.extend(frames)
        return 0

    def drain(self) -> list[bytes]:
        """The frames sent since the last drain, oldest first."""
        frames, self.queue = self.queue, []
        return frames

    def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
        return EOPNOTSUPP

    def event(self, ifp: Interface, event: Event) -> None:
        return None

    def free(self, ifp: Interface) -> None:
        self.queue = []

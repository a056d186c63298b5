"""Fakes and builders shared by the data link layer tests (``test_support.py`` checks them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.contracts import DemuxDesc, InterfaceFilter, IoctlCmd, Packet, ProtoAttachment
from router.errors import EOPNOTSUPP
from router.events import Event, EventKind
from router.link.datalink import DataLink
from router.link.ether import ETHERTYPE_ARP, ETHERTYPE_IP, EthernetFamily
from router.link.ifnet import AF_INET, IfExtFlags, IfFamily, IfFlags, Interface

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
MAC_PEER = bytes.fromhex("02000000ffee")
AF_TEST = 99  # a second protocol family for run/ordering tests
ETHERTYPE_TEST = 0x88B5  # IEEE local experimental


class RecordingDriver:
    """A driver that records what it was given and answers as told."""

    def __init__(self, output_result: int = 0, ioctl_result: int = EOPNOTSUPP) -> None:
        self.calls: list[list[bytes]] = []
        self.output_result = output_result
        self.ioctl_result = ioctl_result
        self.ioctls: list[tuple[Any, Any]] = []
        self.events: list[Event] = []
        self.freed = 0

    @property
    def frames(self) -> list[bytes]:
        return [frame for call in self.calls for frame in call]

    def output(self, ifp: Interface, frames: list[bytes]) -> int:
        self.calls.append(list(frames))
        return self.output_result

    def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
        self.ioctls.append((cmd, arg))
        return self.ioctl_result

    def event(self, ifp: Interface, event: Event) -> None:
        self.events.append(event)

    def free(self, ifp: Interface) -> None:
        self.freed += 1


@dataclass
class ProtoLog:
    """What a test protocol received."""

    packets: list[Packet] = field(default_factory=list)
    lists: list[list[Packet]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    detached: int = 0


def make_proto(
    family: int = AF_INET,
    version: int = 2,
    ethertypes: tuple[int, ...] = (ETHERTYPE_IP, ETHERTYPE_ARP),
    result: int = 0,
    log: ProtoLog | None = None,
    **callbacks: Any,
) -> tuple[ProtoAttachment, ProtoLog]:
    """A protocol attachment whose input records packets and returns ``result``."""
    log = log if log is not None else ProtoLog()

    def input_one(ifp: Interface, fam: int, pkt: Packet) -> int:
        log.packets.append(pkt)
        return result

    def input_list(ifp: Interface, fam: int, pkts: list[Packet]) -> int:
        log.lists.append(list(pkts))
        log.packets.extend(pkts)
        return result

    def on_event(ifp: Interface, fam: int, event: Event) -> None:
        log.events.append(event)

    def on_detached(ifp: Interface, fam: int) -> None:
        log.detached += 1

    proto = ProtoAttachment(
        family=family,
        version=version,
        input=input_one if version == 1 else None,
        input_list=input_list if version == 2 else None,
        event=on_event,
        detached_cb=on_detached,
        demux=tuple(DemuxDesc("ethertype", t) for t in ethertypes),
    )
    for name, value in callbacks.items():
        setattr(proto, name, value)
    return proto, log


class Harness:
    """A DataLink with an event log and helpers to build Ethernet interfaces."""

    def __init__(self) -> None:
        self.dl = DataLink()
        self.events: list[Event] = []
        self.dl.subscribe(self.events.append)
        self.ether = EthernetFamily()

    def kinds(self, ifp: Interface | None = None) -> list[EventKind]:
        return [e.kind for e in self.events if ifp is None or e.ifname == ifp.name]

    def ethernet(
        self,
        name: str = "eth0",
        mac: bytes = MAC_A,
        *,
        uid: bytes | None = None,
        flags: IfFlags = IfFlags.UP | IfFlags.BROADCAST | IfFlags.MULTICAST,
        eflags: IfExtFlags = IfExtFlags.NONE,
        driver: RecordingDriver | None = None,
    ) -> tuple[Interface, RecordingDriver]:
        ifp = self.dl.acquire(IfFamily.ETHERNET, uid if uid is not None else name.encode(),
                              name=name, flags=flags, eflags=eflags, addrlen=6)
        driver = driver if driver is not None else RecordingDriver()
        self.dl.attach(ifp, mac, self.ether, driver)
        return ifp, driver


def eth_frame(dst: bytes, src: bytes = MAC_PEER, ethertype: int = ETHERTYPE_IP,
              payload: bytes = b"\x45" + b"\x00" * 39) -> bytes:
    return dst + src + ethertype.to_bytes(2, "big") + payload


def vlan_frame(dst: bytes, vid: int, inner: int = ETHERTYPE_IP, payload: bytes = b"x" * 30,
               src: bytes = MAC_PEER) -> bytes:
    tag = (0x8100).to_bytes(2, "big") + vid.to_bytes(2, "big") + inner.to_bytes(2, "big")
    return dst + src + tag + payload


def recording_filter(name: str, log: list[str], family: int = 0, result: int = 0,
                     **callbacks: Any) -> InterfaceFilter:
    """A filter whose input/output append ``"<name>:in"``/``"<name>:out"`` to ``log``."""

    def on_input(ifp: Interface, fam: int, pkt: Packet) -> int:
        log.append(f"{name}:in")
        return result

    def on_output(ifp: Interface, fam: int, pkt: Packet) -> int:
        log.append(f"{name}:out")
        return result

    def on_detached(ifp: Interface) -> None:
        log.append(f"{name}:detached")

    filt = InterfaceFilter(name, family, input=on_input, output=on_output, detached=on_detached)
    for key, value in callbacks.items():
        setattr(filt, key, value)
    return filt


@dataclass(slots=True)
class FakeInetAddr:
    """The two attributes the ARP fan-out reads from an IPv4 address entry."""

    addr: int
    family: int = AF_INET

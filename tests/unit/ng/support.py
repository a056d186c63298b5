"""Shared helpers for the ngN tests: a DataLink with ng interfaces, recording peers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scapy.all import ICMP, IP, raw

from router.contracts import IoctlCmd
from router.events import Event
from router.link.datalink import DataLink
from router.link.ifnet import AF_INET, Interface
from router.ng.iface import NetgraphIfaces
from router.ng.tap import Taps


class RecordingPeer:
    """A hook peer that keeps what it receives and answers with ``answer``."""

    def __init__(self, answer: int = 0) -> None:
        self.answer = answer
        self.packets: list[tuple[int, bytes]] = []
        self.cut = 0

    def receive(self, family: int, packet: bytes) -> int:
        self.packets.append((family, bytes(packet)))
        return self.answer

    def disconnected(self) -> None:
        self.cut += 1


@dataclass
class NgBench:
    """One engine's worth of parts: data link, taps, ng manager, what reached the stack."""

    dl: DataLink
    taps: Taps
    ngs: NetgraphIfaces
    delivered: list[tuple[Interface, int, bytes]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    now: float = 100.0
    # what the network layer does with a packet from a hook; None records it in ``delivered``
    stack: Callable[[Interface, int, bytes], None] | None = None

    def up(self, ifp: Interface) -> None:
        """Bring ``ifp`` up and running the way ifconfig does (SIOCSIFADDR)."""
        assert self.dl.ioctl(ifp, AF_INET, IoctlCmd.SIOCSIFADDR, None) == 0


def make_bench(**options: object) -> NgBench:
    dl = DataLink()
    taps = Taps()
    holder: list[NgBench] = []

    def deliver(ifp: Interface, family: int, packet: bytes) -> None:
        bench = holder[0]
        if bench.stack is not None:
            bench.stack(ifp, family, packet)
        else:
            bench.delivered.append((ifp, family, bytes(packet)))

    ngs = NetgraphIfaces(dl, deliver, taps=taps, clock=lambda: holder[0].now,
                         **options)  # type: ignore[arg-type]
    bench = NgBench(dl, taps, ngs)
    holder.append(bench)
    dl.subscribe(bench.events.append)
    return bench


def ipv4_packet(src: str = "10.0.0.1", dst: str = "10.0.0.2", ttl: int = 64) -> bytes:
    return raw(IP(src=src, dst=dst, ttl=ttl) / ICMP(type=8, id=1, seq=1) / b"ng")


def ipv6_packet() -> bytes:
    """A minimal IPv6 header (version nibble 6) with no payload."""
    return bytes([0x60]) + bytes(39)

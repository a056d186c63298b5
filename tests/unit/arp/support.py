"""Shared pieces of the ARP tests: a recording sink, a small world, scapy frame builders.

The ARP tests (and ``tests/unit/wire/test_arp.py``) import from here;
``test_support.py`` checks the harness itself (a broken harness would make
other tests vacuous).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from router.arp.config import ArpConfig
from router.arp.output import arp_frame
from router.arp.protocol import Arp
from router.events import Event, EventKind
from router.inet.route import RouteFlags, RouteTable
from router.link.ifnet import IfFlags, IfType, Interface

MAC_US = bytes.fromhex("020000000001")
MAC_US2 = bytes.fromhex("020000000002")
MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
BROADCAST = b"\xff" * 6

# Addresses usable at once: no probing, no gratuitous ARP (ACD tests turn them on).
QUICK = ArpConfig(probe_num=0, announce_num=0, seed=7)


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def text(mac: bytes) -> str:
    return mac.hex(":")


@dataclass
class Recorder:
    """An ArpSink that keeps everything it is given."""

    frames: list[tuple[Interface, bytes]] = field(default_factory=list)
    released: list[tuple[Interface, bytes, list[bytes]]] = field(default_factory=list)
    unreachable_: list[tuple[Interface, list[bytes]]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def send_frame(self, ifp: Interface, frame: bytes) -> None:
        self.frames.append((ifp, frame))

    def send_arp(self, ifp: Interface, op: int, sender_hw: bytes | None, sender_ip: int | None,
                 target_hw: bytes | None, target_ip: int) -> int:
        """As a data link layer without the link-local fan-out: on ``ifp`` only."""
        self.frames.append((ifp, arp_frame(ifp, op, sender_hw, sender_ip, target_hw, target_ip)))
        return 0

    def release(self, ifp: Interface, lladdr: bytes, packets: list[bytes]) -> None:
        self.released.append((ifp, lladdr, packets))

    def unreachable(self, ifp: Interface, packets: list[bytes]) -> None:
        self.unreachable_.append((ifp, packets))

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def take_frames(self) -> list[Ether]:
        """Dissect and forget the frames sent so far."""
        frames = [Ether(frame) for _, frame in self.frames]
        self.frames.clear()
        return frames

    def kinds(self) -> list[EventKind]:
        return [event.kind for event in self.events]


def make_ifp(name: str, index: int, mac: bytes,
             flags: IfFlags = IfFlags.UP | IfFlags.BROADCAST | IfFlags.MULTICAST,
             iftype: IfType = IfType.ETHER) -> Interface:
    ifp = Interface(name, flags=flags, type=iftype, addrlen=6)
    ifp.index = index
    ifp.lladdr = mac
    return ifp


@dataclass
class IfAddr:
    addr: int
    probes: int | None = None


class World:
    """One ARP instance on eth0 (10.0.0.1/24), with a real route table."""

    def __init__(self, config: ArpConfig = QUICK, *, with_address: bool = True) -> None:
        self.sink = Recorder()
        self.routes = RouteTable()
        # an interface's own prefixes are those of the routes through it
        self.arp = Arp(self.sink, self.routes.lookup, config, on_link=self.on_link)
        self.eth0 = make_ifp("eth0", 1, MAC_US)
        self.arp.attach_interface(self.eth0)
        self.routes.add(ip("10.0.0.0"), 24, ifindex=1, flags=RouteFlags.UP)
        self.now = 0.0
        if with_address:
            self.add_address(self.eth0, ip("10.0.0.1"))

    def on_link(self, ifp: Interface, addr: int) -> bool:
        return any(route.ifindex == ifp.index for route in self.routes.lookup_all(addr))

    def add_address(self, ifp: Interface, addr: int) -> None:
        self.arp.address_added(ifp, IfAddr(addr))
        self.arp.tick(self.now)

    def advance(self, seconds: float) -> None:
        """Move the clock, running every timer due on the way, in order."""
        end = self.now + seconds
        while True:
            deadline = self.arp.next_deadline()
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            self.arp.tick(self.now)
        self.now = end
        self.arp.tick(self.now)

    def receive(self, payload: bytes, ifp: Interface | None = None) -> None:
        self.arp.input(ifp or self.eth0, payload, self.now)

    def resolve(self, addr: int, packet: bytes | None = None,
                ifp: Interface | None = None) -> tuple[int, bytes]:
        pkt = packet if packet is not None else ipv4("10.0.0.1", "10.0.0.99")
        return self.arp.resolve(ifp or self.eth0, addr, pkt, self.now)

    def entry_state(self, addr: int, ifp: Interface | None = None) -> str | None:
        table = self.arp.table(ifp or self.eth0)
        assert table is not None
        entry = table.lookup(addr)
        return entry.state.value if entry is not None else None


def arp_payload(op: int, sha: bytes, spa: str, tha: bytes, tpa: str) -> bytes:
    """An ARP header built by scapy (op 1 request, 2 reply)."""
    return bytes(ARP(op=op, hwsrc=text(sha), psrc=spa, hwdst=text(tha), pdst=tpa))


def request(sha: bytes, spa: str, tpa: str) -> bytes:
    return arp_payload(1, sha, spa, b"\x00" * 6, tpa)


def reply(sha: bytes, spa: str, tpa: str, tha: bytes = MAC_US) -> bytes:
    return arp_payload(2, sha, spa, tha, tpa)


def ipv4(src: str, dst: str, payload: bytes = b"data") -> bytes:
    return bytes(IP(src=src, dst=dst) / UDP(sport=1000, dport=2000) / payload)

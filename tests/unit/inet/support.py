"""Shared scaffolding for the address-control tests (no tests of its own)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from router.contracts import IoctlCmd
from router.events import Event, EventKind
from router.inet.domain import InAddr, InetDomain, SamePrefixPolicy
from router.inet.route import RouteTable
from router.link.ifnet import IfFlags, Interface, LinkAddress

ETHER = IfFlags.UP | IfFlags.BROADCAST | IfFlags.MULTICAST | IfFlags.SIMPLEX
P2P = IfFlags.UP | IfFlags.POINTOPOINT | IfFlags.MULTICAST
LOOP = IfFlags.UP | IfFlags.LOOPBACK | IfFlags.MULTICAST


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def make_if(name: str, index: int, flags: IfFlags = ETHER) -> Interface:
    ifp = Interface(name, flags=flags)
    ifp.index = index
    ifp.addresses.append(LinkAddress(b"\x02\x00\x00\x00\x00" + bytes([index]), name, index))
    return ifp


@dataclass
class RecordingNeighbors:
    """NeighborHooks that write down every call."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def address_added(self, ifp: Interface, ia: InAddr) -> None:
        self.calls.append(("added", ifp.name, ia.addr))

    def scrub_address(self, ifp: Interface, addr: int) -> None:
        self.calls.append(("scrub", ifp.name, addr))

    def flush_prefix(self, prefix: int, mask: int, include_static: bool) -> None:
        self.calls.append(("flush", prefix, mask, include_static))

    def join_group(self, ifp: Interface, group: int) -> None:
        self.calls.append(("join", ifp.name, group))

    def leave_group(self, ifp: Interface, group: int) -> None:
        self.calls.append(("leave", ifp.name, group))

    def named(self, kind: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == kind]


@dataclass
class StubDriver:
    """A driver whose SIOCSIFADDR answer the test chooses."""

    answer: int = 0
    seen: list[tuple[IoctlCmd, Any]] = field(default_factory=list)

    def output(self, ifp: Interface, frames: list[bytes]) -> int:
        return 0

    def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
        self.seen.append((cmd, arg))
        return self.answer

    def event(self, ifp: Interface, event: Event) -> None:
        pass

    def free(self, ifp: Interface) -> None:
        pass


class Rig:
    """A route table, an address domain and recorders, wired together."""

    def __init__(self, policy: SamePrefixPolicy = SamePrefixPolicy.ALLOW) -> None:
        self.events: list[Event] = []
        self.neighbors = RecordingNeighbors()
        self.routes = RouteTable(self.events.append)
        self.inet = InetDomain(self.routes, self.events.append, self.neighbors, policy)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    def prefix_routes(self, prefix: str, plen: int) -> list[Any]:
        return [r for r in self.routes.get(ip(prefix), plen) if not r.is_local]

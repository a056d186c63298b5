"""A small stand-in engine and a live Agent server for the API tests.

``FakeEngine`` speaks the Engine facade's API (docs/architecture.md) with just
enough behaviour to drive every RPC and every error path; ``failing`` makes
the next engine call raise a chosen errno, which tests the status mapping
without needing a scenario per errno. ``running_agent`` starts a real grpc
server on a Unix socket in a short temporary directory.
"""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from agents.gate import Gate
from agents.server import build_server
from router.errors import (
    EADDRNOTAVAIL,
    EBUSY,
    EDESTADDRREQ,
    EEXIST,
    EINVAL,
    EISCONN,
    ENETDOWN,
    ENXIO,
    EPFNOSUPPORT,
    EPROTONOSUPPORT,
    ESRCH,
    RouterError,
)
from router.events import Event, EventKind
from router.link.ifnet import AF_INET, IfFamily, IfFlags, IfState, IfType, Interface
from router.ng.pcap import null_header
from router.ng.tap import Tap, TapRecord, Taps
from vrc.v1 import agent_pb2_grpc

NG_MTU_MIN, NG_MTU_MAX = 72, 65535


@dataclass
class FakeAddr:
    addr: int
    mask: int
    peer: int
    ifp: Interface
    vhid: int = 0
    owns_route: bool = True

    @property
    def broadcast(self) -> int:
        return self.peer

    @property
    def dest(self) -> int:
        return self.peer


@dataclass
class FakeRoute:
    prefix: int
    plen: int
    gateway: int = 0
    ifname: str = ""
    ifindex: int = 0
    flags: str = "UP|STATIC"


@dataclass
class FakeArp:
    ifname: str
    ip: int
    mac: bytes
    static: bool = True
    published: bool = False
    state: str = "REACHABLE"


@dataclass
class FakeEngine:
    ifps: dict[str, Interface] = field(default_factory=dict)
    routes_: dict[tuple[int, int], FakeRoute] = field(default_factory=dict)
    arp: dict[tuple[str, int], FakeArp] = field(default_factory=dict)
    policy: str = "allow"
    hooks: dict[tuple[str, str], int] = field(default_factory=dict)
    hook_out: list[tuple[int, bytes]] = field(default_factory=list)
    taps: Taps = field(default_factory=Taps)
    open_taps: list[Tap] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    seq: int = 0
    next_handle: int = 1
    failing: RouterError | None = None
    clock: float = 1000.0
    probes_asked: list[int | None] = field(default_factory=list)  # add_alias(probes=...)

    # --- helpers ---------------------------------------------------------------------

    def _check(self) -> None:
        if self.failing is not None:
            error, self.failing = self.failing, None
            raise error

    def emit(self, kind: EventKind, ifname: str = "", **data: Any) -> None:
        self.seq += 1
        index = self.ifps[ifname].index if ifname in self.ifps else 0
        self.events.append(Event(kind, ifname, index, dict(data), self.seq))

    def _ifp(self, name: str) -> Interface:
        self._check()
        ifp = self.ifps.get(name)
        if ifp is None:
            raise RouterError(ENXIO, "interface", name)
        return ifp

    # --- the facade ------------------------------------------------------------------

    def add_ethernet(self, name: str, mac: bytes, mtu: int = 1500, up: bool = True) -> Interface:
        ifp = Interface(name, flags=IfFlags.BROADCAST | IfFlags.MULTICAST | IfFlags.SIMPLEX,
                        mtu=mtu, addrlen=6)
        if up:
            ifp.flags |= IfFlags.UP | IfFlags.RUNNING
        ifp.lladdr = mac
        ifp.index = len(self.ifps) + 1
        ifp.state = IfState.ATTACHED
        self.ifps[name] = ifp
        self.emit(EventKind.IF_ATTACHED, name)
        return ifp

    def interfaces(self) -> list[Interface]:
        self._check()
        return list(self.ifps.values())

    def interface(self, name: str) -> Interface | None:
        self._check()
        return self.ifps.get(name)

    def create_ng(self) -> str:
        self._check()
        unit = 0
        while f"ng{unit}" in self.ifps:
            unit += 1
        name = f"ng{unit}"
        ifp = Interface(name, family=IfFamily.NETGRAPH, type=IfType.PROPVIRTUAL, unit=unit,
                        flags=IfFlags.POINTOPOINT | IfFlags.NOARP | IfFlags.MULTICAST)
        ifp.index = len(self.ifps) + 1
        ifp.state = IfState.ATTACHED
        self.ifps[name] = ifp
        self.emit(EventKind.IF_ATTACHED, name)
        return name

    def destroy_ng(self, name: str) -> None:
        ifp = self._ifp(name)
        if ifp.family is not IfFamily.NETGRAPH:
            raise RouterError(EINVAL, "name", name, detail="not an ngN interface")
        self.emit(EventKind.IF_DETACHED, name)
        del self.ifps[name]

    def set_interface(self, name: str, up: bool | None = None, mtu: int | None = None,
                      point_to_point: bool | None = None) -> None:
        ifp = self._ifp(name)
        if point_to_point is not None:
            if ifp.is_up:
                raise RouterError(EBUSY, "mode", "point2point" if point_to_point
                                  else "broadcast", subject=f"mode of {name}")
            ifp.flags &= ~(IfFlags.POINTOPOINT | IfFlags.BROADCAST)
            ifp.flags |= IfFlags.POINTOPOINT if point_to_point else IfFlags.BROADCAST
        if mtu is not None:
            if ifp.family is IfFamily.NETGRAPH and not NG_MTU_MIN <= mtu <= NG_MTU_MAX:
                raise RouterError(EINVAL, "mtu", mtu)
            ifp.mtu = mtu
        if up is True:
            ifp.flags |= IfFlags.UP | IfFlags.RUNNING
            self.emit(EventKind.LINK_UP, name)
        elif up is False:
            ifp.flags &= ~(IfFlags.UP | IfFlags.RUNNING)
            self.emit(EventKind.LINK_DOWN, name)

    def _addrs(self, ifp: Interface) -> list[FakeAddr]:
        return [a for a in ifp.addresses if isinstance(a, FakeAddr)]

    def add_alias(self, ifname: str, address: str, broadcast: str | None = None,
                  dest: str | None = None, vhid: int = 0,
                  probes: int | None = None) -> FakeAddr:
        ifp = self._ifp(ifname)
        self.probes_asked.append(probes)
        net = ipaddress.IPv4Interface(address)
        if ifp.flags & IfFlags.POINTOPOINT and dest is None:
            raise RouterError(EDESTADDRREQ, "destination", None, subject=f"alias {address}")
        if vhid:
            raise RouterError(EPROTONOSUPPORT, "vhid", vhid)
        addr, mask = int(net.ip), int(net.netmask)
        same = [a for i in self.ifps.values() for a in self._addrs(i)
                if a.addr & a.mask == addr & mask and a.mask == mask and a.addr != addr]
        if same and self.policy == "refuse":
            raise RouterError(EEXIST, "address", address, subject=f"alias {address} on {ifname}")
        peer = int(ipaddress.IPv4Address(dest)) if dest else (
            int(ipaddress.IPv4Address(broadcast)) if broadcast
            else int(net.network.broadcast_address))
        record = FakeAddr(addr, mask, peer, ifp, vhid, owns_route=not same)
        ifp.addresses = [a for a in ifp.addresses if not (isinstance(a, FakeAddr)
                                                          and a.addr == addr)]
        ifp.addresses.append(record)
        self.emit(EventKind.RTM_NEWADDR, ifname, addr=str(net.ip), plen=net.network.prefixlen)
        return record

    def delete_alias(self, ifname: str, address: str | None = None) -> FakeAddr:
        ifp = self._ifp(ifname)
        addrs = self._addrs(ifp)
        if address is None:
            found = addrs[0] if addrs else None
        else:
            found = next((a for a in addrs if a.addr == int(ipaddress.IPv4Address(address))),
                         None)
        if found is None:
            raise RouterError(EADDRNOTAVAIL, "address", address, subject=f"on {ifname}")
        ifp.addresses.remove(found)
        self.emit(EventKind.RTM_DELADDR, ifname, addr=str(ipaddress.IPv4Address(found.addr)))
        return found

    def get_address(self, ifname: str, address: str | None = None,
                    which: str | None = None) -> FakeAddr:
        ifp = self._ifp(ifname)
        addrs = self._addrs(ifp)
        if address is None:
            found = addrs[0] if addrs else None
        else:
            found = next((a for a in addrs if a.addr == int(ipaddress.IPv4Address(address))),
                         None)
        if found is None:
            raise RouterError(EADDRNOTAVAIL, "address", address)
        if which == "broadcast" and not ifp.flags & IfFlags.BROADCAST:
            raise RouterError(EINVAL, "field", which, detail="not a broadcast interface")
        if which == "destination" and not ifp.flags & IfFlags.POINTOPOINT:
            raise RouterError(EINVAL, "field", which, detail="not a point-to-point interface")
        return found

    def routes(self) -> list[FakeRoute]:
        self._check()
        return list(self.routes_.values())

    def next_hop_usable(self, hop: object) -> bool:
        del hop
        return True

    def add_route(self, prefix: str, gateway: str | None = None,
                  ifname: str | None = None) -> FakeRoute:
        self._check()
        net = ipaddress.IPv4Network(prefix)
        key = (int(net.network_address), net.prefixlen)
        if key in self.routes_:
            raise RouterError(EEXIST, "prefix", prefix)
        if ifname is not None:
            self._ifp(ifname)
        route = FakeRoute(*key, gateway=int(ipaddress.IPv4Address(gateway)) if gateway else 0,
                          ifname=ifname or "")
        self.routes_[key] = route
        self.emit(EventKind.RTM_ADD, ifname or "", dst=prefix)
        return route

    def delete_route(self, prefix: str) -> None:
        self._check()
        net = ipaddress.IPv4Network(prefix)
        if self.routes_.pop((int(net.network_address), net.prefixlen), None) is None:
            raise RouterError(ESRCH, "prefix", prefix)
        self.emit(EventKind.RTM_DELETE, dst=prefix)

    def arp_entries(self, ifname: str | None = None) -> list[FakeArp]:
        self._check()
        return [e for e in self.arp.values() if ifname is None or e.ifname == ifname]

    def set_arp(self, ifname: str, ip: str, mac: bytes, published: bool = False) -> FakeArp:
        self._ifp(ifname)
        entry = FakeArp(ifname, int(ipaddress.IPv4Address(ip)), mac, published=published)
        self.arp[(ifname, entry.ip)] = entry
        return entry

    def delete_arp(self, ifname: str, ip: str) -> None:
        self._ifp(ifname)
        if self.arp.pop((ifname, int(ipaddress.IPv4Address(ip))), None) is None:
            raise RouterError(EADDRNOTAVAIL, "ip", ip)

    def flush_arp(self, ifname: str | None = None) -> int:
        doomed = [k for k, e in self.arp.items() if ifname is None or e.ifname == ifname]
        for key in doomed:
            del self.arp[key]
        return len(doomed)

    def get_policy(self) -> str:
        self._check()
        return self.policy

    def set_policy(self, policy: str) -> None:
        self._check()
        self.policy = policy

    def query(self, kind: str, address: str, ifname: str | None = None) -> bool:
        self._check()
        value = int(ipaddress.IPv4Address(address))
        addrs = [a for i in self.ifps.values() for a in self._addrs(i)]
        if kind == "local-address":
            return any(a.addr == value for a in addrs)
        if kind == "local-subnet":
            return any(a.addr & a.mask == value & a.mask for a in addrs)
        if kind == "can-forward":
            return not ipaddress.IPv4Address(address).is_multicast and value >> 24 not in (0, 127)
        ifp = self._ifp(ifname or "")
        return any(a.peer == value for a in self._addrs(ifp))

    # --- hooks and taps -----------------------------------------------------------------

    def hook_connect(self, ifname: str, hook: str) -> int:
        ifp = self._ifp(ifname)
        if ifp.family is not IfFamily.NETGRAPH:
            raise RouterError(EINVAL, "ifname", ifname, detail="not an ngN interface")
        if hook not in ("inet", "inet6"):
            raise RouterError(EPFNOSUPPORT, "hook", hook)
        if (ifname, hook) in self.hooks:
            raise RouterError(EISCONN, "hook", hook, subject=f"hook {ifname}:{hook}")
        handle = self.next_handle
        self.next_handle += 1
        self.hooks[(ifname, hook)] = handle
        return handle

    def hook_disconnect(self, handle: int) -> None:
        self.hooks = {k: h for k, h in self.hooks.items() if h != handle}

    def hook_send(self, handle: int, packet: bytes) -> None:
        """The fake routes every packet straight back out of the same hook."""
        ifname = next(k[0] for k, h in self.hooks.items() if h == handle)
        ifp = self.ifps[ifname]
        if not ifp.is_up:
            raise RouterError(ENETDOWN, "interface", ifname)
        # ngN taps carry the 4-byte family header (DLT_NULL), as ng_iface's bpf tap does
        self._tap(ifname, "in", null_header(AF_INET) + packet)
        self._tap(ifname, "out", null_header(AF_INET) + packet)
        self.hook_out.append((handle, packet))

    def drain_hook_output(self) -> list[tuple[int, bytes]]:
        out, self.hook_out = self.hook_out, []
        return out

    def tap(self, ifname: str, snaplen: int = 65535) -> Tap:
        tap = self.taps.open(self._ifp(ifname), snaplen)
        self.open_taps.append(tap)
        return tap

    def untap(self, tap: Tap) -> None:
        self.taps.close(tap)
        self.open_taps = [t for t in self.open_taps if not t.closed]

    def drain_taps(self) -> list[tuple[Tap, TapRecord]]:
        return [(tap, record) for tap in self.open_taps for record in tap.drain()]

    def client_output_pending(self) -> bool:
        return True  # the fake has no cheap answer: always drain

    def _tap(self, ifname: str, direction: str, frame: bytes) -> None:
        self.clock += 0.001
        ifp = self.ifps[ifname]
        if direction == "in":
            self.taps.tap_input(ifp, frame, self.clock)
        else:
            self.taps.tap_output(ifp, frame, self.clock)

    def inject_frame(self, ifname: str, frame: bytes) -> None:
        """A frame arrived from the wire (the data-plane loop's doing)."""
        self._tap(ifname, "in", frame)

    def drain_events(self) -> list[Event]:
        out, self.events = self.events, []
        return out


@dataclass
class RunningAgent:
    engine: FakeEngine
    gate: Gate
    server: grpc.Server
    address: str
    channel: grpc.Channel
    stub: agent_pb2_grpc.AgentStub


@contextmanager
def running_agent(engine: Any = None) -> Iterator[RunningAgent]:
    """A real grpc server for ``engine`` on a Unix socket, and a connected stub."""
    engine = engine if engine is not None else FakeEngine()
    gate = Gate(engine)
    directory = tempfile.mkdtemp(prefix="vrc-api-")  # short: sun_path holds 108 bytes
    server, address = build_server(gate, f"unix:{directory}/agent.sock")
    server.start()
    channel = grpc.insecure_channel(address)
    try:
        yield RunningAgent(engine, gate, server, address, channel,
                           agent_pb2_grpc.AgentStub(channel))
    finally:
        channel.close()
        server.stop(None).wait()
        shutil.rmtree(directory, ignore_errors=True)


def sample_engine() -> FakeEngine:
    engine = FakeEngine()
    engine.add_ethernet("eth0", bytes.fromhex("020000000001"))
    engine.add_ethernet("eth1", bytes.fromhex("020000000002"))
    engine.drain_events()
    engine.seq = 0
    return engine


CliRun = Callable[..., tuple[int, str, str]]


def cli_runner(address: str, capsys: Any) -> CliRun:
    """Run one ``vrc`` command against ``address``: (exit code, stdout, stderr).

    A usage error (argparse's SystemExit) comes back as its exit code.
    """
    from cli.main import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(["--agent", address, *argv])
        except SystemExit as leave:
            code = int(leave.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run

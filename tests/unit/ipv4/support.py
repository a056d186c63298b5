"""Scaffolding for the IPv4/ICMP tests (no tests of its own).

A two-interface router built from the real route table and address control,
with the data link layer replaced by a list that records every datagram the
IPv4 layer hands to output.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.packet import Packet as ScapyPacket

from router.contracts import PacketFlags
from router.inet.domain import InetDomain
from router.inet.route import RouteFlags, RouteTable
from router.ipv4.icmp import IcmpConfig
from router.ipv4.input import Ipv4, Ipv4Config
from router.link.ifnet import IfFlags, Interface, LinkAddress

ETHER = IfFlags.UP | IfFlags.BROADCAST | IfFlags.MULTICAST | IfFlags.SIMPLEX
MAC0 = "02:00:00:00:00:01"
MAC1 = "02:00:00:00:00:02"
PEER_MAC = "02:00:00:00:00:99"


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def make_if(name: str, index: int, mac: str, flags: IfFlags = ETHER, mtu: int = 1500) -> Interface:
    ifp = Interface(name, flags=flags, mtu=mtu)
    ifp.index = index
    ifp.lladdr = bytes.fromhex(mac.replace(":", ""))
    ifp.addresses.append(LinkAddress(ifp.lladdr, name, index))
    return ifp


@dataclass
class Sent:
    ifname: str
    datagram: bytes
    next_hop: int

    @property
    def ip(self) -> IP:
        return IP(self.datagram)


@dataclass
class Rig:
    """eth0 10.0.0.1/24, eth1 10.1.0.1/24, 192.168.0.0/16 via 10.1.0.254."""

    config: Ipv4Config = field(default_factory=Ipv4Config)
    output_error: int = 0  # what output answers on every interface ...
    fail: dict[str, int] = field(default_factory=dict)  # ... or on the named ones
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.routes = RouteTable()
        self.inet = InetDomain(self.routes)
        self.eth0 = make_if("eth0", 1, MAC0)
        self.eth1 = make_if("eth1", 2, MAC1)
        self.ifs = {1: self.eth0, 2: self.eth1}
        self.inet.add_alias(self.eth0, ip("10.0.0.1"), ip("255.255.255.0"))
        self.inet.add_alias(self.eth1, ip("10.1.0.1"), ip("255.255.255.0"))
        self.routes.add(ip("192.168.0.0"), 16, ifindex=2, gateway=ip("10.1.0.254"),
                        flags=RouteFlags.GATEWAY | RouteFlags.STATIC, ifname="eth1")
        self.ipv4 = Ipv4(routes=self.routes, inet=self.inet, interface_of=self.ifs.get,
                         output=self._output, config=self.config)

    def _output(self, ifp: Interface, datagram: bytes, next_hop: int) -> int:
        error = self.fail.get(ifp.name, self.output_error)
        if error:
            return error
        self.sent.append(Sent(ifp.name, datagram, next_hop))
        return 0

    def receive(self, packet: ScapyPacket, ifp: Interface | None = None, now: float = 0.0,
                dst_mac: str | None = None, flags: PacketFlags = PacketFlags.NONE) -> None:
        ifp = ifp or self.eth0
        mac = dst_mac or ":".join(f"{b:02x}" for b in ifp.lladdr)
        frame = bytes(Ether(dst=mac, src=PEER_MAC) / packet)
        self.ipv4.input(ifp, frame, 14, flags, now)

    def receive_raw(self, datagram: bytes, ifp: Interface | None = None, now: float = 0.0) -> None:
        self.ipv4.input(ifp or self.eth0, b"\x00" * 14 + datagram, 14, PacketFlags.NONE, now)

    def take(self) -> list[Sent]:
        sent, self.sent = self.sent, []
        return sent

    def drops(self) -> dict[str, int]:
        return {r.value: n for r, n in self.ipv4.stats.drops.items() if n}


def no_rate_limit() -> Ipv4Config:
    return Ipv4Config(icmp=IcmpConfig(per_host_burst=10**6, global_burst=10**6))

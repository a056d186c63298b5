"""Scaffolding for the engine data-path tests (no tests of its own).

``lan()`` builds a router with two Ethernet interfaces and one host engine on
each side, joined by netsim segments, and lets ARP conflict detection finish.
"""

from __future__ import annotations

from dataclasses import dataclass

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from router import Engine, EngineConfig
from router.ipv4.input import Ipv4Config
from tests.netsim import Net

R_MAC0 = "02:00:00:00:01:00"
R_MAC1 = "02:00:00:00:01:01"
H1_MAC = "02:00:00:00:02:00"
H2_MAC = "02:00:00:00:03:00"
HOST = EngineConfig(ipv4=Ipv4Config(forwarding=False))


@dataclass
class Lan:
    net: Net
    r: Engine
    h1: Engine
    h2: Engine


def lan(config: EngineConfig | None = None, settle: float = 10.0) -> Lan:
    net = Net()
    r = net.add("r", Engine(config))
    h1 = net.add("h1", Engine(HOST))
    h2 = net.add("h2", Engine(HOST))
    r.add_ethernet("eth0", R_MAC0)
    r.add_ethernet("eth1", R_MAC1)
    h1.add_ethernet("eth0", H1_MAC)
    h2.add_ethernet("eth0", H2_MAC)
    net.segment("a", ("r", "eth0"), ("h1", "eth0"))
    net.segment("b", ("r", "eth1"), ("h2", "eth0"))
    r.add_alias("eth0", "10.0.0.1/24")
    r.add_alias("eth1", "10.1.0.1/24")
    h1.add_alias("eth0", "10.0.0.2/24")
    h2.add_alias("eth0", "10.1.0.2/24")
    h1.add_route("0.0.0.0/0", gateway="10.0.0.1")
    h2.add_route("0.0.0.0/0", gateway="10.1.0.1")
    net.advance(settle)
    return Lan(net, r, h1, h2)


def ping(src: str, dst: str, seq: int = 1, ttl: int = 64, size: int = 8) -> bytes:
    return bytes(IP(src=src, dst=dst, ttl=ttl) / ICMP(id=0x77, seq=seq) / (b"p" * size))


def icmp_seen(frames: list[bytes], icmp_type: int) -> list[Ether]:
    return [Ether(f) for f in frames
            if ICMP in Ether(f) and Ether(f)[ICMP].type == icmp_type
            and Ether(f)[IP].proto == 1]

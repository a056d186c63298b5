"""A scan never empties the ARP table of live neighbours (issue 11 item 2).

Through the router, a host sends UDP to 20,000 destinations of an on-link
/16 at 1,500 a second of simulated clock, while it keeps pinging a neighbour
on that /16 that the router has resolved. Every destination of the scan
needs an ARP entry that is never resolved; those unresolved entries are
bounded on their own and take each other's places, so the neighbour in use
is never evicted, its entry never goes back to INCOMPLETE (no packet of it
is ever held), and every ping is answered.
"""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP, UDP

from router import Engine, EngineConfig
from router.arp.config import ArpConfig
from router.events import EventKind
from router.ipv4.input import Ipv4Config
from router.wire import ipv4 as ip_wire
from tests.netsim import Net

HOST = EngineConfig(ipv4=Ipv4Config(forwarding=False))
NEIGHBOUR = "10.0.0.2"
SCANNER = "10.1.0.2"
DESTINATIONS = 20_000
RATE = 1_500  # scan packets per simulated second
STEP = 0.01  # the clock moves in 10 ms steps: 15 scan packets each
PING_EVERY = 10  # steps: a ping each 100 ms


def scan_targets() -> list[str]:
    # 10.0.0.3 onwards: never the router (10.0.0.1) or the neighbour (10.0.0.2)
    base = int(ipaddress.IPv4Address("10.0.0.3"))
    return [str(ipaddress.IPv4Address(base + n)) for n in range(DESTINATIONS)]


def build(router_arp: ArpConfig) -> tuple[Net, Engine, Engine, Engine]:
    net = Net()
    r = net.add("r", Engine(EngineConfig(arp=router_arp)))
    neighbour = net.add("n", Engine(HOST))
    scanner = net.add("s", Engine(HOST))
    r.add_ethernet("eth0", "02:00:00:00:01:00")
    r.add_ethernet("eth1", "02:00:00:00:01:01")
    neighbour.add_ethernet("eth0", "02:00:00:00:02:00")
    scanner.add_ethernet("eth0", "02:00:00:00:03:00")
    net.segment("lan", ("r", "eth0"), ("n", "eth0"))
    net.segment("uplink", ("r", "eth1"), ("s", "eth0"))
    r.add_alias("eth0", "10.0.0.1/16")  # the on-link /16 being scanned
    r.add_alias("eth1", "10.1.0.1/24")
    neighbour.add_alias("eth0", f"{NEIGHBOUR}/16")
    scanner.add_alias("eth0", f"{SCANNER}/24")
    neighbour.add_route("0.0.0.0/0", gateway="10.0.0.1")
    scanner.add_route("0.0.0.0/0", gateway="10.1.0.1")
    net.advance(10.0)  # conflict detection done everywhere
    return net, r, neighbour, scanner


def ping(seq: int) -> bytes:
    return bytes(IP(src=SCANNER, dst=NEIGHBOUR) / ICMP(id=0x5CA, seq=seq) / b"in use")


UDP_SCAN = bytes(UDP(sport=40000, dport=9, len=12, chksum=0) / b"scan")  # no checksum (RFC 768)


def udp(dst: str) -> bytes:
    # router.wire builds the 20,000 datagrams: scapy would take most of the test's time
    return ip_wire.emit(src=int(ipaddress.IPv4Address(SCANNER)),
                        dst=int(ipaddress.IPv4Address(dst)), protocol=ip_wire.PROTO_UDP,
                        payload=UDP_SCAN)


def neighbour_events(r: Engine) -> list[tuple[EventKind, str]]:
    return [(e.kind, str(e.data.get("state"))) for e in r.drain_events()
            if e.kind in (EventKind.ARP_ADDED, EventKind.ARP_CHANGED, EventKind.ARP_DELETED)
            and e.data.get("addr") == NEIGHBOUR]


@pytest.mark.parametrize("reachable", [30.0, 1.0], ids=["default", "short-reachable-time"])
def test_a_scan_of_the_subnet_never_evicts_or_holds_a_neighbour_in_use(reachable: float) -> None:
    # With a 1 s reachable time the neighbour goes STALE, DELAY and PROBE
    # over and over during the scan, the states a busy table might prey on.
    net, r, _neighbour, scanner = build(ArpConfig(base_reachable_time=reachable))
    scanner.send_datagram(ping(0))
    net.run()
    assert [e.state for e in r.arp_entries("eth0") if not e.ifaddr] == ["REACHABLE"]
    neighbour_events(r)  # forget the resolution itself
    targets = scan_targets()
    per_step = int(RATE * STEP)
    pings = 1
    for step in range(len(targets) // per_step + 1):
        for dst in targets[step * per_step : (step + 1) * per_step]:
            scanner.send_datagram(udp(dst))
        if step % PING_EVERY == 0:
            scanner.send_datagram(ping(pings))
            pings += 1
        net.advance(STEP)
        history = neighbour_events(r)
        assert all(kind is not EventKind.ARP_DELETED for kind, _ in history), (
            f"the neighbour was evicted at {net.now:.2f} s")
        assert all(state != "INCOMPLETE" for _, state in history), (
            f"the neighbour's traffic was held at {net.now:.2f} s")
    replies = scanner.stats()["icmp"].get("in_type_0", 0)
    assert replies == pings
    arp = r.stats()["arp"]
    assert arp["requests_out"] >= DESTINATIONS  # the scan was resolved, not refused
    assert arp["table_full"] == 0
    unresolved = [e for e in r.arp_entries("eth0") if e.state in ("INCOMPLETE", "FAILED")]
    assert len(unresolved) <= r.arp.config.unresolved_limit
    assert arp["unresolved_evictions"] > 0
    assert r.arp.config.unresolved_limit < r.arp.config.gc_thresh2

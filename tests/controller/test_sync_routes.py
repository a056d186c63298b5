"""Cluster routes reaching the agents' engines, configured only through the Controller API.

A real etcd and controller; every host is a real Sync client driving a real
engine. Once the agents have applied a version their clients are stopped
(the engines keep what was applied) and the engines are joined by in-memory
segments (tests/netsim.py) to show that a datagram really crosses the hosts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scapy.layers.inet import ICMP, IP  # type: ignore[import-untyped]

from agents.sync.sim import InProcessAgent
from router import ArpConfig, Engine, EngineConfig
from tests.controller.sync_support import Running, host_up, sync_controller, wait_for
from tests.etcd import TestEtcd
from tests.netsim import Net
from vrc.v1 import controller_pb2 as pb

MULTIPATH = 3


@pytest.fixture
def ctl(etcd: TestEtcd) -> Iterator[Running]:
    with sync_controller(etcd) as running:
        yield running


def configure(ctl: Running, aliases: list[tuple[str, str, str]],
              claims: list[tuple[str, str, str]]) -> int:
    stub = ctl.stub()
    revision = 0
    for host, ifname, address in aliases:
        revision = stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
            host=host, ifname=ifname, address=address)), timeout=10).revision
    for prefix, host, ifname in claims:
        revision = stub.PutPrefix(pb.PutPrefixRequest(prefix=prefix, host=host, ifname=ifname),
                                  timeout=10).revision
    return int(revision)


def converged(ctl: Running, revision: int) -> None:
    stub = ctl.stub()
    wait_for(lambda: stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=10).watermark
             >= revision, f"every live host at revision {revision}")


def up(ctl: Running, *hosts: str) -> None:
    stub = ctl.stub()
    wait_for(lambda: all(host_up(stub, h) for h in hosts), f"{hosts} up")


# --- a chain: multi-hop ------------------------------------------------------------------

CHAIN = [("h1", "eth1", "10.0.12.1/24"), ("h2", "eth1", "10.0.12.2/24"),
         ("h2", "eth2", "10.0.23.2/24"), ("h3", "eth1", "10.0.23.3/24"),
         ("h1", "eth9", "10.91.0.1/24"), ("h3", "eth9", "10.93.0.1/24")]


def test_a_three_host_chain_routes_each_end_through_the_middle_and_forwards(
        ctl: Running) -> None:
    hosts = {h: ctl.agent(h, "eth1", "eth2", "eth9") for h in ("h1", "h2", "h3")}
    up(ctl, *hosts)
    revision = configure(ctl, CHAIN, [("10.91.0.0/24", "h1", "eth9"),
                                      ("10.93.0.0/24", "h3", "eth9")])
    converged(ctl, revision)
    assert hosts["h1"].routes() == {"10.93.0.0/24": [("10.0.12.2", "eth1")]}
    assert hosts["h2"].routes() == {"10.91.0.0/24": [("10.0.12.1", "eth1")],
                                    "10.93.0.0/24": [("10.0.23.3", "eth2")]}
    assert hosts["h3"].routes() == {"10.91.0.0/24": [("10.0.23.2", "eth1")]}
    status = ctl.stub().GetHostStatus(pb.GetHostStatusRequest(host="h1"), timeout=10)
    assert {i.key for i in status.items if i.state == pb.ITEM_STATE_APPLIED} >= {
        "route/10.93.0.0/24", "alias/eth1/10.0.12.1"}
    # the controller goes first (its agents keep forwarding without it), then the agents'
    # clients, so the engines hold still while frames cross them
    ctl.controller.stop()
    for agent in hosts.values():
        agent.stop()
    assert ping_across(hosts, ("h1", "eth9", "10.91.0.9", "10.91.0.1"),
                       ("h3", "eth9", "10.93.0.9", "10.93.0.1"),
                       [("h1", "eth1", "h2", "eth1"), ("h2", "eth2", "h3", "eth1")])


def ping_across(hosts: dict[str, InProcessAgent], left: tuple[str, str, str, str],
                right: tuple[str, str, str, str],
                links: list[tuple[str, str, str, str]]) -> bool:
    """An end host on each side's stub net; an echo from the left one to the right one:
    whether the reply came back (True) through every host in between."""
    net = Net()
    for name, agent in hosts.items():
        net.add(name, agent.engine)
    ends = {}
    for tag, (host, ifname, address, gateway) in (("a", left), ("b", right)):
        engine = Engine(EngineConfig(arp=ArpConfig(probe_num=0)))
        engine.add_ethernet("eth0", mac=f"02:ee:00:00:00:0{1 if tag == 'a' else 2}", up=True)
        engine.add_alias("eth0", f"{address}/24")
        engine.add_route("0.0.0.0/0", gateway=gateway)
        net.add(tag, engine)
        net.segment(f"stub-{tag}", (tag, "eth0"), (host, ifname))
        ends[tag] = (engine, address)
    for n, (x, xif, y, yif) in enumerate(links):
        net.segment(f"link{n}", (x, xif), (y, yif))
    (a, a_addr), (_, b_addr) = ends["a"], ends["b"]
    net.advance(10.0)  # the end hosts' addresses through RFC 5227 announcing
    a.send_datagram(bytes(IP(src=a_addr, dst=b_addr, ttl=64) / ICMP(id=7, seq=1)))
    for _ in range(5):
        net.advance(1.0)  # ARP on each hop, then the echo and its reply
    replies = [f for f in net.segments["stub-a"].frames_from(left[0])
               if (packet := _ip(f)) is not None and packet.haslayer(ICMP)
               and packet[ICMP].type == 0 and packet.dst == a_addr]
    return bool(replies)


def _ip(frame: bytes) -> IP | None:
    from scapy.layers.l2 import Ether  # type: ignore[import-untyped]

    packet = Ether(frame)
    return packet[IP] if packet.haslayer(IP) else None


def flow_legs(hosts: dict[str, InProcessAgent], ports: range, rounds: int
              ) -> dict[int, set[str]]:
    """UDP flows (one per source port) from a host behind h1 to one behind h3, each sent
    ``rounds`` times: per flow, the ring links it left h1 on."""
    from scapy.layers.inet import UDP  # type: ignore[import-untyped]

    net = Net()
    for name, agent in hosts.items():
        net.add(name, agent.engine)
    ends = {}
    for tag, host, address, gateway in (("a", "h1", "10.91.0.9", "10.91.0.1"),
                                        ("b", "h3", "10.93.0.9", "10.93.0.1")):
        engine = Engine(EngineConfig(arp=ArpConfig(probe_num=0)))
        engine.add_ethernet("eth0", mac=f"02:ee:00:00:01:0{1 if tag == 'a' else 2}", up=True)
        engine.add_alias("eth0", f"{address}/24")
        engine.add_route("0.0.0.0/0", gateway=gateway)
        net.add(tag, engine)
        net.segment(f"stub-{tag}", (tag, "eth0"), (host, "eth9"))
        ends[tag] = engine
    for name, (x, xif, y, yif) in {"link12": ("h1", "eth1", "h2", "eth1"),
                                   "link23": ("h2", "eth2", "h3", "eth1"),
                                   "link34": ("h3", "eth2", "h4", "eth1"),
                                   "link41": ("h4", "eth2", "h1", "eth2")}.items():
        net.segment(name, (x, xif), (y, yif))
    net.advance(10.0)
    for _ in range(rounds):
        for port in ports:
            ends["a"].send_datagram(bytes(IP(src="10.91.0.9", dst="10.93.0.9", ttl=64)
                                          / UDP(sport=port, dport=5353) / b"flow"))
        net.advance(2.0)
    seen: dict[int, set[str]] = {port: set() for port in ports}
    for name in ("link12", "link41"):
        for frame in net.segments[name].frames_from("h1"):
            packet = _ip(frame)
            if packet is not None and packet.haslayer(UDP) and packet[UDP].dport == 5353:
                seen[packet[UDP].sport].add(name)
    return seen


# --- a ring: two equal paths --------------------------------------------------------------

RING = [("h1", "eth1", "10.0.12.1/24"), ("h2", "eth1", "10.0.12.2/24"),
        ("h2", "eth2", "10.0.23.2/24"), ("h3", "eth1", "10.0.23.3/24"),
        ("h3", "eth2", "10.0.34.3/24"), ("h4", "eth1", "10.0.34.4/24"),
        ("h4", "eth2", "10.0.41.4/24"), ("h1", "eth2", "10.0.41.1/24"),
        ("h3", "eth9", "10.93.0.1/24")]


def ring(ctl: Running) -> dict[str, InProcessAgent]:
    hosts = {h: ctl.agent(h, "eth1", "eth2", "eth9") for h in ("h1", "h2", "h3", "h4")}
    up(ctl, *hosts)
    return hosts


def test_a_ring_takes_one_path_and_reroutes_around_a_host_that_goes_down(
        ctl: Running) -> None:
    hosts = ring(ctl)
    revision = configure(ctl, RING, [("10.93.0.0/24", "h3", "eth9")])
    converged(ctl, revision)
    assert hosts["h1"].routes() == {"10.93.0.0/24": [("10.0.12.2", "eth1")]}  # lowest id
    hosts["h2"].stop()
    stub = ctl.stub()
    wait_for(lambda: not host_up(stub, "h2"), "h2 down")
    wait_for(lambda: hosts["h1"].routes() == {"10.93.0.0/24": [("10.0.41.4", "eth2")]},
             "h1 rerouted through h4")
    assert hosts["h4"].routes() == {"10.93.0.0/24": [("10.0.34.3", "eth1")]}


def test_under_multipath_a_ring_gives_the_far_host_both_paths_and_flows_keep_one_leg(
        ctl: Running) -> None:
    hosts = ring(ctl)
    stub = ctl.stub()
    stub.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=MULTIPATH), timeout=10)
    revision = configure(ctl, [*RING, ("h1", "eth9", "10.91.0.1/24")],
                         [("10.93.0.0/24", "h3", "eth9"), ("10.91.0.0/24", "h1", "eth9")])
    converged(ctl, revision)
    assert hosts["h1"].routes() == {"10.93.0.0/24": [("10.0.12.2", "eth1"),
                                                     ("10.0.41.4", "eth2")]}
    assert hosts["h2"].routes()["10.93.0.0/24"] == [("10.0.23.3", "eth2")]  # one hop
    status = stub.GetHostStatus(pb.GetHostStatusRequest(host="h1"), timeout=10)
    assert {i.key: i.state for i in status.items}["route/10.93.0.0/24"] == \
        pb.ITEM_STATE_APPLIED
    ctl.controller.stop()  # the engines hold still from here on
    for agent in hosts.values():
        agent.stop()
    legs = flow_legs(hosts, ports=range(40000, 40016), rounds=3)
    assert all(len(seen) == 1 for seen in legs.values()), legs  # never split, never moved
    assert {leg for seen in legs.values() for leg in seen} == {"link12", "link41"}


def test_routes_to_an_owner_that_goes_down_are_withdrawn_and_come_back(ctl: Running) -> None:
    hosts = ring(ctl)
    revision = configure(ctl, RING, [("10.93.0.0/24", "h3", "eth9")])
    converged(ctl, revision)
    hosts["h3"].stop()
    wait_for(lambda: all(hosts[h].routes() == {} for h in ("h1", "h2", "h4")),
             "no route to a prefix whose only owner is down")
    again = ctl.agent("h3", "eth1", "eth2", "eth9")
    wait_for(lambda: hosts["h1"].routes() == {"10.93.0.0/24": [("10.0.12.2", "eth1")]},
             "the route back once h3 is up")
    assert again.aliases()["eth9/10.93.0.1"] == "10.93.0.1/24"


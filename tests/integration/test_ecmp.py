"""A two-leg multipath route through vrc-agent: each flow stays on one leg, both legs carry.

Topology (kernel everywhere but R)::

    H: h0 10.0.0.2 ── ra  R (vrc-agent)  r1 ── k1a K1 (kernel) k1b ── d1 10.3.0.2
       default via         10.0.0.1      r2 ── k2a K2 (kernel) k2b ── d2 10.4.0.2  D
       10.0.0.1            10.1.0.1 / 10.2.0.1                        lo 10.9.0.1/32

The agent routes 10.9.0.0/24 over two legs (10.1.0.2 on r1, 10.2.0.2 on r2)
set through AddRoute with next_hops. D records on which of d1/d2 each
datagram of each UDP and TCP flow arrived (flows.py): every flow must
arrive on one leg only, and both legs must carry flows. The flows' ports
are fixed, so the outcome of the hash is the same on every run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import AgentProc, Topology, ping
from tests.netns import Lab, LabError, Netns, require_root_and_tools, wait_until
from vrc.v1 import agent_pb2, types_pb2

FLOWS = Path(__file__).with_name("flows.py")
UDP_PORTS = list(range(40000, 40010))
TCP_PORTS = list(range(41000, 41008))
COUNT = 15


@dataclass
class Legs:
    lab: Lab
    h: Netns
    d: Netns
    agent: AgentProc
    r1: str
    r2: str
    d1: str
    d2: str


def kernel_router(ns: Netns) -> None:
    ns.sysctl("net.ipv4.ip_forward", "1")
    for key in ("all", "default"):
        ns.sysctl(f"net.ipv4.conf.{key}.rp_filter", "0")


@pytest.fixture
def legs(lab: Lab) -> Iterator[Legs]:
    require_root_and_tools(("ip", "ping"))
    h, r, k1, k2, d = (lab.netns(n) for n in ("h", "r", "k1", "k2", "d"))
    h0, ra = lab.veth(h, "h0", r, "ra")
    r1, k1a = lab.veth(r, "r1", k1, "k1a")
    r2, k2a = lab.veth(r, "r2", k2, "k2a")
    k1b, d1 = lab.veth(k1, "k1b", d, "d1")
    k2b, d2 = lab.veth(k2, "k2b", d, "d2")
    h.ip("addr", "add", "10.0.0.2/24", "dev", h0)
    h.ip("route", "add", "default", "via", "10.0.0.1")
    for ns, inside, outside, near, far, back in (
            (k1, k1a, k1b, "10.1.0.2/24", "10.3.0.1/24", "10.1.0.1"),
            (k2, k2a, k2b, "10.2.0.2/24", "10.4.0.1/24", "10.2.0.1")):
        kernel_router(ns)
        ns.ip("addr", "add", near, "dev", inside)
        ns.ip("addr", "add", far, "dev", outside)
        ns.ip("route", "add", "10.0.0.0/24", "via", back)
        ns.ip("route", "add", "10.9.0.0/24", "via", far.replace(".1/24", ".2"))
    kernel_router(d)
    for ifname in (d1, d2):
        d.sysctl(f"net.ipv4.conf.{ifname}.rp_filter", "0")
    d.ip("addr", "add", "10.3.0.2/24", "dev", d1)
    d.ip("addr", "add", "10.4.0.2/24", "dev", d2)
    d.ip("addr", "add", "10.9.0.1/32", "dev", "lo")
    d.ip("route", "add", "10.0.0.0/24", "via", "10.3.0.1")  # one way back: fine
    for ns, ifname in ((h, h0), (k1, k1a), (k2, k2a), (d, d1), (d, d2)):
        ns.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "1")
    topo = Topology(lab, h, r, d, h0, ra, r1, d1)
    agent = AgentProc(topo, interfaces=(ra, r1, r2))
    try:
        agent.alias(ra, "10.0.0.1/24")
        agent.alias(r1, "10.1.0.1/24")
        agent.alias(r2, "10.2.0.1/24")
        yield Legs(lab, h, d, agent, r1, r2, d1, d2)
    finally:
        agent.cleanup()


def add_two_leg_route(agent: AgentProc, r1: str, r2: str) -> types_pb2.Route:
    request = agent_pb2.AddRouteRequest(prefix="10.9.0.0/24", next_hops=[
        types_pb2.RouteNextHop(gateway="10.1.0.2", ifname=r1),
        types_pb2.RouteNextHop(gateway="10.2.0.2", ifname=r2)])
    route: types_pb2.Route = agent.stub.AddRoute(request, timeout=10).route
    return route


def test_flows_keep_their_leg_and_both_legs_carry_traffic(legs: Legs) -> None:
    route = add_two_leg_route(legs.agent, legs.r1, legs.r2)
    assert [hop.ifname for hop in route.next_hops] == [legs.r1, legs.r2]
    wait_until(lambda: ping(legs.h, "10.9.0.1", count=1, timeout=3).returncode == 0, 20.0, 0.2,
               "10.9.0.1 to answer through the agent")
    sink = subprocess.Popen(legs.d.argv(sys.executable, str(FLOWS), "sink", "60"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    legs.lab.processes.append(sink)  # type: ignore[arg-type]
    assert sink.stdout is not None
    assert json.loads(sink.stdout.readline()) == {"ready": True}
    legs.h.run(sys.executable, str(FLOWS), "send", "10.9.0.1",
               ",".join(map(str, UDP_PORTS)), ",".join(map(str, TCP_PORTS)), str(COUNT),
               timeout=60)
    try:
        out, _ = sink.communicate("stop\n", timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise LabError("the flow sink did not report") from exc
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not reports:
        raise LabError(f"the flow sink printed nothing: {out!r}")
    arrivals: dict[tuple[int, int], set[str]] = {}
    for proto, sport, ifname in reports[-1]["flows"]:
        arrivals.setdefault((proto, sport), set()).add(ifname)
    expected = {(17, p) for p in UDP_PORTS} | {(6, p) for p in TCP_PORTS}
    assert set(arrivals) == expected, f"flows not seen: {expected - set(arrivals)}"
    split = {flow: legs_seen for flow, legs_seen in arrivals.items() if len(legs_seen) != 1}
    assert not split, f"flows seen on both legs: {split}"
    used = {next(iter(s)) for s in arrivals.values()}
    assert used == {legs.d1, legs.d2}, f"legs used: {used}"
    counts = {flow: len([r for r in reports[-1]["flows"] if (r[0], r[1]) == flow])
              for flow in expected}
    assert min(counts[(17, p)] for p in UDP_PORTS) == COUNT  # every datagram arrived

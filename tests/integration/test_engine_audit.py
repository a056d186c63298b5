"""The engine's audit fixes (issue 11) against the Linux kernel as the peer.

* a fresh alias answers ping at once (no RFC 5227 probing unless asked for);
* an alias that asks for probes is held back until they are done;
* ``ping -s 3000`` to the router is answered (reassembly for local delivery,
  the reply fragmented), and through the router it still works (forwarded
  fragments are not reassembled);
* a scan of an on-link /16 does not disturb a neighbour in use.

Traffic stays inside the namespaces of the test's ``Lab``: A's only route is
via R, R's engine has only the two veths, and the scan's destinations exist
nowhere (R's ARP requests for them go out on the veth from R to B only).
"""

from __future__ import annotations

import re
import time

import grpc
import pytest

from tests.integration.conftest import (
    B_ADDR,
    R_A_ADDR,
    R_B_ADDR,
    AgentProc,
    Topology,
    ping,
    wait_for,
)
from vrc.v1 import agent_pb2

pytestmark = pytest.mark.integration


def test_a_fresh_alias_answers_ping_at_once(bare_agent: AgentProc, topo: Topology) -> None:
    bare_agent.alias(topo.ra, f"{R_A_ADDR}/24")
    added = time.monotonic()
    result = topo.a.run("ping", "-n", "-c", "1", "-W", "2", R_A_ADDR, check=False, timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr  # the very first ping
    assert time.monotonic() - added < 3.0


def test_an_alias_that_asks_for_probes_is_held_back_until_probed(
        bare_agent: AgentProc, topo: Topology) -> None:
    bare_agent.stub.AddAlias(agent_pb2.AddAliasRequest(ifname=topo.ra, address=f"{R_A_ADDR}/24",
                                                       probes=2), timeout=10)
    added = time.monotonic()
    early = topo.a.run("arping", "-c", "1", "-w", "1", "-I", topo.a0, R_A_ADDR,
                       check=False, timeout=10)
    assert early.returncode != 0  # still probing
    # PROBE_WAIT (<= 1 s) + 2 probes (1-2 s apart) + ANNOUNCE_WAIT (2 s) <= 7 s
    wait_for(lambda: topo.a.run("ping", "-n", "-c", "1", "-W", "1", R_A_ADDR,
                                check=False).returncode == 0, 12.0, "the probed address")
    assert time.monotonic() - added >= 3.0  # at least PROBE_MIN + ANNOUNCE_WAIT


def test_kernel_ping_of_3000_bytes_to_the_router_is_answered(agent: AgentProc,
                                                              topo: Topology) -> None:
    result = ping(topo.a, R_A_ADDR, "-s", "3000", count=3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 received" in result.stdout
    assert re.search(rf"3008 bytes from {re.escape(R_A_ADDR)}", result.stdout), result.stdout


def test_kernel_ping_of_3000_bytes_through_the_router_is_forwarded_in_fragments(
        agent: AgentProc, topo: Topology) -> None:
    result = ping(topo.a, B_ADDR, "-s", "3000", count=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 received" in result.stdout


SCAN = """
import socket, sys, time
count, rate, deadline = int(sys.argv[1]), float(sys.argv[2]), time.monotonic() + 30
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
for n in range(count):
    if time.monotonic() > deadline:
        break
    pause = start + n / rate - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    sock.sendto(b"scan", ("10.2.%d.%d" % (1 + n // 250, 1 + n % 250), 9))
"""


def _arp_news_of(agent: AgentProc, ifname: str, address: str) -> list[tuple[str, str]]:
    """Every ARP event the agent recorded about ``address`` (its event history)."""
    request = agent_pb2.WatchEventsRequest(after_seq=0, ifname=ifname,
                                           kinds=["ARP_ADDED", "ARP_CHANGED", "ARP_DELETED"])
    news: list[tuple[str, str]] = []
    try:
        for batch in agent.stub.WatchEvents(request, timeout=3.0):
            news += [(e.kind, e.data.get("state", "")) for e in batch.events
                     if e.data.get("addr") == address]
    except grpc.RpcError as exc:
        if exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    return news


def test_a_scan_of_an_on_link_slash_16_leaves_a_neighbour_in_use_alone(
        bare_agent: AgentProc, topo: Topology) -> None:
    """The engine's part is asserted exactly (the neighbour's entry is never evicted
    nor unresolved, the scan is resolved and bounded); the pings are only required to
    get through: how many survive a loaded two-core machine is timing, not a rule
    (tests/unit/engine/test_arp_scan.py proves every ping is answered)."""
    bare_agent.alias(topo.ra, f"{R_A_ADDR}/24")
    bare_agent.alias(topo.rb, f"{R_B_ADDR}/16")  # B (10.2.0.2) is on it; nobody else is
    assert ping(topo.a, B_ADDR, count=1).returncode == 0  # B resolved and in use
    before = _arp_news_of(bare_agent, topo.rb, B_ADDR)
    scanner = topo.lab.spawn(topo.a, "python3", "-c", SCAN, "3000", "1500")
    try:
        during = ping(topo.a, B_ADDR, "-i", "0.1", count=20, timeout=15.0)
        scanner.wait(timeout=40)
    finally:
        topo.lab.stop(scanner)
    assert scanner.returncode == 0
    assert during.returncode == 0, during.stdout
    news = _arp_news_of(bare_agent, topo.rb, B_ADDR)[len(before):]
    assert all(kind != "ARP_DELETED" for kind, _ in news), news
    assert all(state not in ("INCOMPLETE", "FAILED") for _, state in news), news
    entries = bare_agent.stub.ListArp(agent_pb2.ListArpRequest(ifname=topo.rb),
                                      timeout=10).entries
    assert {e.ip: e.mac for e in entries}.get(B_ADDR) == topo.b.mac(topo.b0)
    unresolved = [e for e in entries if e.ip not in (B_ADDR, R_B_ADDR) and not e.mac]
    assert 0 < len(unresolved) <= 256  # the scan is resolved, bounded (unresolved_limit)

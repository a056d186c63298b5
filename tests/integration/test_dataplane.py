"""The data-plane loop's behaviour with the kernel as the peer, not its speed.

Frames of one flow keep their order (also when some of them are super-frames
that reach the agent through the receive copy path), ARP is answered while a
flood keeps the receive ring full and so are pings to the agent's own
addresses, a lone frame leaves without waiting for a
batch to fill, an idle agent does not spin, and the loop thread runs at the
priority it asked for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import B_ADDR, R_A_ADDR, AgentProc, Topology, ping
from tests.integration.test_traffic import Peer, _run_peer
from vrc.v1 import agent_pb2

pytestmark = pytest.mark.integration

ORDER_PORT = 5610
LATE_ADDR = "10.1.0.77"  # an alias of R's added while the agent runs
BURST = 3000
SCHED_RR = 2


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_frames_of_one_flow_are_not_reordered(agent: AgentProc, topo: Topology) -> None:
    """The agent is paused (SIGSTOP) while the burst lands in its ring and copy queue,
    so it drains them in full batches: order must hold inside and across batches."""
    sink = Peer(topo, topo.b, "udp-order-sink", str(ORDER_PORT), str(BURST), "20")
    assert sink.line(10.0) == {"listening": ORDER_PORT}
    assert ping(topo.a, B_ADDR, count=1).returncode == 0  # ARP warm on both sides
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        sent = _run_peer(topo.a, "udp-order-source", B_ADDR, str(ORDER_PORT), str(BURST),
                         timeout=30)
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    seen = sink.line(30.0)["seen"]
    assert sent["sent"] == BURST
    # a burst may lose some in B's socket buffer (rmem_max caps it); enough to judge order
    assert len(seen) >= BURST // 10
    assert seen == sorted(seen)  # and never swaps two
    assert len(set(seen)) == len(seen)


def test_arp_is_answered_while_a_flood_fills_the_receive_ring(agent: AgentProc,
                                                              topo: Topology) -> None:
    """ARP has a ring of its own, read first: the kernel drops at a full ring whatever the
    frame, so with one ring a flood would starve ARP (and every neighbour would fail).
    The agent is paused while more datagrams than its ring holds land, then A asks for
    R's MAC; the request must wait in the control ring and be answered."""
    assert ping(topo.a, B_ADDR, count=1).returncode == 0  # ARP warm: the flood can leave A
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        _run_peer(topo.a, "udp-order-source", B_ADDR, str(ORDER_PORT), "20000", timeout=30)
        arping = subprocess.Popen(topo.a.argv("arping", "-c", "1", "-w", "5", "-I", topo.a0,
                                              R_A_ADDR), stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)  # the request is in R's rings (or dropped) before the agent runs
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    out, _ = arping.communicate(timeout=15)
    assert arping.returncode == 0, out
    stats = agent.stub.GetStats(agent_pb2.GetStatsRequest(), timeout=10)
    ring = next(link for link in stats.links if link.ifname == topo.ra)
    assert ring.ring_drops > 0  # the main ring was full: the request could not have fit


def test_a_ping_to_the_agent_is_answered_while_a_flood_fills_the_receive_ring(
        agent: AgentProc, topo: Topology) -> None:
    """IPv4 to the engine's own addresses has a ring of its own too (the local ring), whose
    filter follows the addresses: an alias added now is pinged while more datagrams than
    the main ring holds wait behind the paused agent. With one ring the request would
    have been dropped at the full ring, like the flood's excess."""
    agent.alias(topo.ra, f"{LATE_ADDR}/24")  # after start: the filters must follow
    assert ping(topo.a, B_ADDR, count=1).returncode == 0  # ARP warm: the flood can leave A
    assert ping(topo.a, LATE_ADDR, count=1).returncode == 0
    before = _link_stats(agent, topo.ra).receive_local_frames
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        _run_peer(topo.a, "udp-order-source", B_ADDR, str(ORDER_PORT), "20000", timeout=30)
        request = subprocess.Popen(topo.a.argv("ping", "-n", "-c", "1", "-W", "5", LATE_ADDR),
                                   stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)  # the request is in R's rings (or dropped) before the agent runs
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    out, _ = request.communicate(timeout=15)
    assert request.returncode == 0, out
    link = _link_stats(agent, topo.ra)
    assert link.ring_drops > 0  # the main ring was full: the request could not have fit
    assert link.receive_local_frames > before


def _link_stats(agent: AgentProc, ifname: str) -> agent_pb2.LinkStats:
    stats = agent.stub.GetStats(agent_pb2.GetStatsRequest(), timeout=10)
    return next(link for link in stats.links if link.ifname == ifname)


def test_a_lone_frame_is_forwarded_without_waiting_for_a_batch(agent: AgentProc,
                                                              topo: Topology) -> None:
    """One echo request, one reply: each crosses the agent alone in its batch."""
    assert ping(topo.a, B_ADDR, count=1).returncode == 0  # ARP
    for _ in range(3):
        single = topo.a.run("ping", "-n", "-c", "1", "-W", "2", B_ADDR, check=False,
                            timeout=10)
        assert single.returncode == 0, single.stdout
        assert "1 received" in single.stdout


def test_an_idle_agent_does_not_spin(agent: AgentProc, topo: Topology) -> None:
    """After traffic stops the loop sleeps in poll: over 3 idle seconds it uses almost no
    CPU (a spinning loop would use all 3)."""
    assert ping(topo.a, R_A_ADDR, count=5).returncode == 0
    time.sleep(0.5)  # past the busy-poll window and ARP's immediate work
    before = _cpu_seconds(agent.proc.pid)
    time.sleep(3.0)
    used = _cpu_seconds(agent.proc.pid) - before
    assert used < 0.15, f"idle agent used {used:.2f} s of CPU in 3 s"


def test_the_loop_thread_runs_realtime_and_the_api_threads_do_not(agent: AgentProc) -> None:
    tasks = Path(f"/proc/{agent.proc.pid}/task")
    policies = {}
    for task in tasks.iterdir():
        comm = (task / "comm").read_text().strip()
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        policies.setdefault(comm, set()).add(int(fields[38]))  # field 41: policy
    assert policies.get("vrc-dataplane") == {SCHED_RR}
    others = {p for comm, ps in policies.items() if comm != "vrc-dataplane" for p in ps}
    assert others == {0}  # SCHED_OTHER everywhere else

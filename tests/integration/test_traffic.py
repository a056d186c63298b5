"""Real TCP and UDP between kernel hosts through vrc-agent, offloads on and off.

The peers in A and B are Linux TCP/UDP stacks on veth. With the default
offloads a veth peer hands the agent frames whose L4 checksum is left to
offload (CHECKSUM_PARTIAL) and, with TSO/GSO, TCP and UDP super-frames far
larger than the MTU; the agent must pass them on so that B receives every
byte intact, in both directions. The same transfers run with every offload
switched off on all four veth ends (``ethtool -K``), and once more with the
senders' offloads on but the agent's egress veths without any, so that R's
kernel finishes what the agent hands on and the receivers (rx checksumming
off) verify every checksum. Each transfer is bounded in bytes and in time;
the peers are ``l4peer.py`` (see there).
"""

from __future__ import annotations

import json
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import A_ADDR, B_ADDR, AgentProc, Topology
from tests.netns import REQUIRED_TOOLS, LabError, Netns, require_root_and_tools, wait_until

pytestmark = pytest.mark.integration

PEER = Path(__file__).with_name("l4peer.py")
TCP_PORT, UDP_PORT = 5601, 5602
TCP_BYTES = 24 << 20  # 24 MiB each way
TRANSFER_TIMEOUT = 30.0
#: Below, at and above the 1472 bytes a 1500-byte MTU carries in one UDP datagram.
UDP_SIZES = (1, 18, 100, 512, 1000, 1400, 1471, 1472, 1473, 1480, 2000, 4000, 8972, 16000,
             65507)
OFFLOADS = ("tx", "rx", "sg", "tso", "gso", "gro")


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_root_and_tools((*REQUIRED_TOOLS, "ethtool", "iperf3"))


@pytest.fixture(params=["default-offloads", "offloads-off", "receivers-verify"])
def offloads(request: pytest.FixtureRequest, topo: Topology) -> Iterator[str]:
    """Leave the veths as the kernel made them, switch every offload off, or make the
    receivers check what the agent handed on: the senders keep their offloads (partial
    checksums, super-frames reach the agent), R's kernel must cut and checksum the
    agent's output in software (no offload on ra, rb) and A's and B's kernels verify
    every checksum (rx checksumming off)."""
    if request.param == "receivers-verify":
        for ns, ifname in ((topo.r, topo.ra), (topo.r, topo.rb)):
            ns.run("ethtool", "-K", ifname, "tx", "off", "sg", "off", "tso", "off", "gso", "off")
        for ns, ifname in ((topo.a, topo.a0), (topo.b, topo.b0)):
            ns.run("ethtool", "-K", ifname, "rx", "off")
            assert "rx-checksumming: off" in ns.run("ethtool", "-k", ifname).stdout
    if request.param == "offloads-off":
        for ns, ifname in ((topo.a, topo.a0), (topo.r, topo.ra), (topo.r, topo.rb),
                           (topo.b, topo.b0)):
            args = [word for name in OFFLOADS for word in (name, "off")]
            ns.run("ethtool", "-K", ifname, *args)
            shown = ns.run("ethtool", "-k", ifname).stdout
            assert "tcp-segmentation-offload: off" in shown
            assert "tx-checksumming: off" in shown
    yield request.param


class Peer:
    """One ``l4peer.py`` process in a namespace, read line by line (bounded)."""

    def __init__(self, topo: Topology, ns: Netns, *args: str) -> None:
        self.proc = subprocess.Popen(ns.argv("python3", str(PEER), *args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        topo.lab.processes.append(self.proc)  # type: ignore[arg-type]

    def line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise LabError(f"l4peer gave no answer within {timeout}s")
        text = self.proc.stdout.readline()
        if not text:
            self.proc.wait(5)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise LabError(f"l4peer exited {self.proc.returncode}: {err[-2000:]}")
        reply: dict[str, Any] = json.loads(text)
        return reply


def _run_peer(ns: Netns, *args: str, timeout: float) -> dict[str, Any]:
    proc = ns.run("python3", str(PEER), *args, check=False, timeout=timeout + 10)
    if proc.returncode != 0:
        raise LabError(f"l4peer {args[0]} failed: {proc.stderr[-2000:]}")
    reply: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return reply


def _tcp_transfer(topo: Topology, src: Netns, dst: Netns, dst_addr: str, seed: int
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    sink = Peer(topo, dst, "tcp-sink", str(TCP_PORT), str(TRANSFER_TIMEOUT))
    assert sink.line(10.0) == {"listening": TCP_PORT}
    try:
        sent = _run_peer(src, "tcp-source", dst_addr, str(TCP_PORT), str(TCP_BYTES), str(seed),
                         str(TRANSFER_TIMEOUT), timeout=TRANSFER_TIMEOUT)
    except LabError as exc:
        raise AssertionError(f"TCP {src.name} -> {dst_addr} failed: {exc}") from None
    got = sink.line(TRANSFER_TIMEOUT + 5)
    return sent, got


@pytest.mark.parametrize("direction", ["a-to-b", "b-to-a"])
def test_tcp_bulk_transfer_arrives_byte_for_byte(agent: AgentProc, topo: Topology,
                                                 offloads: str, direction: str) -> None:
    if direction == "a-to-b":
        sent, got = _tcp_transfer(topo, topo.a, topo.b, B_ADDR, seed=1)
    else:
        sent, got = _tcp_transfer(topo, topo.b, topo.a, A_ADDR, seed=2)
    assert got["bytes"] == TCP_BYTES == sent["bytes"]
    assert got["sha256"] == sent["sha256"]


@pytest.mark.parametrize("direction", ["a-to-b", "b-to-a"])
def test_udp_datagrams_of_every_size_come_back_intact(agent: AgentProc, topo: Topology,
                                                      offloads: str, direction: str) -> None:
    """Each datagram crosses the agent twice (to the echo and back): both directions."""
    client, server, server_addr = ((topo.a, topo.b, B_ADDR) if direction == "a-to-b"
                                   else (topo.b, topo.a, A_ADDR))
    echo = Peer(topo, server, "udp-echo", str(UDP_PORT), "60")
    assert echo.line(10.0) == {"listening": UDP_PORT}
    sizes = ",".join(str(size) for size in UDP_SIZES)
    result = _run_peer(client, "udp-probe", server_addr, str(UDP_PORT), sizes, "1.0",
                       timeout=60.0)
    assert result["wrong"] == []
    assert result["intact"] == list(UDP_SIZES)


def test_udp_gso_super_datagrams_are_cut_into_intact_datagrams(
        agent: AgentProc, topo: Topology, offloads: str) -> None:
    """UDP_SEGMENT: one send of up to 64 KiB, cut into 1200-byte datagrams by GSO."""
    echo = Peer(topo, topo.b, "udp-echo", str(UDP_PORT), "60")
    assert echo.line(10.0) == {"listening": UDP_PORT}
    sizes = (1200, 2400, 12000, 60000)
    result = _run_peer(topo.a, "udp-probe", B_ADDR, str(UDP_PORT),
                       ",".join(map(str, sizes)), "1.0", "1200", timeout=60.0)
    assert result["wrong"] == []
    assert result["intact"] == list(sizes)


def test_iperf3_tcp_runs_through_the_agent(agent: AgentProc, topo: Topology,
                                            offloads: str) -> None:
    """What a new user tries first: iperf3 between the hosts, a bounded byte count."""
    topo.lab.spawn(topo.b, "iperf3", "-s", "-1", "-p", "5603")
    wait_until(lambda: ":5603 " in topo.b.run("ss", "-ltnH").stdout, 10.0, 0.05,
               "iperf3 listening in B")
    proc = topo.a.run("iperf3", "-c", B_ADDR, "-p", "5603", "-n", "32M", "-J",
                      "--connect-timeout", "5000", check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert "error" not in report, report["error"]
    assert report["end"]["sum_sent"]["bytes"] >= 32 << 20
    # iperf3's receiver total is read when the sender says "done", with segments
    # still in flight (75-100% of the bytes here): every byte is checked by
    # test_tcp_bulk_transfer_arrives_byte_for_byte, this checks that iperf3 runs.
    assert report["end"]["sum_received"]["bytes"] > 0

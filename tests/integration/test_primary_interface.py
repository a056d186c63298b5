"""vrc-agent refuses the node's primary interface (root, in namespaces this test makes).

Namespace N plays the node: its default route leaves through veth ``n0``, and
``n1`` holds the node's address. The agent, started in N, must refuse either
one and exit non-zero with the message, and start when forced. The root
namespace is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.netns import Lab, Netns, script_argv, wait_until
from vrc.v1 import agent_pb2, agent_pb2_grpc

pytestmark = pytest.mark.integration

NODE_ADDR, GATEWAY = "10.9.0.2", "10.9.0.1"
NODE_IP = "10.8.0.2"
EXIT_TIMEOUT = 30.0


@dataclass
class Node:
    lab: Lab
    ns: Netns
    uplink: str  # holds the default route
    node_nic: str  # holds the node's address
    spare: str  # a data-plane NIC
    dir: Path


@pytest.fixture
def node(lab: Lab) -> Iterator[Node]:
    ns, peer = lab.netns("n"), lab.netns("p")
    uplink, _ = lab.veth(ns, "n0", peer, "p0")
    node_nic, _ = lab.veth(ns, "n1", peer, "p1")
    spare, _ = lab.veth(ns, "n2", peer, "p2")
    ns.ip("addr", "add", f"{NODE_ADDR}/24", "dev", uplink)
    ns.ip("route", "add", "default", "via", GATEWAY)
    ns.ip("addr", "add", f"{NODE_IP}/24", "dev", node_nic)
    directory = Path(tempfile.mkdtemp(prefix="vrcp", dir="/tmp"))
    try:
        yield Node(lab, ns, uplink, node_nic, spare, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def agent_argv(node: Node, *extra: str) -> list[str]:
    return [*script_argv("vrc-agent"), "--listen", f"unix:{node.dir / 'agent.sock'}",
            "--host-id", "n", "--arp-probes", "0", "--log-format", "json", *extra]


def run_to_exit(node: Node, *extra: str) -> tuple[int, str]:
    log = node.dir / "agent.log"
    proc = node.lab.spawn(node.ns, *agent_argv(node, *extra), log=log)
    try:
        code = proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        node.lab.stop(proc)
        raise AssertionError(f"the agent did not exit:\n{log.read_text()}") from None
    return code, log.read_text()


def test_the_interface_with_the_default_route_is_refused(node: Node) -> None:
    code, log = run_to_exit(node, "--interface", node.spare, "--interface", node.uplink)
    assert code == 1, log
    assert f"--interface {node.uplink}: refusing the node's primary interface" in log
    assert f"default route 0.0.0.0/0 via {GATEWAY}" in log
    assert "--allow-primary-interface" in log
    # refused before anything was touched: no drop filter, ARP still on
    links = node.ns.run("ip", "-o", "link", "show", "dev", node.spare).stdout
    assert "NOARP" not in links


def test_the_interface_with_the_node_ip_is_refused(node: Node) -> None:
    code, log = run_to_exit(node, "--interface", node.node_nic, "--node-ip", NODE_IP)
    assert code == 1, log
    assert f"--interface {node.node_nic}: refusing the node's primary interface" in log
    assert f"holds the node's address {NODE_IP} (--node-ip)" in log


def test_forced_primary_interface_starts_and_stops_cleanly(node: Node) -> None:
    log = node.dir / "agent.log"
    socket = node.dir / "agent.sock"
    proc = node.lab.spawn(node.ns, *agent_argv(
        node, "--interface", node.uplink, "--allow-primary-interface"), log=log)

    def serving() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"agent exited {proc.returncode}:\n{log.read_text()}")
        if not socket.exists():
            return False
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            try:
                reply = agent_pb2_grpc.AgentStub(channel).ListInterfaces(
                    agent_pb2.ListInterfacesRequest(), timeout=2)
            except grpc.RpcError:
                return False
        return node.uplink in {ifc.name for ifc in reply.interfaces}

    wait_until(serving, 20.0, 0.1, "the forced agent to serve its API")
    assert "taking the node's primary interface" in log.read_text()
    assert node.lab.stop(proc, timeout=15.0) == 0
    # stopped: isolation undone, the node's uplink is the kernel's again
    assert "NOARP" not in node.ns.run("ip", "-o", "link", "show", "dev", node.uplink).stdout

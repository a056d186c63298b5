"""Fixtures for the end-to-end tests: whole clusters built the way `vrc up` builds them.

A test gets :func:`make_cluster`, which builds a :class:`lab.up.ChainCluster`
(a chain, or a ring, of router hosts between two kernel hosts, one real
vrc-controller and one real vrc-agent per host) on an etcd of the test's own
(``tests.etcd.TestEtcd``, so a test can kill, restart or compact it), with a
short lease TTL. Everything is removed at teardown, also when the test fails
(and anything a killed run left, from its state file).

Prerequisites (root, ip, ping, the etcd binary) are checked and a missing one
is an error, never a skip. Waits are bounded polls of what the cluster shows
(``vrc hosts``, ``vrc status``, the agents' Agent API, a ping's answer).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from lab.cluster import Daemon, cli
from lab.netns import LabError, require_root_and_tools, wait_until
from lab.state import clean_run, runs
from lab.up import ChainCluster, ChainOptions
from tests.etcd import TestEtcd, running_etcd
from vrc.v1 import agent_pb2, agent_pb2_grpc

LEASE_TTL = 3.0
TOOLS = ("ip", "ping")


@pytest.fixture
def up_root() -> Iterator[Path]:
    """A state directory for the test's runs (short: Unix socket paths live in it)."""
    require_root_and_tools(TOOLS)
    root = Path(tempfile.mkdtemp(prefix="vrc-e2e-"))
    try:
        yield root
    finally:
        for directory in runs(root):
            clean_run(directory, owner_timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def etcd() -> Iterator[TestEtcd]:
    with running_etcd() as server:
        yield server


MakeCluster = Callable[..., ChainCluster]


@pytest.fixture
def make_cluster(up_root: Path, etcd: TestEtcd) -> Iterator[MakeCluster]:
    """``make_cluster(hosts=2, ring=False, configure=True)``: built, registered and, with
    ``configure``, every alias and end prefix written and applied."""
    made: list[ChainCluster] = []

    def make(hosts: int = 2, *, ring: bool = False, configure: bool = True,
             etcd_url: str | None = None, **options: Any) -> ChainCluster:
        cluster = ChainCluster(ChainOptions(
            hosts=hosts, ring=ring, root=up_root, etcd=etcd_url or etcd.url,
            lease_ttl=LEASE_TTL, **options))
        made.append(cluster)
        cluster.build()
        if configure:
            cluster.wait_converged(cluster.configure())
        return cluster

    try:
        yield make
    finally:
        for cluster in reversed(made):
            cluster.close()


def vrc(cluster: ChainCluster, *args: str, check: bool = True,
        controller: Daemon | None = None) -> Any:
    """``vrc --controller T ARGS`` (T: the cluster's controller, or ``controller``)."""
    daemon = controller or cluster.controller
    assert daemon is not None
    return cli(args, controller_target=daemon.target, tls=cluster.client_tls, check=check)


def vrc_json(cluster: ChainCluster, *args: str, controller: Daemon | None = None) -> Any:
    return json.loads(vrc(cluster, "-o", "json", *args, controller=controller).stdout)


def hosts_state(cluster: ChainCluster, controller: Daemon | None = None) -> dict[str, bool]:
    """host id -> up, as `vrc hosts` shows it."""
    listing = vrc_json(cluster, "hosts", controller=controller)
    return {host["id"]: bool(host.get("up")) for host in listing}


def agent_addresses(daemon: Daemon) -> set[str]:
    """``IFNAME A/LEN`` of every address the agent's engine holds (its Agent API)."""
    with daemon.channel() as channel:
        reply = agent_pb2_grpc.AgentStub(channel).ListInterfaces(
            agent_pb2.ListInterfacesRequest(), timeout=10)
    return {f"{ifp.name} {address.address}/{address.prefix_len}"
            for ifp in reply.interfaces for address in ifp.addresses}


def agent_routes(daemon: Daemon) -> dict[str, list[tuple[str, str]]]:
    """prefix -> [(gateway, ifname)] of the agent's gateway routes."""
    with daemon.channel() as channel:
        reply = agent_pb2_grpc.AgentStub(channel).ListRoutes(agent_pb2.ListRoutesRequest(),
                                                            timeout=10)
    found: dict[str, list[tuple[str, str]]] = {}
    for route in reply.routes:
        if route.gateway:
            hops = [(h.gateway, h.ifname) for h in getattr(route, "next_hops", [])] or \
                [(route.gateway, route.ifname)]
            found[route.prefix] = sorted(hops)
    return found


def answered(cluster: ChainCluster, source: str, address: str) -> bool:
    """One ping from end host ``source`` is answered (1 s)."""
    return cluster.ns(source).run("ping", "-n", "-q", "-c", "1", "-W", "1", address,
                                  check=False, timeout=10).returncode == 0


def wait_answered(cluster: ChainCluster, source: str, address: str, timeout: float,
                  what: str = "") -> float:
    """Bounded poll until a ping is answered; how long it took."""
    started = time.monotonic()
    wait_until(lambda: answered(cluster, source, address), timeout, 0.2,
               what or f"{source} -> {address} to answer")
    return time.monotonic() - started


def rpc_ok(call: Callable[[], Any]) -> bool:
    try:
        call()
    except grpc.RpcError:
        return False
    return True


__all__ = ["LEASE_TTL", "LabError", "MakeCluster", "agent_addresses", "agent_routes",
           "answered", "hosts_state", "rpc_ok", "vrc", "vrc_json", "wait_answered"]

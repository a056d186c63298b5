"""End to end, the control plane failing under a running cluster: the controller, etcd,
compaction, and two controllers at once. Traffic between the kernel hosts is the proof
that the data plane never depended on them; the agents' engines show that nothing was lost.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import grpc

from lab.chain import END_A
from lab.netns import wait_until
from lab.up import ChainCluster
from tests.e2e.conftest import (
    MakeCluster,
    agent_addresses,
    answered,
    hosts_state,
    rpc_ok,
    vrc,
    wait_answered,
)
from tests.etcd import TcpProxy, TestEtcd
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

SETTLE = 30.0


def keeps_answering(cluster: ChainCluster, pings: int = 5) -> bool:
    return all(answered(cluster, END_A, cluster.plan.b.ip) for _ in range(pings))


def extra_alias(cluster: ChainCluster, host: str, third_octet: int) -> tuple[str, str]:
    """(ifname, A/LEN) of an extra alias on ``host``'s first interface, in a subnet of its
    own (nothing routes through it)."""
    return cluster.plan.ports_of(host)[0].ifname, f"10.99.{third_octet}.1/24"


def has_alias(cluster: ChainCluster, host: str, ifname: str, address: str) -> bool:
    return f"{ifname} {address}" in agent_addresses(cluster.agents[host])


def test_with_the_controller_killed_traffic_flows_and_a_new_controller_resumes(
        make_cluster: MakeCluster) -> None:
    cluster = make_cluster(2)
    controller = cluster.controller
    assert controller is not None
    controller.kill()
    assert keeps_answering(cluster)  # the agents forward with what they applied
    controller.start()  # a new process on the same socket and etcd
    cluster.reconnect()
    wait_until(lambda: all(hosts_state(cluster).values()), SETTLE,
               what="both agents to register with the new controller")
    ifname, address = extra_alias(cluster, "h1", 60)
    vrc(cluster, "alias", "add", "h1", ifname, address)
    wait_until(lambda: has_alias(cluster, "h1", ifname, address), SETTLE,
               what="a write through the new controller to reach h1")
    assert keeps_answering(cluster)


def test_etcd_restarted_under_a_running_cluster(make_cluster: MakeCluster,
                                                etcd: TestEtcd) -> None:
    cluster = make_cluster(2)
    etcd.kill()
    assert keeps_answering(cluster)
    ifname, address = extra_alias(cluster, "h2", 61)
    refused = vrc(cluster, "alias", "add", "h2", ifname, address, check=False)
    assert refused.returncode == 1
    assert "UNAVAILABLE" in refused.stderr and "etcd" in refused.stderr, refused.stderr
    etcd.start()  # the same data and ports: etcd back as clients see it
    wait_until(lambda: vrc(cluster, "alias", "add", "h2", ifname, address,
                           check=False).returncode == 0, SETTLE, 0.5,
               what="a write to pass once etcd is back")
    wait_until(lambda: has_alias(cluster, "h2", ifname, address), SETTLE,
               what="the write to reach h2")
    wait_until(lambda: all(hosts_state(cluster).values()), SETTLE, what="both hosts up")
    assert keeps_answering(cluster)


def test_a_compacted_revision_makes_the_controller_resync_with_nothing_lost(
        make_cluster: MakeCluster, etcd: TestEtcd) -> None:
    proxy = TcpProxy(etcd.endpoint)
    directory = Path(tempfile.mkdtemp(prefix="vrc-e2e-c2-"))
    try:
        # the agents' controller reaches etcd through a proxy the test can cut
        cluster = make_cluster(2, etcd_url=proxy.endpoint.url)
        other = cluster.controller_daemon(directory, etcd=etcd.url, replica="other")
        other.start()
        keep_if, keep = extra_alias(cluster, "h1", 62)
        gone_if, gone = extra_alias(cluster, "h2", 63)
        for host, ifname, address in (("h1", keep_if, keep), ("h2", gone_if, gone)):
            vrc(cluster, "alias", "add", host, ifname, address)
        wait_until(lambda: has_alias(cluster, "h2", gone_if, gone), SETTLE,
                   what="h2's extra alias")

        proxy.cut()  # the agents' controller loses etcd; its streams to them stay open
        new_if, new = extra_alias(cluster, "h2", 64)
        vrc(cluster, "alias", "add", "h2", new_if, new, controller=other)
        vrc(cluster, "alias", "del", "h2", gone_if, gone.split("/")[0], controller=other)
        with other.channel() as channel:
            stub = controller_pb2_grpc.ControllerStub(channel)
            revision = stub.ListHosts(pb.ListHostsRequest(), timeout=10).revision
        etcd.client().compact(revision)
        assert keeps_answering(cluster)
        proxy.restore()  # its watch resumes at a compacted revision: it must list again

        wait_until(lambda: has_alias(cluster, "h2", new_if, new), SETTLE,
                   what="the alias written meanwhile to reach h2")
        wait_until(lambda: not has_alias(cluster, "h2", gone_if, gone), SETTLE,
                   what="the alias deleted meanwhile to leave h2")
        assert has_alias(cluster, "h1", keep_if, keep)  # nothing else lost
        assert keeps_answering(cluster)
        # and it got there by listing again, not by a watch from the compact revision
        assert "watch compacted" in (cluster.controller.log_text() if cluster.controller else "")
    finally:
        proxy.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_two_controllers_at_once_agents_on_either_writes_through_both_stay_consistent(
        make_cluster: MakeCluster, etcd: TestEtcd) -> None:
    cluster = make_cluster(2, configure=False)
    first = cluster.controller
    assert first is not None
    second = cluster.controller_daemon(cluster.directory / "controller-2",
                                       etcd=etcd.url, replica="second")
    second.start()
    cluster.agents["h2"].stop()  # h2 moves to the second controller
    cluster.agents["h2"] = cluster.agent_daemon("h2", controller_target=second.target).start()
    wait_until(lambda: all(hosts_state(cluster, second).values()), SETTLE,
               what="h2 registered with the second controller")

    writes = list(cluster.configuration())
    for index, (command, _method, _request) in enumerate(writes):
        vrc(cluster, *command.split(), controller=(first, second)[index % 2])
    for index in range(10):  # and a burst of writes racing through both
        ifname, address = extra_alias(cluster, ("h1", "h2")[index % 2], 70 + index)
        vrc(cluster, "alias", "add", ("h1", "h2")[index % 2], ifname, address,
            controller=(second, first)[index % 2])
    wait_answered(cluster, END_A, cluster.plan.b.ip, SETTLE)

    def views() -> list[tuple[object, ...]]:
        seen = []
        for daemon in (first, second):
            with daemon.channel() as channel:
                stub = controller_pb2_grpc.ControllerStub(channel)
                aliases = sorted((a.host, a.ifname, a.address) for a in stub.ListAliases(
                    pb.ListAliasesRequest(), timeout=10).aliases)
                fleet = stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=10)
                applied = tuple(stub.GetHostStatus(pb.GetHostStatusRequest(host=h),
                                                   timeout=10).applied_version
                                for h in cluster.plan.hosts)
            seen.append((tuple(aliases), fleet.hosts_up, applied))
        return seen

    def agree() -> bool:
        try:
            one, two = views()
        except grpc.RpcError:
            return False
        return one == two
    wait_until(agree, SETTLE, 0.2, what="both controllers to show the same cluster")
    aliases = views()[0][0]
    assert len(aliases) == 4 + 10
    for host in cluster.plan.hosts:
        engine = agent_addresses(cluster.agents[host])
        assert {f"{i} {a}" for h, i, a in aliases if h == host} <= engine
    assert rpc_ok(lambda: cluster.fleet())

"""End to end, the agents' side: configuration reaches them, a refusal shows, a crash heals.

Clusters are chains between two kernel hosts (``a`` and ``b``), built as
`vrc up` builds them, configured only through the controller (the CLI or the
API) and checked through what users see: `vrc hosts`, `vrc status`, each
agent's Agent API, and pings between the kernel hosts.
"""

from __future__ import annotations

import time

from lab.chain import END_A, END_B
from lab.netns import wait_until
from tests.e2e.conftest import (
    LEASE_TTL,
    MakeCluster,
    agent_addresses,
    agent_routes,
    answered,
    hosts_state,
    vrc,
    vrc_json,
    wait_answered,
)
from vrc.v1 import agent_pb2, agent_pb2_grpc
from vrc.v1 import controller_pb2 as pb

#: how long a change may take to show where it should; generous for a loaded 2-core
#: machine (the tests wait for the state, never for the time)
SETTLE = 30.0


def test_aliases_written_through_the_cli_reach_the_agents_and_traffic_flows(
        make_cluster: MakeCluster) -> None:
    cluster = make_cluster(2, configure=False)
    plan = cluster.plan
    for command, _method, _request in cluster.configuration():
        vrc(cluster, *command.split())
    for host in plan.hosts:
        wanted = {f"{p.ifname} {p.address}" for p in plan.ports_of(host)}
        wait_until(lambda h=host, w=wanted: w <= agent_addresses(cluster.agents[h]), SETTLE,
                   what=f"{host}'s aliases in its engine")
    # h1 reaches b's subnet through h2: a route the controller computed
    b_subnet = plan.segments[-1].subnet
    wait_until(lambda: b_subnet in agent_routes(cluster.agents["h1"]), SETTLE,
               what=f"h1's route to {b_subnet}")
    assert agent_routes(cluster.agents["h1"])[b_subnet] == [
        (plan.segments[1].right.ip, plan.segments[1].left.ifname)]
    wait_answered(cluster, END_A, plan.b.ip, SETTLE)
    assert cluster.ping(END_B, plan.a.ip).ok

    # a deletion through the API is applied too: h2 loses b's side, and with it the path
    port = plan.ports_of("h2")[-1]
    cluster.stub.DeleteAlias(pb.DeleteClusterAliasRequest(
        host="h2", ifname=port.ifname, address=port.ip), timeout=10)
    wait_until(lambda: f"{port.ifname} {port.address}" not in agent_addresses(
        cluster.agents["h2"]), SETTLE, what="the deleted alias to leave h2's engine")
    wait_until(lambda: not answered(cluster, END_A, plan.b.ip), SETTLE,
               what="a -> b to stop once h2 has no address on b's segment")
    vrc(cluster, "alias", "add", "h2", port.ifname, port.address)
    wait_answered(cluster, END_A, plan.b.ip, SETTLE)


def test_a_nacked_item_shows_in_status_and_the_rest_of_the_slice_applies(
        make_cluster: MakeCluster) -> None:
    cluster = make_cluster(1)
    plan = cluster.plan
    port = plan.ports_of("h1")[0]
    # configured on the host itself, through its Agent API: the agent keeps it, so the
    # controller's alias for the same address cannot be applied
    with cluster.agents["h1"].channel() as channel:
        agent_pb2_grpc.AgentStub(channel).AddAlias(agent_pb2.AddAliasRequest(
            ifname=port.ifname, address="10.99.40.1/24"), timeout=10)
    vrc(cluster, "alias", "add", "h1", port.ifname, "10.99.40.1/16")
    vrc(cluster, "alias", "add", "h1", port.ifname, "10.99.41.1/24")  # this one applies

    def failed() -> list[dict[str, str]]:
        status = vrc_json(cluster, "status", "h1")
        return [item for item in status.get("items", []) if item.get("state") ==
                "ITEM_STATE_FAILED"]

    wait_until(lambda: bool(failed()), SETTLE, what="h1's refused alias in its status")
    [item] = failed()
    assert item["key"] == f"alias/{port.ifname}/10.99.40.1"
    assert item.get("error") and item.get("code")
    text = vrc(cluster, "status", "h1").stdout
    assert "failed" in text and "10.99.40.1" in text, text
    assert f"{port.ifname} 10.99.41.1/24" in agent_addresses(cluster.agents["h1"])
    assert f"{port.ifname} 10.99.40.1/24" in agent_addresses(cluster.agents["h1"])  # local
    assert cluster.ping(END_A, plan.b.ip).ok  # the rest of the slice still forwards


def test_a_killed_agent_is_down_within_the_lease_ttl_and_comes_back_with_its_state(
        make_cluster: MakeCluster) -> None:
    cluster = make_cluster(2)
    plan = cluster.plan
    h2 = cluster.agents["h2"]
    before = (agent_addresses(h2), agent_routes(h2))
    killed = time.monotonic()
    h2.kill()
    wait_until(lambda: not hosts_state(cluster)["h2"], LEASE_TTL + 10, 0.1,
               what="h2 to show down")
    print(f"h2 down {time.monotonic() - killed:.2f} s after SIGKILL (lease TTL {LEASE_TTL:g})")
    assert hosts_state(cluster)["h1"]
    assert not answered(cluster, END_A, plan.b.ip)  # h2 forwards nothing while it is dead

    h2.start()  # the same command line: nothing is configured by hand
    wait_until(lambda: hosts_state(cluster)["h2"], SETTLE, what="h2 to show up again")
    wait_until(lambda: (agent_addresses(h2), agent_routes(h2)) == before, SETTLE,
               what="h2's aliases and routes as they were")
    wait_answered(cluster, END_A, plan.b.ip, SETTLE)
    status = vrc_json(cluster, "status", "h2")
    assert status.get("up") and not [i for i in status.get("items", [])
                                     if i.get("state") == "ITEM_STATE_FAILED"]

"""End to end on a ring: a host on the path goes down and traffic takes the other way round.

Four router hosts in a ring, ``a`` on h1 and ``b`` on h3, so two paths of the
same length join the ends (through h2 or through h4). The controller's
routes pick one; when the agent of the host on it dies, the controller sees
the host down and computes the routes around it.
"""

from __future__ import annotations

from lab.chain import END_A
from lab.netns import wait_until
from tests.e2e.conftest import MakeCluster, hosts_state, wait_answered

SETTLE = 30.0


def test_a_host_in_the_middle_of_a_ring_goes_down_and_traffic_reroutes_the_other_way(
        make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4, ring=True)
    plan = cluster.plan
    b = plan.b.ip
    wait_answered(cluster, END_A, b, SETTLE)
    names = {port.ip: port.node for seg in plan.segments for port in (seg.left, seg.right)}
    path = [names.get(hop, hop) for hop in cluster.hops(END_A, b)]
    assert path[0] == "h1" and path[2] == "h3", path
    middle = path[1]
    assert middle in ("h2", "h4"), path
    other = "h4" if middle == "h2" else "h2"

    cluster.agents[middle].kill()
    wait_until(lambda: not hosts_state(cluster)[middle], SETTLE, what=f"{middle} down")
    took = wait_answered(cluster, END_A, b, SETTLE, what=f"a -> b around {middle}")
    print(f"rerouted around {middle} {took:.2f} s after it showed down")
    rerouted = [names.get(hop, hop) for hop in cluster.hops(END_A, b)]
    assert rerouted[:3] == ["h1", other, "h3"], rerouted

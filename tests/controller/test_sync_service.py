"""The Sync service end to end: a real etcd, a real controller, agents in this process.

Agents are real Sync clients driving real engines (InProcessAgent) or, where a
test must see exactly what went over the wire, a raw peer (RawAgent). Every
wait is for a protocol event or a state, bounded; none decides on elapsed time.
"""

from __future__ import annotations

import grpc
import pytest

from controller.store import Store
from tests.controller.sync_support import (
    RawAgent,
    Running,
    host_up,
    sync_controller,
    wait_for,
)
from tests.etcd import TestEtcd
from vrc.v1 import controller_pb2 as pb


@pytest.fixture
def ctl(etcd: TestEtcd) -> Running:
    with sync_controller(etcd) as running:
        yield running  # type: ignore[misc]


def put_alias(stub: object, host: str, ifname: str, address: str) -> int:
    return int(stub.PutAlias(pb.PutAliasRequest(  # type: ignore[attr-defined]
        alias=pb.Alias(host=host, ifname=ifname, address=address)), timeout=10).revision)


def states(stub: object, host: str) -> dict[str, tuple[int, str]]:
    status = stub.GetHostStatus(pb.GetHostStatusRequest(host=host), timeout=10)  # type: ignore
    return {i.key: (i.state, i.code) for i in status.items}


# --- registration ------------------------------------------------------------------------


def test_an_agents_first_stream_creates_its_host_with_nics_endpoint_and_liveness(
        ctl: Running) -> None:
    stub = ctl.stub()
    ctl.agent("h9", "eth1", "eth2")
    wait_for(lambda: host_up(stub, "h9"), "h9 registered and up")
    host = stub.GetHost(pb.GetHostRequest(id="h9"), timeout=10)
    assert [n.name for n in host.nics] == ["eth1", "eth2"]
    assert all(n.mac and n.mtu == 1500 for n in host.nics)
    assert host.agent_endpoint == "sim:h9"
    assert host.controller == ctl.controller.options.replica_id
    assert host.software_version


# --- versions ----------------------------------------------------------------------------


def test_a_snapshot_then_updates_reach_only_the_host_they_are_for(ctl: Running) -> None:
    stub = ctl.stub()
    h1, h2 = ctl.agent("h1", "eth1"), ctl.agent("h2", "eth1")
    wait_for(lambda: host_up(stub, "h1") and host_up(stub, "h2"), "both up")
    revision = put_alias(stub, "h1", "eth1", "10.0.1.1/24")
    assert h1.client.wait_applied(revision, 20)
    assert h1.aliases() == {"eth1/10.0.1.1": "10.0.1.1/24"}
    assert h2.aliases() == {}
    revision = put_alias(stub, "h1", "eth1", "10.0.1.1/16")  # a replacement
    assert h1.client.wait_applied(revision, 20)
    assert h1.aliases() == {"eth1/10.0.1.1": "10.0.1.1/16"}
    revision = stub.DeleteAlias(pb.DeleteClusterAliasRequest(
        host="h1", ifname="eth1", address="10.0.1.1"), timeout=10).revision
    assert h1.client.wait_applied(revision, 20)
    assert h1.aliases() == {}
    wait_for(lambda: stub.GetHostStatus(pb.GetHostStatusRequest(host="h1"),
                                        timeout=10).applied_version >= revision,
             "h1's status at the last version")
    assert set(states(stub, "h1")) == {"policy"}


def test_versions_are_etcd_revisions_and_the_policy_reaches_every_host(ctl: Running) -> None:
    stub = ctl.stub()
    agents = [ctl.agent(h, "eth1") for h in ("h1", "h2", "h3")]
    wait_for(lambda: all(host_up(stub, a.host_id) for a in agents), "all up")
    revision = stub.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=3), timeout=10).revision
    for agent in agents:
        assert agent.client.wait_applied(revision, 20)
        assert agent.client.version == revision
        assert agent.policy() == "multipath"


def test_a_nacked_item_shows_failed_is_not_resent_and_the_rest_is_applied(
        ctl: Running) -> None:
    stub = ctl.stub()
    stub.AddHost(pb.AddHostRequest(id="r1"), timeout=10)
    raw = RawAgent(ctl.target, "r1", nics=("eth1", "eth2"))
    try:
        first = raw.wait_version(1)
        raw.ack(first.version)
        bad = put_alias(stub, "r1", "eth1", "10.0.0.1/24")
        message = raw.wait_version(bad)
        item = next(i for i in message.upserts if i.key == "alias/eth1/10.0.0.1")
        raw.ack(bad, (item.key, "EEXIST", item.fingerprint))
        good = put_alias(stub, "r1", "eth2", "10.0.2.1/24")
        raw.wait_version(good)
        # an ACK states the whole slice: the item still failing is named again
        raw.ack(good, (item.key, "EEXIST", item.fingerprint))
        wait_for(lambda: states(stub, "r1").get("alias/eth2/10.0.2.1", (0, ""))[0]
                 == pb.ITEM_STATE_APPLIED, "the good item applied")
        assert states(stub, "r1")["alias/eth1/10.0.0.1"] == (pb.ITEM_STATE_FAILED, "EEXIST")
        status = stub.GetHostStatus(pb.GetHostStatusRequest(host="r1"), timeout=10)
        failed = next(i for i in status.items if i.key == item.key)
        assert "refused (EEXIST)" in failed.error
        assert raw.keys_sent().count(item.key) == 1  # never sent again
        changed = put_alias(stub, "r1", "eth1", "10.0.0.1/25")  # until it changes
        resent = raw.wait_version(changed)
        assert [i.key for i in resent.upserts] == [item.key]
        assert resent.upserts[0].fingerprint != item.fingerprint
        raw.ack(changed)
        wait_for(lambda: states(stub, "r1")[item.key][0] == pb.ITEM_STATE_APPLIED,
                 "the changed item applied")
    finally:
        raw.close()


def test_a_local_conflict_is_nacked_with_its_reason_and_the_valid_items_applied(
        ctl: Running) -> None:
    stub = ctl.stub()
    h1 = ctl.agent("h1", "eth1", "eth2")
    h1.gate.call(lambda e: e.add_alias("eth2", "10.5.0.1/16"))  # through the Agent API
    wait_for(lambda: host_up(stub, "h1"), "h1 up")
    put_alias(stub, "h1", "eth2", "10.5.0.1/24")
    revision = put_alias(stub, "h1", "eth1", "10.0.1.1/24")
    assert h1.client.wait_applied(revision, 20)
    assert h1.aliases() == {"eth1/10.0.1.1": "10.0.1.1/24", "eth2/10.5.0.1": "10.5.0.1/16"}
    wait_for(lambda: states(stub, "h1").get("alias/eth2/10.5.0.1") ==
             (pb.ITEM_STATE_FAILED, "EEXIST"), "the conflict in status")
    status = stub.GetHostStatus(pb.GetHostStatusRequest(host="h1"), timeout=10)
    assert [i.key for i in status.local_items] == ["alias/eth2/10.5.0.1"]
    assert states(stub, "h1")["alias/eth1/10.0.1.1"][0] == pb.ITEM_STATE_APPLIED


# --- reconnects --------------------------------------------------------------------------


def test_a_controller_restart_keeps_every_alias_on_the_agent(etcd: TestEtcd) -> None:
    with sync_controller(etcd) as first:
        root, directory = first.root, first.directory
        stub = first.stub()
        agent = first.agent("h1", "eth1")
        first.agents.clear()  # the agent outlives this controller
        wait_for(lambda: host_up(stub, "h1"), "h1 up")
        revision = 0
        for n in range(1, 6):
            revision = put_alias(stub, "h1", "eth1", f"10.0.{n}.1/24")
        assert agent.client.wait_applied(revision, 20)
        seq = agent.gate.events.last_seq
    try:
        assert len(agent.aliases()) == 5  # forwarding state kept while no controller runs
        with sync_controller(etcd, root=root, directory=directory) as second:
            stub = second.stub()
            wait_for(lambda: agent.client.stats.sessions >= 2 and agent.client.connected,
                     "the agent redialled")
            revision = put_alias(stub, "h1", "eth1", "10.0.9.1/24")
            assert agent.client.wait_applied(revision, 20)
            assert len(agent.aliases()) == 6
            events, _ = agent.gate.events.read_after(seq, 100_000)
            removed = [e for e in events if e.kind.value == "RTM_DELADDR"]
            assert removed == []  # nothing was flushed and re-added
    finally:
        agent.stop()


def test_an_agent_restarted_with_the_controller_down_comes_back_from_its_state_dir(
        etcd: TestEtcd, tmp_path: object) -> None:
    state_dir = str(tmp_path)
    with sync_controller(etcd) as ctl:
        root, directory = ctl.root, ctl.directory
        stub = ctl.stub()
        agent = ctl.agent("h1", "eth1", state_dir=state_dir)
        wait_for(lambda: host_up(stub, "h1"), "h1 up")
        revision = put_alias(stub, "h1", "eth1", "10.0.1.1/24")
        assert agent.client.wait_applied(revision, 20)
    # the controller is gone; the agent process is restarted
    from agents.sync.sim import InProcessAgent

    again = InProcessAgent("h1", f"unix:{directory}/c.sock", interfaces=("eth1",),
                           state_dir=state_dir, backoff_initial=0.05, backoff_max=0.5)
    again.start()
    try:
        assert again.aliases() == {"eth1/10.0.1.1": "10.0.1.1/24"}
        assert again.client.version == revision
        with sync_controller(etcd, root=root, directory=directory) as back:
            stub = back.stub()
            wait_for(lambda: again.client.connected, "reconnected")
            revision = put_alias(stub, "h1", "eth1", "10.0.2.1/24")
            assert again.client.wait_applied(revision, 20)
            assert set(again.aliases()) == {"eth1/10.0.1.1", "eth1/10.0.2.1"}
    finally:
        again.stop()


def test_a_stream_that_falls_behind_is_cut_off_and_resynced(etcd: TestEtcd) -> None:
    with sync_controller(etcd, sync_queue_limit=0) as ctl:  # every update overflows
        stub = ctl.stub()
        agent = ctl.agent("h1", "eth1")
        wait_for(lambda: host_up(stub, "h1"), "h1 up")
        revision = put_alias(stub, "h1", "eth1", "10.0.1.1/24")
        assert agent.client.wait_applied(revision, 20)  # through a resync snapshot
        assert agent.aliases() == {"eth1/10.0.1.1": "10.0.1.1/24"}
        assert ctl.controller.sync is not None and ctl.controller.sync.stats.cut_off >= 1
        assert "RESOURCE_EXHAUSTED" in agent.client.stats.last_error


# --- liveness ----------------------------------------------------------------------------


def test_a_host_goes_down_when_its_agent_goes_and_up_again_when_it_returns(
        ctl: Running) -> None:
    stub = ctl.stub()
    agent = ctl.agent("h1", "eth1")
    wait_for(lambda: host_up(stub, "h1"), "h1 up")
    agent.stop()
    wait_for(lambda: not host_up(stub, "h1"), "h1 down")
    assert stub.GetHostStatus(pb.GetHostStatusRequest(host="h1"), timeout=10).up is False
    agent.client = type(agent.client)(agent.gate, agent.client.config)
    agent.start()
    wait_for(lambda: host_up(stub, "h1"), "h1 up again")


def test_liveness_hangs_on_a_lease_of_the_configured_ttl_and_config_on_none(
        ctl: Running) -> None:
    stub = ctl.stub()
    ctl.agent("h1", "eth1")
    wait_for(lambda: host_up(stub, "h1"), "h1 up")
    put_alias(stub, "h1", "eth1", "10.0.1.1/24")
    store: Store = ctl.controller.store  # type: ignore[assignment]
    leased = {kv.key: kv.lease for kv in store.etcd.get_prefix(ctl.root).kvs}
    live_key = store.keys.live("h1")
    assert leased[live_key] != 0
    assert [k for k, lease in leased.items() if lease and k != live_key] == []

    from pyetcd import etcdrpc

    ttl = store.etcd.call(lambda c: etcdrpc.LeaseStub(c.channel).LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=leased[live_key]), timeout=10,
        metadata=c.metadata)).grantedTTL
    assert ttl == 2


# --- status ------------------------------------------------------------------------------


def test_the_fleet_watermark_follows_the_slowest_live_host(ctl: Running) -> None:
    stub = ctl.stub()
    agents = [ctl.agent(h, "eth1") for h in ("h1", "h2")]
    wait_for(lambda: all(host_up(stub, a.host_id) for a in agents), "both up")
    revision = put_alias(stub, "h1", "eth1", "10.0.1.1/24")
    assert agents[0].client.wait_applied(revision, 20)

    def fleet() -> pb.FleetStatus:
        return stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=10)

    wait_for(lambda: fleet().watermark >= revision, "the watermark at the last write")
    assert fleet().hosts_up == 2 and list(fleet().lagging) == []
    assert fleet().watermark_at > 0


def test_streams_beyond_the_budget_are_refused_and_unary_calls_still_answer(
        etcd: TestEtcd) -> None:
    with sync_controller(etcd, max_sync_streams=1, max_sync_streams_per_client=1) as ctl:
        stub = ctl.stub()
        stub.AddHost(pb.AddHostRequest(id="r2"), timeout=10)
        first = RawAgent(ctl.target, "r1")
        second = RawAgent(ctl.target, "r2")
        try:
            first.wait_version(1)
            second.wait(lambda _: second.error is not None, "the second stream refused")
            assert second.error is not None
            assert second.error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "Sync streams" in (second.error.details() or "")
            assert len(stub.ListHosts(pb.ListHostsRequest(), timeout=5).hosts) == 2
        finally:
            first.close()
            second.close()


def test_a_second_stream_of_the_same_host_replaces_the_first(ctl: Running) -> None:
    first = RawAgent(ctl.target, "r1")
    try:
        first.wait_version(1)
        second = RawAgent(ctl.target, "r1")
        try:
            second.wait_version(1)
            first.wait(lambda _: first.error is not None, "the first stream ended")
            assert first.error is not None
            assert "superseded" in (first.error.details() or "")
        finally:
            second.close()
    finally:
        first.close()


def test_many_ack_only_agents_each_get_their_change_and_the_fleet_catches_up(
        ctl: Running) -> None:
    from agents.sync.sim import AckingAgent

    stub = ctl.stub()
    agents = [AckingAgent(f"a{n}", ctl.target) for n in range(30)]
    try:
        wait_for(lambda: all(host_up(stub, a.host_id) for a in agents), "all 30 up")
        revisions = {a.host_id: put_alias(stub, a.host_id, "eth1", f"10.1.{n}.1/24")
                     for n, a in enumerate(agents)}
        for agent in agents:
            assert agent.wait_version(revisions[agent.host_id], 20) is not None, agent.error
        policy = int(stub.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=2),
                                    timeout=10).revision)  # every host's slice changes
        assert all(a.wait_version(policy, 20) is not None for a in agents)
        wait_for(lambda: stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=10)
                 .watermark >= policy, "the fleet at the policy change")
    finally:
        for agent in agents:
            agent.stop()


# --- message sizes -------------------------------------------------------------------------


def test_an_agent_with_thousands_of_local_items_registers_and_reports_them(
        ctl: Running) -> None:
    """Its hello lists every local item (~130 KiB here): more than a unary request may be,
    far less than a Sync message may (the controller refused it and the agent redialled
    for ever while the server's one receive limit was the unary 64 KiB)."""
    stub = ctl.stub()
    agent = ctl.agent("h1", "eth1")
    count = 2000
    agent.gate.call(lambda e: [e.add_alias("eth1", f"10.{64 + n // 250}.{n % 250}.1/30")
                               for n in range(count)])
    agent.stop()
    again = ctl.agent("h1", "eth1", engine=agent.engine)  # a hello with all of them
    wait_for(lambda: again.client.connected, "the agent with 2,000 local items connected")
    revision = put_alias(stub, "h1", "eth1", "10.0.1.1/24")
    assert again.client.wait_applied(revision, 20)
    status = stub.GetHostStatus(pb.GetHostStatusRequest(host="h1"), timeout=10)
    assert len(status.local_items) == count
    assert again.client.stats.last_error == ""


def test_a_unary_request_over_64_kib_is_refused_naming_method_size_and_limit(
        ctl: Running) -> None:
    stub = ctl.stub()
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddHost(pb.AddHostRequest(id="h" * 70_000), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = caught.value.details()
    assert "vrc.v1.Controller/AddHost" in details and "65536 bytes" in details
    assert stub.ListHosts(pb.ListHostsRequest(), timeout=10).hosts == []  # nothing written

"""vrc --controller: ``status`` output and ``--host H`` command lines (no controller needed)."""

from __future__ import annotations

from cli import status, through
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import types_pb2 as tpb


def test_an_inspection_command_with_host_goes_to_that_hosts_agent() -> None:
    found = through.split(["--controller", "unix:/c.sock", "--host", "h1", "-o", "json",
                           "--timeout", "3", "routes"])
    assert found is not None and found.host == "h1"
    assert found.controller_argv == ["--controller", "unix:/c.sock", "-o", "json",
                                     "--timeout", "3"]
    assert found.agent_argv == ["-o", "json", "--timeout", "3", "routes"]
    found = through.split(["--controller=unix:/c.sock", "--host=h2", "capture", "eth1",
                           "-c", "3", "-w", "x.pcap"])
    assert found is not None
    assert (found.host, found.agent_argv) == ("h2", ["capture", "eth1", "-c", "3", "-w",
                                                     "x.pcap"])


def test_the_clusters_own_commands_and_changes_never_go_through() -> None:
    assert through.split(["--controller", "unix:/c.sock", "alias", "ls", "--host", "h1"]) is None
    assert through.split(["--controller", "unix:/c.sock", "--host", "h1", "alias", "add",
                          "eth1", "10.0.0.1/24"]) is None
    assert through.split(["--controller", "unix:/c.sock", "routes"]) is None
    assert through.split(["--controller", "unix:/c.sock", "--host"]) is None


def test_host_status_shows_every_item_its_state_and_the_agents_error() -> None:
    text = status.host_text(pb.HostStatus(
        host="h1", up=True, applied_version=40, desired_version=42, controller="c1",
        agent_endpoint="unix:/run/vrc/agent.sock", applied_at=0, items=[
            pb.ItemStatus(key="alias/eth1/10.0.0.1", state=pb.ITEM_STATE_APPLIED, version=30),
            pb.ItemStatus(key="alias/eth2/10.5.0.1", state=pb.ITEM_STATE_FAILED, version=31,
                          code="EEXIST", error="configured locally"),
            pb.ItemStatus(key="route/10.9.0.0/16", state=pb.ITEM_STATE_PENDING, version=42)],
        local_items=[pb.SyncItem(key="alias/eth2/10.5.0.1", alias=pb.Alias(
            ifname="eth2", address="10.5.0.1/16")), pb.SyncItem(
                key="policy", policy=tpb.POLICY_REFUSE)]))
    assert "host h1: up on c1" in text
    assert "applied version 40 of 42 (last acknowledged never); 1 applied, 1 failed, " \
           "1 pending" in text
    assert "alias/eth2/10.5.0.1  failed   31       EEXIST: configured locally" in text
    assert "route/10.9.0.0/16    pending  42" in text
    assert "alias/eth2/10.5.0.1: alias 10.5.0.1/16 on eth2" in text
    assert "policy: same-prefix policy refuse" in text


def test_fleet_status_shows_the_watermark_and_a_line_per_host() -> None:
    fleet = pb.FleetStatus(watermark=40, revision=42, hosts_up=2, hosts_down=1,
                           lagging=["h2"])
    hosts = [pb.HostStatus(host="h1", up=True, applied_version=42, desired_version=42),
             pb.HostStatus(host="h2", up=True, applied_version=40, desired_version=41, items=[
                 pb.ItemStatus(key="k", state=pb.ITEM_STATE_PENDING)]),
             pb.HostStatus(host="h3", up=False)]
    text = status.fleet_text(fleet, hosts)
    assert text.startswith("watermark 40 of revision 42 (reached never); 2 up, 1 down; "
                           "behind: h2")
    assert "h2    up     40       41       1        0       0      0" in text
    assert "h3    down" in text

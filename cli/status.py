"""``vrc --controller T status [HOST]``: what the agents applied (GetHostStatus, GetFleetStatus).

With a host: its liveness, the version its agent last acknowledged against
the last version that changed its slice, every item with its state (applied,
failed with the agent's errno and message, pending, drift) and the items
configured on the host through its Agent API. Without one: the fleet
watermark (the lowest version every live host applied, and when) and one
line per host. ``-o json`` prints the messages.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from cli.output import Output, as_dict, table
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc
from vrc.v1 import types_pb2 as tpb

STATES = {pb.ITEM_STATE_APPLIED: "applied", pb.ITEM_STATE_FAILED: "failed",
          pb.ITEM_STATE_PENDING: "pending", pb.ITEM_STATE_DRIFT: "drift"}


def _when(unix_time: float) -> str:
    if not unix_time:
        return "never"
    return datetime.datetime.fromtimestamp(unix_time).strftime("%Y-%m-%d %H:%M:%S")


def item_what(item: pb.SyncItem) -> str:
    """A local item in a few words."""
    which = item.WhichOneof("item")
    if which == "alias":
        return f"alias {item.alias.address} on {item.alias.ifname}"
    if which == "route":
        hops = ", ".join(f"{h.gateway}%{h.ifname}" if h.ifname else h.gateway
                         for h in item.route.next_hops)
        return f"route {item.route.prefix} via {hops}"
    return f"same-prefix policy {tpb.Policy.Name(item.policy).removeprefix('POLICY_').lower()}"


def host_text(status: pb.HostStatus) -> str:
    counts: dict[str, int] = {}
    for item in status.items:
        name = STATES.get(item.state, "?")
        counts[name] = counts.get(name, 0) + 1
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no items"
    head = [
        f"host {status.host}: {'up' if status.up else 'down'}"
        + (f" on {status.controller}" if status.controller else ""),
        f"applied version {status.applied_version} of {status.desired_version}"
        f" (last acknowledged {_when(status.applied_at)}); {summary}",
    ]
    if status.agent_endpoint:
        head.append(f"agent at {status.agent_endpoint}")
    rows = [(i.key, STATES.get(i.state, "?"), i.version or "-",
             f"{i.code}: {i.error}" if i.error else "-") for i in status.items]
    parts = ["\n".join(head), table(rows, ("ITEM", "STATE", "VERSION", "ERROR"))]
    if status.local_items:
        parts.append("configured on the host (not managed by the controller):\n" + "\n".join(
            f"  {i.key}: {item_what(i)}" for i in status.local_items))
    return "\n\n".join(parts)


def fleet_text(fleet: pb.FleetStatus, hosts: list[pb.HostStatus]) -> str:
    head = (f"watermark {fleet.watermark} of revision {fleet.revision}"
            f" (reached {_when(fleet.watermark_at)}); {fleet.hosts_up} up, "
            f"{fleet.hosts_down} down")
    if fleet.lagging:
        head += "; behind: " + ", ".join(fleet.lagging)
    rows = []
    for status in hosts:
        failed = sum(1 for i in status.items if i.state == pb.ITEM_STATE_FAILED)
        drift = sum(1 for i in status.items if i.state == pb.ITEM_STATE_DRIFT)
        pending = sum(1 for i in status.items if i.state == pb.ITEM_STATE_PENDING)
        rows.append((status.host, "up" if status.up else "down", status.applied_version,
                     status.desired_version, pending, failed, drift, len(status.local_items)))
    return head + "\n\n" + table(rows, ("HOST", "STATE", "APPLIED", "DESIRED", "PENDING",
                                        "FAILED", "DRIFT", "LOCAL"))


def show(stub: controller_pb2_grpc.ControllerStub, out: Output, host: str | None,
         timeout: float) -> None:
    if host:
        status = stub.GetHostStatus(pb.GetHostStatusRequest(host=host), timeout=timeout)
        out.message(status, host_text(status))
        return
    fleet = stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=timeout)
    names = [h.id for h in stub.ListHosts(pb.ListHostsRequest(), timeout=timeout).hosts]
    hosts = [stub.GetHostStatus(pb.GetHostStatusRequest(host=name), timeout=timeout)
             for name in names]
    if out.json:
        data: dict[str, Any] = {"fleet": as_dict(fleet), "hosts": [as_dict(h) for h in hosts]}
        out.print(json.dumps(data, indent=2))
    else:
        out.print(fleet_text(fleet, hosts))

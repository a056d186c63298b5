"""Store records as Controller API messages, and etcd changes as ConfigChange; access
entries and audit records as messages."""

from __future__ import annotations

import json

from controller.etcd import Change, ChangeKind
from controller.store import (
    AccessRecord,
    AliasRecord,
    ClaimRecord,
    ClaimView,
    HistoryRecord,
    HostRecord,
    HostView,
    Keys,
    Mode,
    PolicyRecord,
    PolicyView,
    Role,
    Stored,
    decode,
)
from serving.auth import Grant
from serving.auth import Role as AccessRole
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import types_pb2 as tpb

MODE_PB = {Mode.ALLOW: tpb.POLICY_ALLOW, Mode.REFUSE: tpb.POLICY_REFUSE,
           Mode.MULTIPATH: tpb.POLICY_MULTIPATH}
ROLE_PB = {Role.OWNER: pb.CLAIM_ROLE_OWNER, Role.STANDBY: pb.CLAIM_ROLE_STANDBY,
           Role.DOWN: pb.CLAIM_ROLE_DOWN}


def host_pb(view: HostView) -> pb.Host:
    record = view.record
    live = view.live
    return pb.Host(
        id=record.id,
        nics=[pb.Nic(name=n.name, mac=n.mac, mtu=n.mtu, point_to_point=n.point_to_point)
              for n in record.nics],
        agent_endpoint=(live.agent_endpoint if live and live.agent_endpoint
                        else record.agent_endpoint),
        software_version=record.software_version,
        up=view.up,
        controller=live.controller if live else "",
        revision=view.revision,
        registered_at=live.registered_at if live else 0.0,
    )


def alias_pb(record: AliasRecord, revision: int = 0) -> pb.Alias:
    return pb.Alias(host=record.host, ifname=record.ifname, address=record.address,
                    broadcast=record.broadcast, destination=record.destination,
                    revision=revision)


def stored_alias_pb(stored: Stored[AliasRecord]) -> pb.Alias:
    return alias_pb(stored.record, stored.mod_revision)


def claim_pb(view: ClaimView) -> pb.PrefixClaim:
    return pb.PrefixClaim(prefix=view.record.prefix, host=view.record.host,
                          ifname=view.record.ifname, role=ROLE_PB[view.role],
                          revision=view.create_revision)


def policy_pb(view: PolicyView) -> pb.ClusterPolicy:
    return pb.ClusterPolicy(
        same_prefix=MODE_PB[view.mode],
        host_overrides={host: MODE_PB[mode] for host, mode in view.overrides.items()},
        revision=view.revision,
        effective=(MODE_PB[view.effective] if view.effective is not None
                   else tpb.POLICY_UNSPECIFIED),
    )


CONFIG_KINDS = frozenset({"hosts", "aliases", "prefixes", "policy", "overrides"})


def change_pb(keys: Keys, change: Change) -> pb.ConfigChange | None:
    """A change of a configuration key as a ConfigChange; None for guards, status, live.

    A DELETE whose previous value etcd no longer had (compacted) carries the
    record's identity from its key.
    """
    kind = keys.kind_of(change.key)
    if kind not in CONFIG_KINDS:
        return None
    action = (pb.ConfigChange.ACTION_PUT if change.kind is ChangeKind.PUT
              else pb.ConfigChange.ACTION_DELETE)
    message = pb.ConfigChange(action=action, revision=change.revision)
    parts = keys.parts(change.key)
    value = change.value
    if kind == "hosts":
        host = decode(HostRecord, change.key, value) if value else HostRecord(parts[0])
        message.host.CopyFrom(host_pb(HostView(host, change.revision)))
    elif kind == "aliases":
        alias = (decode(AliasRecord, change.key, value) if value
                 else AliasRecord(parts[0], "", parts[1]))
        message.alias.CopyFrom(alias_pb(alias, change.revision))
    elif kind == "prefixes":
        claim = (decode(ClaimRecord, change.key, value) if value
                 else ClaimRecord(f"{parts[0]}/{parts[1]}", parts[2], parts[3]))
        message.claim.CopyFrom(pb.PrefixClaim(prefix=claim.prefix, host=claim.host,
                                              ifname=claim.ifname, revision=change.revision))
    else:
        policy = decode(PolicyRecord, change.key, value) if value else None
        cluster = pb.ClusterPolicy(revision=change.revision)
        if kind == "policy" and policy is not None:
            cluster.same_prefix = MODE_PB[policy.mode]
        elif kind == "overrides":  # a cleared override reads POLICY_UNSPECIFIED
            cluster.host_overrides[parts[0]] = (MODE_PB[policy.mode] if policy
                                                else tpb.POLICY_UNSPECIFIED)
        message.policy.CopyFrom(cluster)
    return message


ACCESS_ROLE_PB = {AccessRole.ADMIN: pb.ACCESS_ROLE_ADMIN, AccessRole.READER: pb.ACCESS_ROLE_READER,
                  AccessRole.AGENT: pb.ACCESS_ROLE_AGENT, AccessRole.NONE: pb.ACCESS_ROLE_NONE}
GRANT_ROLE_NAMES = {pb.ACCESS_ROLE_ADMIN: "admin", pb.ACCESS_ROLE_READER: "reader",
                    pb.ACCESS_ROLE_NONE: "none"}


def access_pb(identity: str, grant: Grant, record: Stored[AccessRecord] | None = None
              ) -> pb.AccessEntry:
    entry = pb.AccessEntry(identity=identity, role=ACCESS_ROLE_PB[grant.role],
                           source=grant.source)
    if record is not None:
        entry.revision = record.mod_revision
        entry.granted_by = record.record.granted_by
        entry.granted_at = record.record.granted_at
    return entry


def _json_text(value: object) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def history_pb(record: HistoryRecord, revision: int) -> pb.HistoryEntry:
    return pb.HistoryEntry(
        revision=revision, at=record.at, identity=record.identity, operation=record.operation,
        subject=record.subject, hosts=list(record.hosts), replica=record.replica,
        changes=[pb.HistoryChange(key=c.key, previous=_json_text(c.previous),
                                  value=_json_text(c.value)) for c in record.changes],
        omitted=record.omitted)

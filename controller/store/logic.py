"""Pure rules of the cluster configuration: the effective policy, claim roles, route keys.

No etcd here: the store and the Sync side (issue 13) both call these on
records they hold, and tests call them on plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from controller.store.errors import NotFound
from controller.store.records import DEFAULT_MODE, ClaimRecord, HostRecord, Mode, Nic, Role
from controller.store.spec import AliasSpec, ntoa
from controller.topology.roles import rank


def effective_mode(cluster: Mode | None, overrides: Mapping[str, Mode], host: str) -> Mode:
    """The same-prefix mode a host's engine runs: its override, else the cluster's."""
    if host in overrides:
        return overrides[host]
    return cluster if cluster is not None else DEFAULT_MODE


def route_key(spec: AliasSpec, point_to_point: bool) -> str:
    """The prefix route an alias counts under (in.c ``in_addprefix``): the destination as a
    host route on a point-to-point interface, else the masked prefix."""
    if point_to_point:
        assert spec.destination is not None
        return f"{ntoa(spec.destination)}/32"
    return f"{ntoa(spec.subnet)}/{spec.plen}"


@dataclass(frozen=True, slots=True)
class RankedClaim:
    record: ClaimRecord
    create_revision: int  # orders the claims of one prefix: the oldest is first in line


def claim_roles(claims: Sequence[RankedClaim], mode: Mode,
                is_up: Callable[[str], bool]) -> list[Role]:
    """The role of each claim of one prefix, in the order given.

    A claim whose host is down is DOWN (not routed to). Under ``multipath``
    every live claimant is an OWNER; otherwise the oldest live claim is the
    OWNER and the other live ones are STANDBY (the hand-over goes to the next
    oldest when the owner's claim is deleted or its host goes down).
    """
    order = sorted(range(len(claims)), key=lambda i: (claims[i].create_revision,
                                                      claims[i].record.host,
                                                      claims[i].record.ifname))
    ranks = rank([is_up(claims[i].record.host) for i in order],
                 every_live_claim_owns=mode is Mode.MULTIPATH)
    roles = [Role.DOWN] * len(claims)
    for index, role in zip(order, ranks, strict=True):
        roles[index] = Role(role.value)
    return roles


def interface_on_host(host: HostRecord, name: str, field: str) -> Nic | None:
    """The NIC ``name`` of a registered host (NotFound listing the NICs it has), or None
    for a host whose agent has not registered yet (only the name's syntax is known)."""
    if not host.registered:
        return None
    nic = host.nic(name)
    if nic is None:
        known = ", ".join(sorted(n.name for n in host.nics))
        raise NotFound(field, name, f"host {host.id} has no such interface (its agent "
                                    f"reported: {known})")
    return nic

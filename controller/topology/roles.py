"""The role of every prefix claim: the seed's prefix-route ownership, lifted to the cluster.

in.c gives a prefix's route to the first address with that prefix and hands
it to another when the owner goes; ``no_same_prefix`` refuses the second
address; multipath routes every one. Here the addresses are claims of
(host, interface), "first" is the lowest creation revision (ties by host,
then interface: two replicas agree), and "goes" is a deleted claim or a host
that is down. The claim's record stays; only its role changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network

from controller.topology.model import Claim, ClaimRole, ClaimStatus, SamePrefix


def claim_roles(claims: Iterable[Claim], live_hosts: frozenset[str],
                policy: SamePrefix) -> dict[IPv4Network, tuple[ClaimStatus, ...]]:
    """Every prefix's claims, earliest first, each with its role.

    A claim whose host is down (or unknown) is DOWN. Under ``multipath``
    every live claim is an OWNER. Under ``allow`` the earliest live claim is
    the OWNER and the other live claims are STANDBY. ``refuse`` has one
    claim per prefix; should the store hold several (claims made under
    ``allow`` before the mode changed), they are ranked as under ``allow``.
    """
    by_prefix: dict[IPv4Network, list[Claim]] = {}
    for claim in claims:
        by_prefix.setdefault(claim.prefix, []).append(claim)
    roles: dict[IPv4Network, tuple[ClaimStatus, ...]] = {}
    for prefix in sorted(by_prefix):
        ranked = sorted(by_prefix[prefix], key=_claim_order)
        ranks = rank([claim.host in live_hosts for claim in ranked],
                     every_live_claim_owns=policy is SamePrefix.MULTIPATH)
        roles[prefix] = tuple(ClaimStatus(c, r) for c, r in zip(ranked, ranks, strict=True))
    return roles


def rank(live: Sequence[bool], *, every_live_claim_owns: bool) -> list[ClaimRole]:
    """The roles of one prefix's claims given earliest first, by whether each one's host
    is live: the one statement of the rule (the store's listing uses it too)."""
    roles: list[ClaimRole] = []
    owner_found = False
    for is_live in live:
        if not is_live:
            roles.append(ClaimRole.DOWN)
        elif every_live_claim_owns or not owner_found:
            roles.append(ClaimRole.OWNER)
            owner_found = True
        else:
            roles.append(ClaimRole.STANDBY)
    return roles


def _claim_order(claim: Claim) -> tuple[int, str, str]:
    return claim.order


def owner_hosts(statuses: Iterable[ClaimStatus]) -> tuple[str, ...]:
    """The hosts of the OWNER claims, sorted, each once."""
    return tuple(sorted({s.claim.host for s in statuses if s.role is ClaimRole.OWNER}))

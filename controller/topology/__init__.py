"""Cluster routes: a pure function from the desired state and liveness to every
host's routes and every claim's role (``docs/controller.md``, "Cluster routes")."""

from controller.topology.compute import ClusterRoutes, compute_routes
from controller.topology.diff import RouteChanges, diff_routes
from controller.topology.model import (
    Alias,
    Claim,
    ClaimRole,
    ClaimStatus,
    ClusterState,
    Host,
    HostRoute,
    NextHop,
    NoRouteReason,
    SamePrefix,
    Unreachable,
)

__all__ = [
    "Alias",
    "Claim",
    "ClaimRole",
    "ClaimStatus",
    "ClusterRoutes",
    "ClusterState",
    "Host",
    "HostRoute",
    "NextHop",
    "NoRouteReason",
    "RouteChanges",
    "SamePrefix",
    "Unreachable",
    "compute_routes",
    "diff_routes",
]

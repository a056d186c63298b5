"""``--health-listen`` for the agent: the shared health-only server (:mod:`serving.health`)
with the agent's services.

kubelet's native gRPC probe connects to the node's IP (the agent runs under
``hostNetwork``) without TLS; this port answers health checks and nothing
else, so any address is allowed without TLS.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health

from agents.server import AGENT_SERVICE
from serving.health import FLAG, HEALTH_WORKERS, set_not_serving
from serving.health import build_health_server as _build

__all__ = ["FLAG", "HEALTH_WORKERS", "build_health_server", "set_not_serving"]


def build_health_server(listen: str, services: tuple[str, ...] = ("", AGENT_SERVICE),
                        max_workers: int = HEALTH_WORKERS,
                        ) -> tuple[grpc.Server, health.HealthServicer, str]:
    """A bound (not yet started) health-only server; ``services`` start SERVING."""
    return _build(listen, services, max_workers)

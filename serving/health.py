"""``--health-listen``: a port with nothing but ``grpc.health.v1``, in plaintext.

kubelet's native gRPC probe connects to the pod's IP without TLS, while a
daemon's API port is a Unix socket or needs (mutual) TLS. This second server
answers only health checks: it tells nothing and changes nothing, so any
address is allowed without TLS or ``--insecure``. No reflection, no API. A
daemon turns every service NOT_SERVING as its first step of stopping, so a
probe sees it leave before its API does.
"""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from serving.server import bind, parse_listen

FLAG = "--health-listen"
HEALTH_WORKERS = 4  # a probe is one unary call; Watch streams are for people, a few at most


def build_health_server(listen: str, services: tuple[str, ...],
                        max_workers: int = HEALTH_WORKERS,
                        ) -> tuple[grpc.Server, health.HealthServicer, str]:
    """A bound (not yet started) server with only the health service.

    ``services`` start SERVING. Returns the server, its health servicer and
    the bound address (port 0 binds an ephemeral port; ``unix:PATH`` works too).
    """
    address = parse_listen(listen, FLAG)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="vrc-health"))
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    for name in services:
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, checker, bind(server, address, None)


def set_not_serving(checker: health.HealthServicer) -> None:
    """Every service NOT_SERVING (new ones too): the process is going away."""
    checker.enter_graceful_shutdown()

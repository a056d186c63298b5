"""Building the agent's gRPC server: where it listens and who may talk to it.

Access rule: the Agent API reconfigures a router, so by default it is only
reachable from the host itself — a Unix socket (mode 0600: only the agent's
user) or a loopback TCP address. Any other address needs TLS (``--tls-cert``
and ``--tls-key``; with ``--tls-client-ca`` clients must present a
certificate signed by that CA) or an explicit ``--insecure``, which is logged
as a warning at start. Anything else is a ``ValueError`` naming the flag.

Every server also answers grpc health checks (``grpc.health.v1``, SERVING for
``""`` and ``vrc.v1.Agent``) and server reflection. The rule and the binding
live in :mod:`serving.server`, shared with ``vrc-controller``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health

from agents.api import AgentService
from agents.gate import Gate
from serving import server as serving
from serving.server import (
    ListenAddress,
    TlsFiles,
    check_access,
    is_loopback,
    parse_listen,
    server_credentials,
    tls_files,
)
from vrc.v1 import agent_pb2, agent_pb2_grpc

__all__ = [
    "DEFAULT_LISTEN", "ListenAddress", "TlsFiles", "add_health_and_reflection", "build_server",
    "check_access", "is_loopback", "parse_listen", "server_credentials", "tls_files",
]

AGENT_SERVICE = agent_pb2.DESCRIPTOR.services_by_name["Agent"].full_name
DEFAULT_LISTEN = "unix:/run/vrc/agent.sock"
MAX_WORKERS = 32  # streams hold a worker each: captures, hooks, event watchers

_log = logging.getLogger("vrc.agent.server")


def _service(target: AgentService | Gate, wall_offset: Callable[[], float] | None,
             nic_mtu: Callable[[str], int | None] | None) -> AgentService:
    if isinstance(target, AgentService):
        return target
    return AgentService(target, wall_offset=wall_offset, nic_mtu=nic_mtu)


def add_health_and_reflection(server: grpc.Server) -> health.HealthServicer:
    return serving.add_health_and_reflection(server, (AGENT_SERVICE,))


def build_server(
    target: AgentService | Gate,
    listen: str,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_client_ca: str | None = None,
    insecure: bool = False,
    log: Any = None,
    max_workers: int = MAX_WORKERS,
    wall_offset: Callable[[], float] | None = None,
    nic_mtu: Callable[[str], int | None] | None = None,
) -> tuple[grpc.Server, str]:
    """A bound (not yet started) server for the Agent API and its bound address.

    ``listen`` is ``unix:PATH`` or ``HOST:PORT``; port 0 binds an ephemeral
    port, and the returned address carries the real one. ``log`` is any
    logger with ``warning`` (stdlib or structlog). ``wall_offset`` (seconds to
    add to the engine's clock for UNIX time) stamps captured frames with real time;
    ``nic_mtu`` (the MTU of the host NIC behind an interface) caps ``SetInterface``.
    """
    log = log if log is not None else _log
    address = parse_listen(listen)
    tls = tls_files(tls_cert, tls_key, tls_client_ca)
    check_access(address, tls, insecure)
    credentials = server_credentials(tls) if tls is not None else None
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="vrc-grpc"))
    agent_pb2_grpc.add_AgentServicer_to_server(_service(target, wall_offset, nic_mtu), server)
    add_health_and_reflection(server)
    bound = serving.bind(server, address, credentials)
    if tls is None and not address.is_local:
        log.warning(f"agent API on {bound} without TLS (--insecure): "
                    "anyone who can reach it can reconfigure this router")
    return server, bound

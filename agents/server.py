"""Building the agent's gRPC server: where it listens and who may talk to it.

Access rule: the Agent API reconfigures a router, so by default it is only
reachable from the host itself — a Unix socket (mode 0600: only the agent's
user) or a loopback TCP address. Any other address needs TLS (``--tls-cert``,
``--tls-key`` and ``--tls-ca``: mutual TLS) or an explicit ``--insecure``,
which is logged as a warning at start. Anything else is a ``ValueError``
naming the flag. The rule and the binding live in :mod:`serving.server`,
shared with ``vrc-controller``.

Authorization (docs/security.md): the agent has no etcd, so a caller's role
is the one its certificate names — ``spiffe://vrc/admin/NAME`` may call
everything, ``spiffe://vrc/reader/NAME`` the reads (:data:`READS`), any other
certificate nothing; a Unix-socket peer (and any peer of a listener without
TLS) is an admin. ``Capture`` and ``Hook`` are admin-only: one shows the
traffic itself, the other injects it.

Every server also answers grpc health checks (``grpc.health.v1``, SERVING for
``""`` and ``vrc.v1.Agent``) and server reflection. Requests are limited to
:data:`MAX_REQUEST_BYTES` (a Hook batch of jumbo frames fits; a unary request
is a few hundred bytes).

Streams (``WatchEvents``, ``Capture``, ``Hook``, reflection) hold a thread
each while open; they get a budget of their own, per client (a certificate's
identity, else the address) and in total, and the thread pool keeps threads
they cannot take, so unary calls and health checks are always served
(:mod:`serving.streams`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health

from agents.api import AgentService
from agents.gate import Gate
from agents.stats import StatsSource
from serving import server as serving
from serving.auth import Authorization, certificate_roles, method_table
from serving.server import ListenAddress, check_access, is_loopback, parse_listen
from serving.streams import (
    DEFAULT_KEEPALIVE_SECONDS,
    DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
    DEFAULT_UNARY_THREADS,
    StreamBudget,
    budgeted_server,
)
from serving.tls import ServerCredentials, TlsConfig
from vrc.v1 import agent_pb2, agent_pb2_grpc

__all__ = [
    "DEFAULT_LISTEN", "METHODS", "ListenAddress", "TlsConfig", "add_health_and_reflection",
    "build_server", "check_access", "is_loopback", "parse_listen",
]

AGENT_DESCRIPTOR = agent_pb2.DESCRIPTOR.services_by_name["Agent"]
AGENT_SERVICE = AGENT_DESCRIPTOR.full_name
DEFAULT_LISTEN = "unix:/run/vrc/agent.sock"
MAX_STREAMS = 64  # open at once, all clients together (vrc-agent --max-streams)
MAX_STREAMS_PER_CLIENT = 16  # ... one client (vrc-agent --max-streams-per-client)
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # FRAMES_PER_BATCH jumbo frames in one Hook message
# What a reader may call; everything else needs the admin role.
READS = ("ListInterfaces", "GetInterface", "GetAddress", "ListRoutes", "ListArp", "GetPolicy",
         "Query", "WatchEvents")
METHODS = method_table(AGENT_DESCRIPTOR, reads=READS)

_log = logging.getLogger("vrc.agent.server")


def _service(target: AgentService | Gate, wall_offset: Callable[[], float] | None,
             nic_mtu: Callable[[str], int | None] | None,
             stats: StatsSource | None) -> AgentService:
    if isinstance(target, AgentService):
        return target
    return AgentService(target, wall_offset=wall_offset, nic_mtu=nic_mtu, stats=stats)


def stream_budget(total: int = MAX_STREAMS,
                  per_client: int = MAX_STREAMS_PER_CLIENT) -> StreamBudget:
    """The Agent API's stream budget; refusals name vrc-agent's flags."""
    return StreamBudget(total, per_client, what="API streams", total_flag="--max-streams",
                        per_client_flag="--max-streams-per-client")


def add_health_and_reflection(server: grpc.Server) -> health.HealthServicer:
    return serving.add_health_and_reflection(server, (AGENT_SERVICE,))


def build_server(
    target: AgentService | Gate,
    listen: str,
    *,
    tls: TlsConfig | None = None,
    insecure: bool = False,
    log: Any = None,
    streams: StreamBudget | None = None,
    unary_threads: int = DEFAULT_UNARY_THREADS,
    keepalive: tuple[float, float] = (DEFAULT_KEEPALIVE_SECONDS,
                                      DEFAULT_KEEPALIVE_TIMEOUT_SECONDS),
    stats: StatsSource | None = None,
    wall_offset: Callable[[], float] | None = None,
    nic_mtu: Callable[[str], int | None] | None = None,
) -> tuple[grpc.Server, str]:
    """A bound (not yet started) server for the Agent API and its bound address.

    ``listen`` is ``unix:PATH`` or ``HOST:PORT``; port 0 binds an ephemeral
    port, and the returned address carries the real one. ``log`` is any
    logger with ``warning`` (stdlib or structlog). ``wall_offset`` (seconds to
    add to the engine's clock for UNIX time) stamps captured frames with real time;
    ``nic_mtu`` (the MTU of the host NIC behind an interface) caps ``SetInterface``.
    ``streams`` bounds open streams (default :func:`stream_budget`); the pool
    has a thread per stream of it plus ``unary_threads`` that streams never take;
    ``keepalive`` (seconds between pings on an idle connection, seconds to wait
    for the answer) ends the streams of a peer that vanished.
    ``stats`` is what GetStats reads (vrc-agent passes the metrics endpoint's).
    ``tls`` (its server side: a pair, and a CA unless clients are not asked for a
    certificate) serves TCP addresses with TLS and turns authorization on.
    """
    log = log if log is not None else _log
    address = parse_listen(listen)
    served = tls.server_side() if tls is not None else None
    check_access(address, served, insecure)
    credentials = ServerCredentials(served, log=log) if served is not None else None
    server = budgeted_server(streams or stream_budget(), unary_threads=unary_threads,
                             keepalive=keepalive,
                             interceptors=[Authorization(METHODS, certificate_roles)],
                             options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)])
    service = _service(target, wall_offset, nic_mtu, stats)
    agent_pb2_grpc.add_AgentServicer_to_server(service, server)
    add_health_and_reflection(server)
    bound = serving.bind(server, address, credentials)
    if credentials is None and not address.is_local:
        log.warning(f"agent API on {bound} without TLS (--insecure): "
                    "anyone who can reach it can reconfigure this router")
    return server, bound

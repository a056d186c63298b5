"""The Prometheus HTTP endpoint of a vrc daemon (``--metrics HOST:PORT``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import CollectorRegistry
from prometheus_client.registry import Collector

from serving.server import parse_hostport

__all__ = ["MetricsServer", "parse_hostport", "serve_metrics"]


@dataclass(slots=True)
class MetricsServer:
    """The HTTP endpoint; ``close`` stops it."""

    server: Any
    thread: Any
    address: str

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(collector: Collector | CollectorRegistry, listen: str) -> MetricsServer:
    """Serve ``collector`` (alone in its registry) or a whole registry at ``HOST:PORT``."""
    host, port = parse_hostport(listen)
    if isinstance(collector, CollectorRegistry):
        registry = collector
    else:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound_host, bound_port = server.server_address[:2]
    return MetricsServer(server, thread, f"{bound_host!s}:{bound_port}")

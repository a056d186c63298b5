"""The controller's Prometheus metrics, read at scrape time.

* ``vrc_controller_requests_total{method,code}``: RPCs by outcome (an interceptor);
* ``vrc_controller_etcd_up``: 1 while the last health probe of etcd succeeded;
* ``vrc_controller_etcd_client_builds_total``: etcd clients built (a rebuild
  follows every UNAVAILABLE);
* ``vrc_controller_store_commits_total``, ``..._store_unchanged_total``,
  ``..._store_lost_races_total``, ``..._store_aborted_total``: the write loop;
* ``vrc_controller_watch_streams``: WatchConfig streams open;
* ``vrc_controller_sync_streams``: agents' Sync streams open on this replica;
  ``vrc_controller_sync_{acks,nacks,reports,cut_off,batches,deltas,status_writes,
  lease_regrants,registrations,registration_batches,registrations_refused}_total``:
  what the Sync side did; ``vrc_controller_sync_revision``
  and ``vrc_controller_sync_watermark``: the revision the replica's view is at
  and the fleet watermark.
* ``vrc_controller_access_denied_total{method}``: calls refused PERMISSION_DENIED;
* ``vrc_controller_writes_rate_limited_total``: writes refused by an identity's budget;
* ``vrc_controller_history_pruned_total``: audit records pruned by this replica.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from controller.store import Store
from controller.sync import SyncService
from serving.streams import StreamBudget


class RequestCounter(grpc.ServerInterceptor):
    """Counts every RPC by method and final status code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def count(self, method: str, code: str) -> None:
        with self._lock:
            self.counts[(method, code)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)

    def intercept_service(self, continuation: Callable[[Any], Any],
                          handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = str(handler_call_details.method).rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler

    def _code(self, context: Any, failed: bool) -> str:
        code = context.code() if hasattr(context, "code") else None
        if code is None:
            return "UNKNOWN" if failed else "OK"
        return str(getattr(code, "name", code))

    def _unary(self, method: str, behaviour: Callable[[Any, Any], Any]
               ) -> Callable[[Any, Any], Any]:
        def call(request: Any, context: Any) -> Any:
            failed = True
            try:
                reply = behaviour(request, context)
                failed = False
                return reply
            finally:
                self.count(method, self._code(context, failed))
        return call

    def _stream(self, method: str, behaviour: Callable[[Any, Any], Iterator[Any]]
                ) -> Callable[[Any, Any], Iterator[Any]]:
        def call(request: Any, context: Any) -> Iterator[Any]:
            failed = True
            try:
                yield from behaviour(request, context)
                failed = False
            finally:
                self.count(method, self._code(context, failed))
        return call


class Denials:
    """Counts PERMISSION_DENIED refusals by method (the interceptor's ``on_denied``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, identity: str, method: str) -> None:
        with self._lock:
            self.counts[method.rsplit("/", 1)[-1]] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class ControllerCollector(Collector):
    def __init__(self, store: Store, requests: RequestCounter, watch_budget: StreamBudget,
                 etcd_up: Callable[[], bool], sync: SyncService | None = None, *,
                 denials: Denials | None = None, rate_limited: Callable[[], int] = lambda: 0,
                 pruned: Callable[[], int] = lambda: 0) -> None:
        self.sync = sync
        self.store = store
        self.requests = requests
        self.watch_budget = watch_budget
        self.etcd_up = etcd_up
        self.denials = denials or Denials()
        self.rate_limited = rate_limited
        self.pruned = pruned

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        requests = CounterMetricFamily("vrc_controller_requests", "Controller RPCs by outcome",
                                       labels=["method", "code"])
        for (method, code), count in sorted(self.requests.snapshot().items()):
            requests.add_metric([method, code], count)
        yield requests
        yield GaugeMetricFamily("vrc_controller_etcd_up", "1 while etcd answers health probes",
                                value=1 if self.etcd_up() else 0)
        yield CounterMetricFamily("vrc_controller_etcd_client_builds",
                                  "etcd clients built (each UNAVAILABLE rebuilds)",
                                  value=self.store.etcd.rebuilds)
        stats = self.store.stats
        for name, text, value in (
                ("commits", "Store writes committed", stats.commits),
                ("unchanged", "Store writes that found nothing to change", stats.unchanged),
                ("lost_races", "Write attempts that lost a race and retried", stats.lost_races),
                ("aborted", "Writes that lost every retry (ABORTED)", stats.aborted)):
            yield CounterMetricFamily(f"vrc_controller_store_{name}", text, value=value)
        yield GaugeMetricFamily("vrc_controller_watch_streams", "WatchConfig streams open",
                                value=self.watch_budget.open)
        denied = CounterMetricFamily("vrc_controller_access_denied",
                                     "Calls refused PERMISSION_DENIED", labels=["method"])
        for method, count in sorted(self.denials.snapshot().items()):
            denied.add_metric([method], count)
        yield denied
        yield CounterMetricFamily("vrc_controller_writes_rate_limited",
                                  "Writes refused by an identity's write budget",
                                  value=self.rate_limited())
        yield CounterMetricFamily("vrc_controller_history_pruned",
                                  "Audit records pruned by this replica", value=self.pruned())
        if self.sync is not None:
            yield from self._sync(self.sync)

    @staticmethod
    def _sync(sync: SyncService) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = sync.stats
        yield GaugeMetricFamily("vrc_controller_sync_streams", "Sync streams open",
                                value=stats.streams_open)
        for name, text, value in (
                ("acks", "ACKs without failed items", stats.acks),
                ("nacks", "ACKs naming failed items", stats.nacks),
                ("reports", "drift and local-item reports", stats.reports),
                ("cut_off", "streams ended for falling behind", stats.cut_off),
                ("batches", "change batches the pipeline took in", stats.batches),
                ("deltas", "per-host deltas made", stats.deltas),
                ("status_writes", "status transactions written", sync.writer.writes),
                ("lease_regrants", "registrations put again on a new lease (theirs lapsed)",
                 sync.liveness.regrants),
                ("registrations", "registrations written (and put again)",
                 sync.liveness.registrar.stats.registered),
                ("registration_batches", "registration transactions written",
                 sync.liveness.registrar.stats.batches),
                ("registrations_refused", "registrations refused (etcd away, a deadline)",
                 sync.liveness.registrar.stats.failed)):
            yield CounterMetricFamily(f"vrc_controller_sync_{name}", text, value=value)
        if sync.wait_ready(0):
            fleet = sync.fleet_status()
            yield GaugeMetricFamily("vrc_controller_sync_revision",
                                    "the revision this replica's view is at",
                                    value=fleet.revision)
            yield GaugeMetricFamily("vrc_controller_sync_watermark",
                                    "the lowest version every live host applied",
                                    value=fleet.watermark)


def registry_for(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry

"""``vrc-controller``: the cluster controller process (docs/controller.md).

Start order: options checked (nothing touched yet); without ``--etcd`` the
data directory is locked and a private etcd started in it; the etcd client
waits for a healthy endpoint; the Sync service (its one watch, the lease
keeper, the status writer; ``controller/sync``) starts loading the cluster
state; the gRPC server (Controller, health, reflection) starts, then
metrics and the etcd health monitor. Stop order is the reverse: server first
(streams cancelled, unary calls finish within the grace), monitor, the Sync
service (leases left to lapse: agents redial within the TTL), etcd client,
the private etcd. SIGTERM and SIGINT stop it
that way and it exits 0. Replicas share nothing but etcd: start as many as
you like on one etcd, no leader is elected. The command line is
:mod:`controller.options`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import IO, Any

import grpc
from grpc_health.v1 import health, health_pb2

from controller.access import METHODS, AccessControl
from controller.api import ControllerService
from controller.audit import AuditTrail, HistoryPruner
from controller.etcd import EmbeddedEtcd, EmbeddedEtcdError, EtcdClient, EtcdConfig, EtcdError
from controller.metrics import ControllerCollector, Denials, RequestCounter, registry_for
from controller.options import ControllerOptions, build_parser, options_from
from controller.store import Keys, Store
from controller.sync import SyncService, SyncSettings
from controller.sync import server_options as sync_server_options
from serving import server as serving
from serving.auth import Authorization
from serving.health import build_health_server, set_not_serving
from serving.limits import RequestSizeLimit, WriteLimiter
from serving.logs import configure_logging, get_logger
from serving.metrics import MetricsServer, serve_metrics
from serving.streams import StreamBudget
from serving.tls import ServerCredentials
from vrc.v1 import controller_pb2, controller_pb2_grpc

__all__ = ["Controller", "ControllerOptions", "DataDirLock", "StartError", "build_parser",
           "main", "options_from"]

CONTROLLER_SERVICE = controller_pb2.DESCRIPTOR.services_by_name["Controller"].full_name
EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_USAGE = 2
UNARY_WORKERS = 16  # threads kept for unary calls and health, whatever the streams do
MAX_REQUEST_BYTES = 64 * 1024  # a unary Controller request is a few hundred bytes
# A Sync hello or ACK lists a host's local and failed items (~70 bytes each): 4 MiB holds
# tens of thousands; the server's receive limit is this, unary requests are held to the above.
MAX_SYNC_MESSAGE_BYTES = 4 * 1024 * 1024
HEALTH_INTERVAL = 2.0
# protoc's grpc plugin writes no type hints; this is the signature it has.
add_servicer: Callable[[ControllerService, grpc.Server], None] = (
    controller_pb2_grpc.add_ControllerServicer_to_server)
STOP_GRACE = 2.0


class StartError(Exception):
    """The controller cannot start for a reason the operator can fix; the text says which."""


class DataDirLock:
    """An exclusive lock on ``DIR/controller.lock``: one private etcd per data directory."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, "controller.lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StartError(f"--data-dir {os.path.dirname(self.path)}: in use by "
                             f"{holder}; give each controller its own, or share one etcd "
                             "with --etcd") from None
        handle.truncate(0)
        handle.write(f"vrc-controller pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Controller:
    """The running pieces of one replica; ``start`` and ``stop`` in the documented orders."""

    def __init__(self, options: ControllerOptions, *, log: Any = None) -> None:
        self.options = options
        self.log = log or get_logger("vrc.controller", replica=options.replica_id)
        self.lock: DataDirLock | None = None
        self.embedded: EmbeddedEtcd | None = None
        self.etcd: EtcdClient | None = None
        self.store: Store | None = None
        self.server: grpc.Server | None = None
        self.health: health.HealthServicer | None = None
        self.address = ""
        self.addresses: list[str] = []
        self.credentials: ServerCredentials | None = None
        self.health_server: grpc.Server | None = None
        self.health_only: health.HealthServicer | None = None
        self.health_address = ""
        self.pruner: HistoryPruner | None = None
        self.limiter: WriteLimiter | None = None
        self.metrics: MetricsServer | None = None
        self.sync: SyncService | None = None
        self.sync_etcd: EtcdClient | None = None  # the Sync side's own client
        self.etcd_up = False
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    def start(self) -> None:
        """Bring everything up; on any failure undo what was done and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        opts = self.options
        config = opts.etcd if opts.etcd is not None else self._start_embedded()
        self.etcd = EtcdClient(config, connect_timeout=opts.etcd_wait)
        try:
            endpoint = self.etcd.wait_healthy()
        except EtcdError as error:
            raise StartError(f"etcd at {config.describe()}: {error}") from None
        self.etcd_up = True
        self.log.info("etcd healthy", endpoint=endpoint.url,
                      embedded=self.embedded is not None)
        keys = Keys(opts.store_root)
        self.store = Store(self.etcd, root=opts.store_root,
                           hooks=[AuditTrail(keys, opts.replica_id)])
        budget = StreamBudget(opts.max_watch_streams, opts.max_watch_streams_per_client,
                              what="WatchConfig streams", flag="--max-watch-streams-per-client "
                              "and --max-watch-streams")
        sync_budget = StreamBudget(opts.max_sync_streams, opts.max_sync_streams_per_client,
                                   what="Sync streams", flag="--max-sync-streams-per-client "
                                   "and --max-sync-streams")
        self.sync_etcd = EtcdClient(config, connect_timeout=opts.etcd_wait)
        self.sync = SyncService(self.store, SyncSettings(
            replica=opts.replica_id, lease_ttl=opts.lease_ttl,
            queue_limit=opts.sync_queue_limit), budget=sync_budget, etcd=self.sync_etcd)
        self.sync.start()
        requests = RequestCounter()
        access = AccessControl(self.store, opts.bootstrap_admins)
        self.limiter = WriteLimiter(opts.write_rate, opts.write_burst)
        denials = Denials()
        authorization = Authorization(METHODS, access.resolve, limiter=self.limiter,
                                      recheck=opts.reauthorize_every, on_denied=denials)
        service = ControllerService(self.store, watch_budget=budget, sync=self.sync,
                                    access=access)
        self._build_server(service, [requests, authorization, RequestSizeLimit(MAX_REQUEST_BYTES)],
                           budget.total + sync_budget.total)
        if opts.health_listen:
            self.health_server, self.health_only, self.health_address = build_health_server(
                opts.health_listen, ("", CONTROLLER_SERVICE))
            self.health_server.start()
            self.log.info("health", listen=self.health_address)
        self.pruner = HistoryPruner(self.store, max_age=opts.history_max_age,
                                    max_records=opts.history_max_records,
                                    interval=opts.history_prune_interval, log=self.log)
        self.pruner.start()
        if opts.metrics:
            limiter, pruner = self.limiter, self.pruner
            collector = ControllerCollector(
                self.store, requests, budget, lambda: self.etcd_up, sync=self.sync,
                denials=denials, rate_limited=lambda: limiter.refused if limiter else 0,
                pruned=lambda: pruner.pruned if pruner else 0)
            self.metrics = serve_metrics(registry_for(collector), opts.metrics)
            self.log.info("metrics", listen=self.metrics.address)
        self._monitor = threading.Thread(target=self._watch_etcd_health, daemon=True,
                                         name="vrc-etcd-health")
        self._monitor.start()
        self.log.info("controller started", listen=self.addresses, etcd=config.describe(),
                      lease_ttl=opts.lease_ttl,
                      tls=("mutual" if opts.tls is not None and opts.tls.client_auth else
                           "server only (--tls-no-client-auth)" if opts.tls is not None
                           else "off"),
                      identity=self.credentials.identity if self.credentials else None)

    def _start_embedded(self) -> EtcdConfig:
        self.lock = DataDirLock(self.options.data_dir)
        self.lock.acquire()
        self.embedded = EmbeddedEtcd(self.options.data_dir, tls=True)
        try:
            self.embedded.start(timeout=self.options.etcd_wait)
        except EmbeddedEtcdError as error:
            raise StartError(str(error)) from None
        self.log.info("private etcd started", url=self.embedded.url, pid=self.embedded.pid,
                      data_dir=str(self.embedded.data_dir / "etcd"))
        return self.embedded.config()

    def _build_server(self, service: ControllerService,
                      interceptors: list[grpc.ServerInterceptor], streams: int) -> None:
        """``streams``: every stream budget together; the pool has that many workers plus
        UNARY_WORKERS, so open streams never take the workers unary calls need."""
        opts = self.options
        workers = streams + UNARY_WORKERS
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vrc-ctl"),
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", MAX_SYNC_MESSAGE_BYTES),
                     *sync_server_options()])
        add_servicer(service, server)
        self.health = serving.add_health_and_reflection(server, (CONTROLLER_SERVICE,))
        if opts.tls is not None:
            self.credentials = ServerCredentials(opts.tls, log=self.log)
            if not opts.tls.client_auth:
                self.log.warning("TLS without client certificates (--tls-no-client-auth): "
                                 "any client that reaches the API is trusted as an admin")
        for listen in (opts.listen, *opts.also_listen):
            address = serving.parse_listen(listen)
            bound = serving.bind(server, address, self.credentials)
            self.addresses.append(bound)
            if self.credentials is None and not address.is_local:
                self.log.warning(f"controller API on {bound} without TLS (--insecure): "
                                 "anyone who can reach it can reconfigure the cluster")
        self.address = self.addresses[0]
        self.server = server
        server.start()

    def _watch_etcd_health(self) -> None:
        """Health says NOT_SERVING while etcd does not answer (readiness for Kubernetes)."""
        while not self._stop.wait(HEALTH_INTERVAL):
            up = self._etcd_answers()
            if up != self.etcd_up:
                self.etcd_up = up
                if up:
                    self.log.info("etcd reachable again")
                else:
                    self.log.warning("etcd unreachable: writes and reads fail with "
                                     "UNAVAILABLE until it is back")
            status = (health_pb2.HealthCheckResponse.SERVING if up
                      else health_pb2.HealthCheckResponse.NOT_SERVING)
            for checker in (self.health, self.health_only):
                if checker is not None:
                    for name in ("", CONTROLLER_SERVICE):
                        checker.set(name, status)

    def _etcd_answers(self) -> bool:
        if self.etcd is None:
            return False
        try:
            self.etcd.status(wait=0)
        except EtcdError:
            return False
        return True

    def stop(self) -> None:
        """Stop in reverse order; every step runs even if an earlier one failed."""
        self._stop.set()
        if self.health_only is not None:
            set_not_serving(self.health_only)
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop(grace=STOP_GRACE).wait(STOP_GRACE + 3)
            self.server = None
        if self.health_server is not None:
            with contextlib.suppress(Exception):
                self.health_server.stop(grace=0.5).wait(5.0)
            self.health_server, self.health_only = None, None
        if self.metrics is not None:
            with contextlib.suppress(Exception):
                self.metrics.close()
            self.metrics = None
        if self.pruner is not None:
            self.pruner.stop()
            self.pruner = None
        if self._monitor is not None:
            self._monitor.join(HEALTH_INTERVAL + 3)
            self._monitor = None
        if self.sync is not None:
            with contextlib.suppress(Exception):
                self.sync.stop()
            self.sync = None
        if self.sync_etcd is not None:
            with contextlib.suppress(Exception):
                self.sync_etcd.close()
            self.sync_etcd = None
        if self.etcd is not None:
            with contextlib.suppress(Exception):
                self.etcd.close()
            self.etcd = None
        if self.embedded is not None:
            with contextlib.suppress(Exception):
                self.embedded.stop()
            self.log.info("private etcd stopped")
            self.embedded = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        for address in self.addresses:
            parsed = serving.parse_listen(address)
            if parsed.is_unix:
                with contextlib.suppress(OSError):
                    Path(parsed.path).unlink()
        self.addresses = []


def install_stop_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_format, args.log_level)
        options = options_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    log = get_logger("vrc.controller", replica=options.replica_id)
    stop = threading.Event()
    install_stop_signals(stop)
    controller = Controller(options, log=log)
    try:
        controller.start()
    except ValueError as exc:
        log.error("bad option", error=str(exc))
        return EXIT_USAGE
    except (StartError, OSError) as exc:
        log.error("controller failed to start", error=str(exc))
        return EXIT_START_FAILED
    except Exception as exc:
        log.error("controller failed to start", error=str(exc), kind=type(exc).__name__)
        return EXIT_START_FAILED
    try:
        while not stop.wait(1.0):
            pass
        log.info("stopping")
    finally:
        controller.stop()
    log.info("controller stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

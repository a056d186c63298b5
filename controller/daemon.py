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
you like on one etcd, no leader is elected.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import grpc
from grpc_health.v1 import health, health_pb2

from controller.access import METHODS, AccessControl, identity_text
from controller.api import ControllerService
from controller.audit import AuditTrail, HistoryPruner
from controller.etcd import (
    EmbeddedEtcd,
    EmbeddedEtcdError,
    EtcdClient,
    EtcdConfig,
    EtcdError,
    parse_endpoints,
)
from controller.metrics import ControllerCollector, Denials, RequestCounter, registry_for
from controller.store import DEFAULT_ROOT, Keys, Store, StoreError
from controller.sync import SyncService, SyncSettings
from controller.sync import server_options as sync_server_options
from controller.sync.fanout import QUEUE_LIMIT as SYNC_QUEUE_LIMIT
from serving import server as serving
from serving.auth import RECHECK_SECONDS, Authorization
from serving.health import build_health_server, set_not_serving
from serving.limits import WriteLimiter
from serving.logs import FORMATS, LEVELS, configure_logging, get_logger
from serving.metrics import MetricsServer, serve_metrics
from serving.numbers import positive_seconds
from serving.streams import StreamBudget
from serving.tls import ServerCredentials, TlsConfig, add_tls_arguments, tls_from_args
from vrc.v1 import controller_pb2, controller_pb2_grpc

CONTROLLER_SERVICE = controller_pb2.DESCRIPTOR.services_by_name["Controller"].full_name
ROOT_DATA_DIR = "/var/lib/vrc-controller"
EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_USAGE = 2
UNARY_WORKERS = 16  # threads kept for unary calls and health, whatever the streams do
DEFAULT_WRITE_RATE = 50.0  # writes/s per identity: far above what people or scripts need
DEFAULT_WRITE_BURST = 200
DEFAULT_HISTORY_AGE = 30 * 86400.0
DEFAULT_HISTORY_RECORDS = 100_000
MAX_REQUEST_BYTES = 64 * 1024  # a Controller request is a few hundred bytes
HEALTH_INTERVAL = 2.0
# protoc's grpc plugin writes no type hints; this is the signature it has.
add_servicer: Callable[[ControllerService, grpc.Server], None] = (
    controller_pb2_grpc.add_ControllerServicer_to_server)
STOP_GRACE = 2.0


def default_data_dir() -> str:
    """$VRC_DATA_DIR, else /var/lib/vrc-controller for root, else under $XDG_STATE_HOME
    (~/.local/state)."""
    if os.environ.get("VRC_DATA_DIR"):
        return os.environ["VRC_DATA_DIR"]
    if os.geteuid() == 0:
        return ROOT_DATA_DIR
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "vrc-controller")


def default_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, 1 or more")
    return int(text)



def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="vrc-controller",
        description="Keep the vrc cluster's desired configuration (hosts, aliases, prefix "
                    "claims, the same-prefix policy) in etcd and serve the Controller API. "
                    "Without --etcd it runs a private etcd in --data-dir. Several replicas "
                    "on one etcd run side by side (no leader). SIGTERM or Ctrl-C stops it.",
        epilog="example: vrc-controller --data-dir /tmp/vrc, then: "
               "vrc --controller unix:/tmp/vrc/controller.sock hosts",
    )  # fmt: skip
    parser.add_argument(
        "--listen", action="append", default=None, metavar="unix:PATH|HOST:PORT",
        help="where the API listens (default unix:DATA_DIR/controller.sock; repeat for more "
             "addresses, e.g. a Unix socket for local admins and a TCP address with mutual "
             "TLS); an address other hosts can reach needs TLS or --insecure")  # fmt: skip
    parser.add_argument(
        "--health-listen", default=None, metavar="HOST:PORT",
        help="also serve only grpc.health.v1, in plaintext, here (kubelet's probes, when "
             "the API needs a client certificate; default: off)")  # fmt: skip
    parser.add_argument(
        "--etcd", default=env("VRC_ETCD"), metavar="URL[,URL...]",
        help="etcd client URLs (env VRC_ETCD); default: start a private etcd in --data-dir")
    parser.add_argument("--etcd-cacert", default=env("VRC_ETCD_CACERT"), metavar="FILE",
                        help="CA that signed etcd's certificate (env VRC_ETCD_CACERT)")
    parser.add_argument("--etcd-cert", default=env("VRC_ETCD_CERT"), metavar="FILE",
                        help="client certificate for etcd (env VRC_ETCD_CERT)")
    parser.add_argument("--etcd-key", default=env("VRC_ETCD_KEY"), metavar="FILE",
                        help="its private key (env VRC_ETCD_KEY)")
    parser.add_argument("--etcd-user", default=env("VRC_ETCD_USER"), metavar="NAME",
                        help="etcd user (env VRC_ETCD_USER)")
    parser.add_argument("--etcd-password", default=env("VRC_ETCD_PASSWORD"), metavar="TEXT",
                        help="its password (env VRC_ETCD_PASSWORD; prefer the env: a flag "
                             "shows in ps)")
    parser.add_argument("--store-root", default=DEFAULT_ROOT, metavar="PREFIX",
                        help=f"the etcd key prefix of this cluster's records (default "
                             f"{DEFAULT_ROOT}; clusters sharing one etcd need their own)")
    parser.add_argument("--etcd-wait", type=positive_seconds, default=30.0, metavar="SECONDS",
                        help="how long to wait for a healthy etcd at start (default 30)")
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR",
        help=f"the private etcd's data and the default socket (env VRC_DATA_DIR; default "
             f"{ROOT_DATA_DIR} for root, else $XDG_STATE_HOME/vrc-controller)")  # fmt: skip
    add_tls_arguments(parser, server=True, client=False)
    parser.add_argument("--insecure", action="store_true",
                        help="serve a non-local API without TLS (and without authorization)")
    parser.add_argument(
        "--bootstrap-admin", action="append", default=None, metavar="IDENTITY",
        help="an identity that is always an admin, whatever etcd says (repeatable; env "
             "VRC_BOOTSTRAP_ADMIN, comma-separated), e.g. spiffe://vrc/admin/root")
    parser.add_argument(
        "--write-rate", type=positive_seconds, default=DEFAULT_WRITE_RATE, metavar="N",
        help=f"writes per second each identity may make (default {DEFAULT_WRITE_RATE:g}; "
             "Unix-socket callers are not limited)")
    parser.add_argument("--write-burst", type=positive_int, default=DEFAULT_WRITE_BURST,
                        metavar="N", help=f"... in a burst (default {DEFAULT_WRITE_BURST})")
    parser.add_argument(
        "--history-max-age", type=duration, default=DEFAULT_HISTORY_AGE, metavar="DURATION",
        help="drop audit records older than this (e.g. 30d, 12h, 900s; 0: never; default "
             "30d)")
    parser.add_argument(
        "--history-max-records", type=non_negative_int, default=DEFAULT_HISTORY_RECORDS,
        metavar="N", help=f"keep at most the newest N audit records (0: no limit; default "
                          f"{DEFAULT_HISTORY_RECORDS})")
    parser.add_argument(
        "--history-prune-interval", type=duration, default=60.0, metavar="DURATION",
        help="how often each replica prunes the audit trail (default 60s)")
    parser.add_argument("--metrics", default=None, metavar="HOST:PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics")
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="log lines for people or JSON lines (default text)")
    parser.add_argument("--log-level", choices=LEVELS, default="info", type=str.lower,
                        help="default info")
    parser.add_argument(
        "--lease-ttl", type=positive_seconds, default=5.0, metavar="SECONDS",
        help="TTL of agents' liveness leases: a host whose agent is gone shows down within "
             "it (whole seconds; default 5)")  # fmt: skip
    parser.add_argument("--id", default=None, metavar="NAME",
                        help="this replica's name in logs and status (default HOSTNAME-PID)")
    parser.add_argument("--max-sync-streams", type=positive_int, default=1024, metavar="N",
                        help="agents' Sync streams open at once, in total (default 1024)")
    parser.add_argument(
        "--max-sync-streams-per-client", type=positive_int, default=1024, metavar="N",
        help="... per client address (default 1024; every Unix-socket client counts as one, "
             "so keep it at the total when agents dial a socket)")  # fmt: skip
    parser.add_argument("--max-watch-streams", type=positive_int, default=32, metavar="N",
                        help="WatchConfig streams open at once, in total (default 32)")
    parser.add_argument("--max-watch-streams-per-client", type=positive_int, default=8,
                        metavar="N", help="... per client address (default 8; every Unix-socket "
                                          "client counts as one)")
    return parser


@dataclass(slots=True)
class ControllerOptions:
    listen: str
    data_dir: str
    etcd: EtcdConfig | None  # None: the private etcd
    etcd_wait: float = 30.0
    tls: TlsConfig | None = None  # the server side: a pair (and a CA, for mutual TLS)
    insecure: bool = False
    also_listen: tuple[str, ...] = ()
    health_listen: str | None = None
    bootstrap_admins: tuple[str, ...] = ()
    write_rate: float = DEFAULT_WRITE_RATE
    write_burst: int = DEFAULT_WRITE_BURST
    history_max_age: float | None = DEFAULT_HISTORY_AGE
    history_max_records: int | None = DEFAULT_HISTORY_RECORDS
    history_prune_interval: float = 60.0
    reauthorize_every: float = RECHECK_SECONDS  # open streams re-check their caller's role
    metrics: str | None = None
    lease_ttl: float = 5.0
    replica_id: str = ""
    max_watch_streams: int = 32
    max_watch_streams_per_client: int = 8
    max_sync_streams: int = 1024
    max_sync_streams_per_client: int = 1024
    sync_queue_limit: int = SYNC_QUEUE_LIMIT  # messages a Sync stream may fall behind
    store_root: str = DEFAULT_ROOT


def options_from(args: argparse.Namespace) -> ControllerOptions:
    """Every option checked before anything starts (ValueError naming the flag)."""
    data_dir = args.data_dir or default_data_dir()
    listens = args.listen or [f"unix:{os.path.join(data_dir, 'controller.sock')}"]
    shared = tls_from_args(args, warn=_warn_deprecated)
    tls = shared.server_side()
    for listen in listens:
        serving.check_access(serving.parse_listen(listen), tls, args.insecure)
    shared.check_readable()
    if args.metrics:
        serving.parse_hostport(args.metrics)
    if args.health_listen:
        serving.parse_listen(args.health_listen, "--health-listen")
    etcd = etcd_config(args, shared)
    bootstrap = tuple(args.bootstrap_admin or [])
    if not bootstrap and os.environ.get("VRC_BOOTSTRAP_ADMIN"):
        bootstrap = tuple(n.strip() for n in os.environ["VRC_BOOTSTRAP_ADMIN"].split(",")
                          if n.strip())
    for name in bootstrap:
        try:
            identity_text("--bootstrap-admin", name)
        except StoreError as error:
            raise ValueError(str(error)) from None
    return ControllerOptions(
        listen=listens[0], also_listen=tuple(listens[1:]), health_listen=args.health_listen,
        data_dir=data_dir, etcd=etcd, etcd_wait=args.etcd_wait, tls=tls,
        insecure=args.insecure, metrics=args.metrics, lease_ttl=args.lease_ttl,
        bootstrap_admins=bootstrap, write_rate=args.write_rate, write_burst=args.write_burst,
        history_max_age=args.history_max_age or None,
        history_max_records=args.history_max_records or None,
        history_prune_interval=args.history_prune_interval or 60.0,
        replica_id=args.id or default_id(), max_watch_streams=args.max_watch_streams,
        max_watch_streams_per_client=args.max_watch_streams_per_client,
        max_sync_streams=args.max_sync_streams,
        max_sync_streams_per_client=args.max_sync_streams_per_client,
        store_root=Keys(args.store_root).root)


def etcd_config(args: argparse.Namespace, shared: TlsConfig) -> EtcdConfig | None:
    """The etcd client's config, None for the private etcd. TLS files: ``--etcd-cacert``,
    ``--etcd-cert``, ``--etcd-key``; for an https etcd given none of them, the shared
    ``--tls-ca``/``--tls-cert``/``--tls-key`` (one CA for everything)."""
    own = (args.etcd_cacert, args.etcd_cert, args.etcd_key)
    if not args.etcd:
        if any((*own, args.etcd_user)):
            raise ValueError("--etcd-cacert/--etcd-cert/--etcd-key/--etcd-user need --etcd "
                             "(the private etcd has its own certificates)")
        return None
    endpoints = parse_endpoints(args.etcd)
    cacert, cert, key = own
    if not any(own) and any(e.secure for e in endpoints) and shared.configured:
        cacert, cert, key = shared.ca, shared.cert, shared.key
    etcd = EtcdConfig(endpoints, cacert=cacert, cert=cert, key=key, user=args.etcd_user,
                      password=args.etcd_password)
    etcd.channel_credentials()  # the TLS files are readable
    return etcd


DURATION = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)([smhd]?)")


def duration(text: str) -> float:
    """Seconds, or a number with s, m, h or d: ``900``, ``15m``, ``30d``; 0 is allowed.
    ASCII digits only (``float`` alone takes ``inf`` and Arabic-Indic digits)."""
    match = DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration such as 900, 15m, 12h or 30d")
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(match.group(1)) * units[match.group(2)]


def non_negative_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, 0 or more")
    return int(text)


def _warn_deprecated(text: str) -> None:
    print(f"vrc-controller: warning: {text}", file=sys.stderr)


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
        self._build_server(service, [requests, authorization], budget.total + sync_budget.total)
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
            options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
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

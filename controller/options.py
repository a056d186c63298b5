"""``vrc-controller``'s command line: the flags, and the options they make, all checked
before anything starts (a ValueError names the flag)."""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from dataclasses import dataclass

from controller.access import identity_text
from controller.etcd import EtcdConfig, parse_endpoints
from controller.store import DEFAULT_ROOT, Keys, StoreError
from controller.sync.fanout import QUEUE_LIMIT as SYNC_QUEUE_LIMIT
from serving import server as serving
from serving.auth import RECHECK_SECONDS
from serving.logs import FORMATS, LEVELS
from serving.numbers import positive_seconds
from serving.tls import TlsConfig, add_tls_arguments, tls_from_args

ROOT_DATA_DIR = "/var/lib/vrc-controller"
DEFAULT_WRITE_RATE = 50.0  # writes/s per identity: far above what people or scripts need
DEFAULT_WRITE_BURST = 200
DEFAULT_HISTORY_AGE = 30 * 86400.0
DEFAULT_HISTORY_RECORDS = 100_000

__all__ = ["ROOT_DATA_DIR", "ControllerOptions", "build_parser", "default_data_dir",
           "default_id", "duration", "etcd_config", "options_from"]


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



"""``vrc-agent``: the per-host agent process.

Start order: refuse the node's primary interface (``agents/primary.py``: the
one holding the default route or the node's address) unless
``--allow-primary-interface``, open an AF_PACKET link per ``--interface``
(rings ready before anything can arrive), isolate those NICs from the
kernel's IP stack, create one engine Ethernet interface per NIC with the
NIC's MAC and MTU, start the data-plane loop, then the gRPC API (and the
metrics and health endpoints). Stop order is the reverse: health
NOT_SERVING, API stopped (no new calls), loop joined, links closed (their
promiscuous memberships go with the sockets), isolation removed. SIGTERM and
SIGINT stop the agent that way and it exits 0.

Before any of that, NICs a previous agent left isolated (it was killed) are
restored from their records in ``--run-dir``; ``vrc-agent --restore-nics``
does only that and exits (:mod:`agents.nicrecord`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from agents.dataplane import PRIORITIES, DataPlane
from agents.isolation import PROC_SYS, IsolationSet, RestoreReport, restore_previous
from agents.link import PacketLink, RingConfig, TxMode
from agents.nicrecord import DEFAULT_RUN_DIR, RecordError, RunDir
from agents.runtime import quiet_collector, steady_allocator
from agents.server import MAX_STREAMS, MAX_STREAMS_PER_CLIENT
from agents.stats import StatsSource
from serving.logs import FORMATS, LEVELS, configure_logging, get_logger
from serving.numbers import argparse_count
from serving.tls import TlsConfig, add_tls_arguments, tls_from_args

DEFAULT_LISTEN = "unix:/run/vrc/agent.sock"
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_START_FAILED = 1


@dataclass(slots=True)
class AgentOptions:
    """Everything the command line decides."""

    interfaces: list[str]
    listen: str = DEFAULT_LISTEN
    host_id: str = field(default_factory=socket.gethostname)
    controller: str | None = None
    state_dir: str | None = None
    controller_insecure: bool = False
    tls: TlsConfig = field(default_factory=TlsConfig)
    insecure: bool = False
    metrics: str | None = None
    isolation: bool = True
    tx_mode: TxMode = TxMode.AUTO
    arp_probes: int = 0  # RFC 5227 probes before a new address is used (0: at once)
    node_ip: str | None = None
    allow_primary_interface: bool = False
    health_listen: str | None = None
    proc_sys: str = str(PROC_SYS)
    max_streams: int = MAX_STREAMS
    max_streams_per_client: int = MAX_STREAMS_PER_CLIENT
    run_dir: str = DEFAULT_RUN_DIR
    dataplane_priority: str = "realtime"


MAX_ARP_PROBES = 255  # RFC 5227 probes an address may ask for (PROBE_NUM is 3)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrc-agent",
        description="Run the vrc router engine on this host's NICs (AF_PACKET) with a gRPC API. "
                    "Needs root (CAP_NET_RAW and CAP_NET_ADMIN). SIGTERM or Ctrl-C stops it "
                    "and undoes what it changed on the NICs.",
        epilog="example: vrc-agent -i eth1 -i eth2 --listen unix:/run/vrc/agent.sock, "
               "then: vrc --agent unix:/run/vrc/agent.sock ifaces",
    )  # fmt: skip
    parser.add_argument(
        "--interface", "-i", action="append", default=[], metavar="IFNAME[,IFNAME...]",
        help="a host NIC for the data plane (at least one; repeatable, or a comma-separated "
             "list); never the management NIC",
    )  # fmt: skip
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="unix:PATH|HOST:PORT",
        help=f"where the API listens (default {DEFAULT_LISTEN}); an address other hosts "
             "can reach needs TLS or --insecure",
    )  # fmt: skip
    parser.add_argument("--host-id", default=None, metavar="NAME",
                        help="this host's id in the cluster and in logs (default: the hostname)")
    parser.add_argument(
        "--controller", default=None, metavar="unix:PATH|HOST:PORT[,...]",
        help="dial this controller (several replicas: comma-separated, each redial takes the "
             "next) and apply the host's slice of the cluster configuration (Sync); a "
             "non-local address needs --tls-ca (and this host's agent certificate: "
             "--tls-cert, --tls-key) or --controller-insecure",
    )  # fmt: skip
    parser.add_argument(
        "--state-dir", default=None, metavar="DIR",
        help="keep the last applied slice here and come back with it after a restart, "
             "also while no controller is reachable (needs --controller)",
    )  # fmt: skip
    parser.add_argument("--controller-insecure", action="store_true",
                        help="dial a non-local controller without TLS")
    add_tls_arguments(parser, server=True, client=True)
    parser.add_argument("--insecure", action="store_true", help="serve a non-local API without TLS")
    parser.add_argument("--metrics", default=None, metavar="HOST:PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)")
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="log lines for people or JSON lines (default text)")
    parser.add_argument("--log-level", choices=LEVELS, default="info", type=str.lower,
                        help="default info")
    parser.add_argument(
        "--no-isolation", action="store_true",
        help="leave the kernel's IP stack on the data-plane NICs (it will answer too)",
    )  # fmt: skip
    parser.add_argument(
        "--arp-probes", type=argparse_count(0, MAX_ARP_PROBES), default=0, metavar="N",
        help="RFC 5227 probes before a new address is used (default 0: used at once and "
             "announced with a gratuitous ARP, conflicts still detected and defended; "
             "the RFC's PROBE_NUM is 3); an alias may ask for its own",
    )  # fmt: skip
    parser.add_argument(
        "--node-ip", default=None, metavar="ADDRESS",
        help="this node's own address (on Kubernetes: status.hostIP); an --interface holding "
             "it is the node's primary interface and is refused",
    )  # fmt: skip
    parser.add_argument(
        "--allow-primary-interface", action="store_true",
        help="take an --interface even if it holds the default route or --node-ip "
             "(isolating it cuts the node off the network)",
    )  # fmt: skip
    parser.add_argument(
        "--health-listen", default=None, metavar="HOST:PORT",
        help="also serve only grpc.health.v1, in plaintext, here (for kubelet's gRPC "
             "probes; default: off)",
    )  # fmt: skip
    parser.add_argument(
        "--proc-sys", default=str(PROC_SYS), metavar="DIR",
        help=f"where the kernel's sysctl tree is mounted (default {PROC_SYS}); in a container "
             "whose /proc/sys is read-only, a writable mount of the node's /proc/sys/net",
    )  # fmt: skip
    parser.add_argument(
        "--run-dir", default=DEFAULT_RUN_DIR, metavar="DIR",
        help=f"where the NICs' original state is kept while they are isolated (default "
             f"{DEFAULT_RUN_DIR}); a start after a crash restores the NICs from it",
    )  # fmt: skip
    parser.add_argument(
        "--restore-nics", action="store_true",
        help="restore the NICs a killed vrc-agent left isolated (from --run-dir) and exit",
    )  # fmt: skip
    parser.add_argument(
        "--max-streams", type=argparse_count(1), default=MAX_STREAMS, metavar="N",
        help=f"API streams (events, captures, hooks) open at once, all clients together "
             f"(default {MAX_STREAMS}); more are refused with RESOURCE_EXHAUSTED, and "
             "unary calls and health checks are served whatever streams are open",
    )  # fmt: skip
    parser.add_argument(
        "--max-streams-per-client", type=argparse_count(1), default=MAX_STREAMS_PER_CLIENT,
        metavar="N",
        help=f"API streams one client may hold open (default {MAX_STREAMS_PER_CLIENT}); a client "
             "is a TCP peer's address, a client certificate, or the Unix socket",
    )  # fmt: skip
    parser.add_argument(
        "--dataplane-priority", choices=PRIORITIES, default="realtime",
        help="scheduling of the data-plane thread: realtime (SCHED_RR 10, the default; "
             "falls back to high, then normal, without CAP_SYS_NICE), high (nice -10) "
             "or normal",
    )  # fmt: skip
    parser.add_argument(
        "--tx-mode", choices=[mode.value for mode in TxMode], default=TxMode.AUTO.value,
        help=argparse.SUPPRESS,
    )  # fmt: skip
    return parser


def options_from(args: argparse.Namespace) -> AgentOptions:
    options = AgentOptions(
        interfaces=interface_list(args.interface),
        listen=args.listen,
        controller=args.controller,
        state_dir=args.state_dir,
        controller_insecure=args.controller_insecure,
        tls=tls_from_args(args, warn=_warn_deprecated),
        insecure=args.insecure,
        metrics=args.metrics,
        isolation=not args.no_isolation,
        tx_mode=TxMode(args.tx_mode),
        arp_probes=args.arp_probes,
        node_ip=args.node_ip,
        allow_primary_interface=args.allow_primary_interface,
        health_listen=args.health_listen,
        proc_sys=args.proc_sys,
        max_streams=args.max_streams,
        max_streams_per_client=args.max_streams_per_client,
        run_dir=args.run_dir,
        dataplane_priority=args.dataplane_priority,
    )
    if args.host_id:
        options.host_id = args.host_id
    return options


def _warn_deprecated(text: str) -> None:
    print(f"vrc-agent: warning: {text}", file=sys.stderr)


def interface_list(values: Sequence[str]) -> list[str]:
    """``--interface`` values, each one NIC or a comma-separated list (a DaemonSet passes
    one ``--interface=$(VRC_INTERFACES)`` from its ConfigMap); in order, each name once."""
    names = [name.strip() for value in values for name in value.split(",")]
    return list(dict.fromkeys(name for name in names if name))


class StartError(Exception):
    """The agent cannot start for a reason the operator can fix; the text says which."""


def check_options(options: AgentOptions, *, read_files: bool = True) -> None:
    """Check every option that needs no NIC (ValueError naming the flag).

    Runs before any NIC is opened or isolated, so a typo in ``--listen`` or
    an unreadable TLS file never touches the data-plane NICs. ``read_files``
    False checks a command line away from the node it is for (the TLS files
    are not there; their flags still must agree).
    """
    from agents.health import FLAG as HEALTH_FLAG
    from agents.metrics import parse_hostport
    from agents.primary import parse_node_ip
    from agents.server import check_access, parse_listen

    address = parse_listen(options.listen)
    check_access(address, options.tls.server_side(), options.insecure)
    if read_files:
        options.tls.check_readable()
    if options.metrics:
        parse_hostport(options.metrics)
    if options.health_listen:
        parse_listen(options.health_listen, HEALTH_FLAG)
    if options.node_ip is not None:
        parse_node_ip(options.node_ip)
    check_sync_options(options)


def controller_tls(options: AgentOptions) -> TlsConfig | None:
    """The shared TLS flags, for dialling the controller (the host's agent certificate and
    the CA); None without any (plaintext, for a local or --controller-insecure target)."""
    return options.tls.client_side()


def check_sync_options(options: AgentOptions) -> None:
    from agents.sync.dial import check_targets

    if options.controller is None:
        for flag, value in (("--state-dir", options.state_dir),
                            ("--controller-insecure", options.controller_insecure or None)):
            if value is not None:
                raise ValueError(f"{flag} needs --controller")
        return
    check_targets(options.controller, controller_tls(options), options.controller_insecure)
    if options.state_dir is not None:
        check_state_dir(options.state_dir)


def check_state_dir(directory: str) -> None:
    """A writable directory, or one that can be made (its nearest existing ancestor is a
    writable directory): ValueError naming the flag. Nothing is created here; the state
    file's first write makes the directory."""
    path = os.path.abspath(directory)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"--state-dir {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--state-dir {directory}: {existing} is not writable")


NEEDS_PRIVILEGE = "vrc-agent needs root (CAP_NET_RAW and CAP_NET_ADMIN)"


def nic_problem(ifname: str, error: OSError) -> str:
    """What went wrong opening ``ifname``, in words that say what to do."""
    if error.errno in (errno.EPERM, errno.EACCES):
        return f"--interface {ifname}: permission denied: {NEEDS_PRIVILEGE}"
    if error.errno == errno.ENODEV or "no interface with this name" in str(error):
        return (f"--interface {ifname}: no such network interface "
                "(`ip link` lists this namespace's)")
    return f"--interface {ifname}: {error.strerror or error}"


def check_nic_mac(ifname: str, mac: bytes) -> None:
    """The engine runs Ethernet: a NIC without a unicast MAC (loopback, tun) cannot be one."""
    if len(mac) != 6 or mac == bytes(6) or mac[0] & 1:
        shown = mac.hex(":") or "none"
        raise StartError(f"--interface {ifname}: not an Ethernet NIC with a unicast MAC "
                         f"(MAC {shown})")


def default_engine_factory(options: AgentOptions) -> Any:
    """The engine with the configuration the options ask for. Its clock is the data plane's
    (``time.monotonic``); the offset to UT, read once here, dates timestamp options."""
    from router import ArpConfig, Engine, EngineConfig, Ipv4Config

    utc_offset = time.time() - time.monotonic()
    return Engine(EngineConfig(arp=ArpConfig(probe_num=options.arp_probes),
                               ipv4=Ipv4Config(utc_offset=utc_offset)))


class Agent:
    """The running pieces of one agent; ``start`` and ``stop`` in the documented orders."""

    def __init__(
        self,
        options: AgentOptions,
        *,
        engine_factory: Callable[[AgentOptions], Any] = default_engine_factory,
        log: Any = None,
    ) -> None:
        self.options = options
        self.engine_factory = engine_factory
        self.log = log or get_logger("vrc.agent", host=options.host_id)
        self.links: dict[int, PacketLink] = {}
        self.isolation = IsolationSet(RunDir(options.run_dir), proc_sys=Path(options.proc_sys))
        self.gate: Any = None
        self.dataplane: DataPlane | None = None
        self.server: Any = None
        self.address = ""
        self.metrics: Any = None
        self.health: Any = None
        self.health_checker: Any = None
        self.stats: Any = None
        self.sync: Any = None
        self._opened: list[PacketLink] = []

    def start(self) -> None:
        """Bring everything up; on any failure undo what was done and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        from agents.gate import Gate
        from agents.server import build_server, stream_budget

        opts = self.options
        check_options(opts)
        self._restore_previous_run()
        if opts.isolation:
            self._refuse_primary_interfaces()
        ring = RingConfig(tx_mode=opts.tx_mode)
        for ifname in opts.interfaces:
            self._opened.append(self._open_link(ifname, ring))
        if opts.isolation:
            for link in self._opened:
                state = self._isolate(link.ifname)
                self.log.info("isolated", ifname=link.ifname, method=state.method.value
                              if state.method else None)
        else:
            self.log.warning("isolation off: the kernel also processes data-plane frames")
        engine = self.engine_factory(opts)
        for link in self._opened:
            # offload: the link hands each frame's virtio_net_hdr to the kernel
            ifp = engine.add_ethernet(link.ifname, mac=link.mac, mtu=link.mtu, up=True,
                                      offload=True)
            self.links[ifp.index] = link
            self.log.info("interface", ifname=link.ifname, ifindex=ifp.index,
                          mac=link.mac.hex(":"), mtu=link.mtu, tx_mode=link.tx_mode.value)
        self.gate = Gate(engine)
        self.dataplane = DataPlane(self.gate, self.links, priority=opts.dataplane_priority,
                                   log=self.log)
        quiet_collector()
        if not steady_allocator():
            self.log.warning("mallopt unavailable: large frames will page-fault (not glibc)")
        self.dataplane.start()
        dataplane = self.dataplane
        self.stats = StatsSource(
            self.gate, links=lambda: list(self.links.values()),
            loop_stats=lambda: dataplane.stats if self.dataplane is not None else None)
        self.server, self.address = build_server(
            self.gate, opts.listen, tls=opts.tls, insecure=opts.insecure, log=self.log,
            wall_offset=wall_offset, nic_mtu=self.nic_mtu,
            streams=stream_budget(opts.max_streams, opts.max_streams_per_client),
            stats=self.stats,
        )  # fmt: skip
        if opts.controller:
            self._restore_sync(opts.controller)  # before the API serves: see SyncClient.restore
        self.server.start()
        if opts.metrics:
            self._start_metrics(opts.metrics)
        if opts.health_listen:
            self._start_health(opts.health_listen)
        if self.sync is not None:
            self.sync.start()
        self.log.info("agent started", listen=self.address, interfaces=opts.interfaces,
                      controller=opts.controller)

    def _restore_sync(self, target: str) -> None:
        from agents.sync import NicInfo, SyncClient, SyncConfig

        opts = self.options
        nics = tuple(NicInfo(link.ifname, link.mac.hex(":"), link.mtu)
                     for link in self.links.values())
        config = SyncConfig(target=target, host_id=opts.host_id, agent_endpoint=self.address,
                            nics=nics, state_dir=opts.state_dir, tls=controller_tls(opts),
                            insecure=opts.controller_insecure)
        log = self.log.bind(part="sync") if hasattr(self.log, "bind") else self.log
        self.sync = SyncClient(self.gate, config, log=log)
        self.sync.restore()

    def _refuse_primary_interfaces(self) -> None:
        """StartError for an --interface that is the node's primary one (agents/primary.py),
        unless --allow-primary-interface; runs before any NIC is opened."""
        from agents.primary import parse_node_ip, read_host_facts, refusal

        opts = self.options
        node_ip = parse_node_ip(opts.node_ip) if opts.node_ip is not None else None
        try:
            facts = read_host_facts(need_addresses=node_ip is not None)
        except OSError as error:
            raise StartError(f"cannot tell the node's primary interface: {error}") from None
        for ifname in opts.interfaces:
            reasons = facts.reasons(ifname, node_ip)
            if not reasons:
                continue
            if not opts.allow_primary_interface:
                raise StartError(refusal(ifname, reasons))
            self.log.warning("taking the node's primary interface (--allow-primary-interface)",
                             ifname=ifname, reasons=reasons)

    def _start_health(self, listen: str) -> None:
        from agents.health import build_health_server

        self.health, self.health_checker, address = build_health_server(listen)
        self.health.start()
        self.log.info("health", listen=address)
    def _restore_previous_run(self) -> None:
        """NICs a killed agent left isolated go back to their recorded state first.

        A NIC of ours whose record cannot be restored is refused later (by
        ``IsolationSet.add``): isolating it now would take its isolated state
        for the original one.
        """
        assert self.isolation.run_dir is not None
        try:
            report = restore_previous(self.isolation.run_dir, self.isolation.proc_sys)
        except RecordError as error:
            raise StartError(str(error)) from None
        log_restore(self.log, report)

    def nic_mtu(self, ifname: str) -> int | None:
        """The MTU the host NIC had when its link opened (the transmit ring's slots are
        sized for it); None for an interface without a NIC."""
        link = next((lk for lk in self.links.values() if lk.ifname == ifname), None)
        return link.mtu if link is not None else None

    @staticmethod
    def _open_link(ifname: str, ring: RingConfig) -> PacketLink:
        try:
            link = PacketLink.open(ifname, ring)
        except OSError as error:
            raise StartError(nic_problem(ifname, error)) from None
        try:
            check_nic_mac(ifname, link.mac)
        except StartError:
            link.close()
            raise
        return link

    def _isolate(self, ifname: str) -> Any:
        try:
            return self.isolation.add(ifname)
        except RecordError as error:
            raise StartError(str(error)) from None
        except OSError as error:
            if error.errno in (errno.EPERM, errno.EACCES):
                raise StartError(f"isolating {ifname}: permission denied: {NEEDS_PRIVILEGE}"
                                 ) from None
            if error.errno == errno.EROFS:
                raise StartError(
                    f"isolating {ifname}: {error.filename} is read-only (a container's /proc/sys "
                    "is): mount the node's /proc/sys/net writable elsewhere and pass --proc-sys"
                ) from None
            raise

    def _start_metrics(self, listen: str) -> None:
        from agents.metrics import EngineCollector, serve_metrics

        self.metrics = serve_metrics(EngineCollector.of(self.stats), listen)
        self.log.info("metrics", listen=self.metrics.address)

    def stop(self) -> None:
        """Stop in reverse order; every step runs even if an earlier one failed."""
        if self.health_checker is not None:
            from agents.health import set_not_serving

            set_not_serving(self.health_checker)
        if self.sync is not None:
            if not self.sync.stop(timeout=5.0):
                self.log.error("sync client did not stop in time")
            self.sync = None
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop(grace=2.0).wait(5.0)
            self.server = None
        if self.metrics is not None:
            with contextlib.suppress(Exception):
                self.metrics.close()
            self.metrics = None
        if self.health is not None:
            with contextlib.suppress(Exception):
                self.health.stop(grace=0.5).wait(5.0)
            self.health, self.health_checker = None, None
        if self.dataplane is not None:
            if not self.dataplane.stop(timeout=5.0):
                self.log.error("data-plane loop did not stop in time")
            self.dataplane = None
        for link in self._opened:
            with contextlib.suppress(Exception):
                link.close()
        self._opened.clear()
        self.links.clear()
        for error in self.isolation.remove():
            self.log.error("isolation not fully removed", error=error)


def log_restore(log: Any, report: RestoreReport) -> None:
    for ifname in report.restored:
        log.warning("NIC restored from the record of an agent that did not stop cleanly",
                    ifname=ifname)
    for ifname in report.dropped:
        log.info("record of a NIC that is gone or was replaced dropped", ifname=ifname)
    for ifname in report.busy:
        log.info("NIC held by another running vrc-agent left alone", ifname=ifname)
    for ifname, errors in report.failed.items():
        log.error("NIC could not be restored; its record is kept", ifname=ifname,
                  errors=errors)


def restore_nics(run_dir: str, proc_sys: str, log: Any) -> int:
    """``vrc-agent --restore-nics``: 0 when every stale record was restored."""
    try:
        report = restore_previous(RunDir(run_dir), Path(proc_sys))
    except RecordError as error:
        log.error("cannot restore NICs", error=str(error))
        return EXIT_START_FAILED
    log_restore(log, report)
    if not (report.restored or report.dropped or report.busy or report.failed):
        log.info("no NIC to restore", run_dir=run_dir)
    return EXIT_OK if report.ok and not report.busy else EXIT_START_FAILED


def wall_offset() -> float:
    """Seconds from the data-plane clock (``time.monotonic``) to UNIX time, for captures."""
    return time.time() - time.monotonic()


def install_stop_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.interface and not args.restore_nics:
        parser.error("at least one --interface is required")
    try:
        configure_logging(args.log_format, args.log_level)
    except ValueError as exc:
        parser.error(str(exc))
    if args.restore_nics:
        log = get_logger("vrc.agent", host=args.host_id or socket.gethostname())
        return restore_nics(args.run_dir, args.proc_sys, log)
    try:
        options = options_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    if not options.interfaces:  # --interface= with an empty list
        parser.error("at least one --interface is required")
    log = get_logger("vrc.agent", host=options.host_id)
    stop = threading.Event()
    install_stop_signals(stop)
    agent = Agent(options, log=log)
    try:
        agent.start()
    except ValueError as exc:
        log.error("bad option", error=str(exc))
        return EXIT_USAGE
    except StartError as exc:
        log.error("agent failed to start", error=str(exc))
        return EXIT_START_FAILED
    except Exception as exc:
        log.error("agent failed to start", error=str(exc), kind=type(exc).__name__)
        return EXIT_START_FAILED
    try:
        while not stop.wait(1.0):
            pass
        log.info("stopping")
    finally:
        agent.stop()
    log.info("agent stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

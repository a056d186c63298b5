"""``vrc up``: a whole vrc cluster on this machine; ``vrc down``: remove what a run left.

    vrc up [--hosts N] [--demo] [--clean] [--no-tls] [--state-dir DIR]
    vrc down [--state-dir DIR]

``vrc up`` (root) builds the chain of :mod:`lab.chain` in network
namespaces — a kernel host at each end, N router hosts between them, one
veth segment each — starts ``vrc-controller`` with its private etcd and a
``vrc-agent`` per router host dialling it, configures every alias and the
two end prefixes *through the controller*, waits until every agent applied
them, and shows the end hosts pinging each other through every router in
between (and the path, hop by hop). Then it prints what it built and the
commands to try, and stays up until Ctrl-C (or SIGTERM); ``--demo`` stops
right away and exits 0 (1, with the reason, if anything failed).

Everything it makes lives under ``DIR/PREFIX`` (``/run/vrc-up/vuXXXXXX``):
the state file written before each thing is made, the controller's data and
etcd, sockets, logs, and the run's PKI: a throw-away CA and one certificate
per component (``pki/``), so every link — CLI and agents to the controller,
the controller to its etcd, the CLI to the agents — is mutual TLS and each
agent may Sync as its own host only (``--no-tls``: plaintext sockets).
Whatever ends the run — Ctrl-C, SIGTERM, a failure — removes it all; if
``vrc up`` itself is killed, its daemons die with it and ``vrc down`` (or
the next ``vrc up --clean``) removes the namespaces and the directory from
the state file. :mod:`lab` does the work; this module is
the command line and what it prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from cli.options import whole_number
from lab import signals
from lab.chain import END_A, END_B, MAX_HOSTS
from lab.netns import LabError, require_root_and_tools
from lab.state import DEFAULT_ROOT, RunState, StateError, clean_run, runs
from lab.up import ChainCluster, ChainOptions, PingResult

ROOT_ENV = "VRC_UP_DIR"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130
TOOLS = ("ip", "ping")


class Console:
    """What ``vrc up`` prints: steps with their time, then the report."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        print(f" * {what} ...", end="", file=self.out, flush=True)
        try:
            yield
        except BaseException:
            print(" failed", file=self.out, flush=True)
            raise
        print(f" ok ({time.monotonic() - started:.1f} s)", file=self.out, flush=True)


def build_up_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrc up",
        description="Run a whole vrc cluster on this machine (root): a controller with its "
                    "private etcd and N agents in network namespaces, in a chain between two "
                    "kernel hosts, configured through the controller. Ctrl-C removes "
                    "everything it made.",
        epilog="then: the commands it prints (vrc hosts, vrc status, vrc prefix ls, a "
               "capture through --host). vrc down removes what a killed run left.")
    parser.add_argument("--hosts", type=whole_number(1, MAX_HOSTS), default=3, metavar="N",
                        help=f"router hosts in the chain, each a vrc-agent (1..{MAX_HOSTS}, "
                             "default 3)")
    parser.add_argument("--demo", action="store_true",
                        help="show that it works, then remove everything and exit (0 when "
                             "the end hosts reached each other)")
    parser.add_argument("--clean", action="store_true",
                        help="first remove what earlier runs left (as vrc down does)")
    parser.add_argument("--no-tls", dest="tls", action="store_false",
                        help="plaintext Unix sockets instead of mutual TLS (by default a "
                             "throw-away CA in the run's directory gives every component its "
                             "certificate)")
    _state_dir_flag(parser)
    return parser


def build_down_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrc down",
        description="Stop every vrc up run of this machine and remove what it made, also what "
                    "a run that was killed left behind (from its state file).")
    _state_dir_flag(parser)
    return parser


def _state_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT), metavar="DIR",
                        help=f"where runs keep their state (env {ROOT_ENV}; default "
                             f"{DEFAULT_ROOT})")


# --- vrc down ----------------------------------------------------------------------------


def clean_all(root: Path, console: Console) -> int:
    """Undo every run under ``root``; how many there were."""
    found = runs(root)
    for directory in found:
        clean_run(directory, say=lambda text: console.line(f"vrc down: {text}"))
    return len(found)


def down_main(argv: Sequence[str]) -> int:
    args = build_down_parser().parse_args(argv)
    console = Console()
    if os.geteuid() != 0:
        print("vrc down: needs root (it deletes network namespaces)", file=sys.stderr)
        return EXIT_FAILED
    if clean_all(args.state_dir, console) == 0:
        console.line(f"vrc down: nothing to clean up in {args.state_dir}")
    return EXIT_OK


# --- vrc up ------------------------------------------------------------------------------


def leftovers(root: Path) -> list[str]:
    """Runs under ``root`` whose vrc up is gone (crashed or killed)."""
    found = []
    for directory in runs(root):
        try:
            state = RunState.load(directory)
        except StateError:
            continue
        if not state.owner_alive():
            found.append(state.prefix)
    return found


def up_main(argv: Sequence[str]) -> int:
    args = build_up_parser().parse_args(argv)
    console = Console()
    try:
        require_root_and_tools(TOOLS)
    except LabError as error:
        print(f"vrc up: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.clean:
        clean_all(args.state_dir, console)
    else:
        left = leftovers(args.state_dir)
        if left:
            console.line(f"note: runs that did not finish left things behind ({', '.join(left)}):"
                         " `vrc down` removes them (or start with `vrc up --clean`)")
    signals.install()
    cluster: ChainCluster | None = None
    try:
        cluster = ChainCluster(ChainOptions(hosts=args.hosts, root=args.state_dir,
                                            tls=args.tls))
        run(cluster, console, demo=args.demo)
        return EXIT_OK
    except signals.StopRequested as stop:
        console.line(f"\nvrc up: {stop} received, stopping")
        return EXIT_STOPPED
    except (LabError, StateError) as error:
        print(f"\nvrc up: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        signals.cleaning_up("vrc up: cleaning up, one moment (everything it made goes)")
        if cluster is not None:
            with console.step("removing every process, namespace and file of the run"):
                cluster.close()
        signals.restore()


def run(cluster: ChainCluster, console: Console, *, demo: bool) -> None:
    plan = cluster.plan
    hosts = f"{len(plan.hosts)} router host" + ("s" if len(plan.hosts) > 1 else "")
    console.line(f"vrc up: {hosts} in a chain between two kernel hosts "
                 f"(run {plan.prefix}, state in {cluster.directory})")
    _build(cluster, console)
    with console.step(f"aliases and prefix claims through the controller "
                      f"({len(list(cluster.configuration()))} writes)"):
        revision = cluster.configure()
    with console.step(f"every agent applied revision {revision}"):
        cluster.wait_converged(revision)
    forth, back = _traffic(cluster, console)
    _report(cluster, console, forth, back)
    if not (forth.ok and back.ok):
        raise LabError("the end hosts did not reach each other through the chain "
                       "(see the ping output above)")
    if demo:
        console.line("vrc up --demo: it works; removing everything")
        return
    _wait_until_stopped(cluster, console)


def _build(cluster: ChainCluster, console: Console) -> None:
    plan = cluster.plan
    with console.step(f"{len(plan.hosts) + 2} network namespaces, {len(plan.segments)} veth "
                      "segments"):
        cluster.build_chain()
    if cluster.pki is not None:
        console.line(f"   mutual TLS on every link: a throw-away CA and a certificate per "
                     f"component in {cluster.pki.directory}")
    with console.step("vrc-controller with its private etcd"):
        cluster.start_controller()
    with console.step(f"{len(plan.hosts)} vrc-agents, each registered with the controller"):
        cluster.start_agents()
        cluster.wait_registered()


def _traffic(cluster: ChainCluster, console: Console) -> tuple[PingResult, PingResult]:
    plan = cluster.plan
    a, b = plan.a.ip, plan.b.ip
    with console.step(f"ping {END_A} ({a}) -> {END_B} ({b}) through "
                      f"{', '.join(plan.hosts)}"):
        forth = cluster.ping(END_A, b)
        if not forth.ok:
            raise LabError(f"ping {a} -> {b}: {forth.received}/{forth.sent} answered:\n"
                           f"{forth.output}")
    with console.step(f"ping {END_B} ({b}) -> {END_A} ({a})"):
        back = cluster.ping(END_B, a)
        if not back.ok:
            raise LabError(f"ping {b} -> {a}: {back.received}/{back.sent} answered:\n"
                           f"{back.output}")
    return forth, back


def _report(cluster: ChainCluster, console: Console, forth: PingResult,
            back: PingResult) -> None:
    plan = cluster.plan
    names = {port.ip: port.node for seg in plan.segments for port in (seg.left, seg.right)}
    hops = cluster.hops(END_A, plan.b.ip)
    console.line()
    console.line(f"{END_A} -> {END_B}: {forth.received}/{forth.sent} replies, rtt "
                 f"min/avg/max/mdev {forth.rtt} ms; {END_B} -> {END_A}: "
                 f"{back.received}/{back.sent}, {back.rtt} ms")
    console.line("path " + " -> ".join([f"{END_A} {plan.a.ip}"] +
                                       [f"{names.get(hop, '?')} {hop}" for hop in hops]))
    console.line()
    console.line("what runs:")
    rows = [("NODE", "NAMESPACE", "WHAT", "ADDRESSES")]
    for node in (END_A, *plan.hosts, END_B):
        ports = plan.ports_of(node)
        addresses = ", ".join(f"{p.address} on {p.ifname}" for p in ports)
        if node in (END_A, END_B):
            what = "kernel host"
            addresses += f", default via {plan.gateway_of(node)}"
        else:
            what = f"vrc-agent (pid {cluster.agents[node].pid})"
        rows.append((node, plan.netns_name(node), what, addresses))
    controller = cluster.controller
    if controller is not None:
        rows.append(("-", "(this one)", f"vrc-controller (pid {controller.pid})",
                     controller.target + (f", etcd pid {cluster.etcd_pid}"
                                          if cluster.etcd_pid else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        console.line("  " + "  ".join(cell.ljust(width) for cell, width in
                                      zip(row[:3], widths, strict=True)) + "  " + row[3])
    _commands(cluster, console)


def _commands(cluster: ChainCluster, console: Console) -> None:
    plan = cluster.plan
    assert cluster.controller is not None
    middle = plan.hosts[len(plan.hosts) // 2]
    port = plan.ports_of(middle)[0]
    a_ns = plan.netns_name(END_A)
    console.line()
    console.line("try (in another shell, as root):")
    console.line(f"  export VRC_CONTROLLER={cluster.controller.target}")
    tls = cluster.client_tls
    if tls is not None:  # the admin's certificate; VRC_TLS_* are the --tls-* flags
        console.line(f"  export VRC_TLS_CA={tls.ca} VRC_TLS_CERT={tls.cert} "
                     f"VRC_TLS_KEY={tls.key}")
    for command, why in (
        ("vrc hosts", "the hosts, their agents and which controller holds them"),
        ("vrc status", "the fleet: the version every host has applied"),
        (f"vrc status {middle}", f"each item of {middle}'s slice: applied, failed, pending"),
        ("vrc prefix ls", "the claimed prefixes and their owners"),
        ("vrc alias ls", "every alias of the cluster"),
        (f"vrc --host {middle} routes", f"{middle}'s routes, computed by the controller"),
        (f"vrc --host {middle} capture {port.ifname} -c 5",
         f"frames through {middle} (while {END_A} pings)"),
        (f"ip netns exec {a_ns} ping {plan.b.ip}", f"{END_A} -> {END_B} through the chain"),
        (f"kill -9 {cluster.agents[middle].pid}; vrc hosts",
         f"{middle} shows down within the lease TTL"),
    ):
        console.line(f"  {command:<48} # {why}")


def _wait_until_stopped(cluster: ChainCluster, console: Console) -> None:
    console.line()
    console.line("vrc up: running; Ctrl-C stops it and removes everything it made")
    told: set[str] = set()
    while True:
        time.sleep(1.0)
        for host, daemon in cluster.agents.items():
            if host not in told and not daemon.running():
                told.add(host)
                console.line(f"vrc up: agent {host} (pid {daemon.pid}) exited; its log: "
                             f"{daemon.log}")
        controller = cluster.controller
        if controller is not None and "controller" not in told and not controller.running():
            told.add("controller")
            console.line(f"vrc up: vrc-controller exited; its log: {controller.log}")


def main(argv: Sequence[str]) -> int:
    """``vrc up ...`` or ``vrc down ...`` (``argv`` starts with the command)."""
    command, rest = argv[0], list(argv[1:])
    return up_main(rest) if command == "up" else down_main(rest)

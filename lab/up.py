"""A whole cluster on one machine: the chain of :mod:`lab.chain`, a controller, an agent per host.

This is what ``vrc up`` runs, and what the end-to-end tests build (with
their own etcd, fewer hosts, or a second controller)::

    with ChainCluster(ChainOptions(hosts=3, root=Path("/run/vrc-up"))) as cluster:
        cluster.build()           # namespaces, segments, controller, agents registered
        revision = cluster.configure()  # aliases and prefix claims, through the controller
        cluster.wait_converged(revision)
        cluster.ping("a", cluster.plan.b.ip)

Every step is bounded in time and raises :class:`lab.LabError` with what to
look at; :meth:`ChainCluster.close` removes everything (the run directory
too), also after a failure. The run's state file (:mod:`lab.state`) is
written as things are made, so ``vrc down`` can undo a run that crashed.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from lab import cluster as daemons
from lab.chain import END_A, END_B, Chain, ChainPlan, build_chain, plan_chain, plan_ring
from lab.netns import Lab, LabError, Netns, new_prefix
from lab.procs import ProcessRecord
from lab.state import DEFAULT_ROOT, RunState
from serving.pki import DevPki, make_dev_pki
from serving.tls import TlsConfig
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL
REQUEST_TIMEOUT = 10.0
REGISTER_TIMEOUT = 60.0
CONVERGE_TIMEOUT = 60.0
PING_TIMEOUT = 30.0
# protoc's grpc plugin writes no type hints; this is the signature it has.
controller_stub: Callable[[grpc.Channel], Any] = controller_pb2_grpc.ControllerStub


@dataclass(slots=True)
class ChainOptions:
    hosts: int = 3
    ring: bool = False  # lab.chain.plan_ring instead of a chain
    root: Path = DEFAULT_ROOT
    prefix: str = field(default_factory=lambda: new_prefix("vu"))
    etcd: str | None = None  # None: the controller's private etcd
    lease_ttl: float | None = None  # None: the controller's default
    agent_args: tuple[str, ...] = ()
    controller_args: tuple[str, ...] = ()
    tls: bool = True  # mutual TLS on every link, from a throw-away CA in the run directory


@dataclass(frozen=True, slots=True)
class PingResult:
    sent: int
    received: int
    rtt: str  # "min/avg/max/mdev ms" as ping prints it, or ""
    output: str

    @property
    def ok(self) -> bool:
        return self.sent > 0 and self.received == self.sent


class ChainCluster:
    """See the module docstring. Attributes after :meth:`build`: ``plan``, ``chain``,
    ``controller`` (a :class:`lab.cluster.Daemon`), ``agents`` (host id -> Daemon)."""

    def __init__(self, options: ChainOptions, *, owner: ProcessRecord | None = None) -> None:
        self.options = options
        plan = plan_ring if options.ring else plan_chain
        self.plan: ChainPlan = plan(options.prefix, options.hosts)
        self.state = RunState.create(options.root, options.prefix,
                                     owner or ProcessRecord.this_process("vrc up"))
        self.directory = self.state.directory
        self._check_socket_paths()
        self.lab = Lab(options.prefix, journal=self.state)
        self.chain: Chain | None = None
        self.controller: daemons.Daemon | None = None
        self.agents: dict[str, daemons.Daemon] = {}
        self.etcd_pid: int | None = None
        self._channel: grpc.Channel | None = None
        self.pki: DevPki | None = None
        if options.tls:  # a CA of its own and a certificate per component, in the run
            self.pki = make_dev_pki(self.directory / "pki", self.plan.hosts, reader="reader")

    @property
    def client_tls(self) -> TlsConfig | None:
        """What a client of this cluster presents (the admin's pair), None without TLS."""
        return daemons.admin_tls(self.pki) if self.pki else None

    def _check_socket_paths(self) -> None:
        longest = self.directory / "agents" / f"h{self.options.hosts}.sock"
        if len(str(longest)) > MAX_SOCKET_PATH:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise LabError(f"state directory {self.options.root}: too long for a Unix socket "
                           f"path ({longest} is over {MAX_SOCKET_PATH} bytes)")

    def __enter__(self) -> ChainCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building ------------------------------------------------------------------------

    def build(self) -> None:
        """Namespaces and segments, the controller, the agents, each host registered."""
        self.build_chain()
        self.start_controller()
        self.start_agents()
        self.wait_registered()

    def build_chain(self) -> Chain:
        self.chain = build_chain(self.lab, self.plan)
        return self.chain

    def ns(self, node: str) -> Netns:
        if self.chain is None:
            raise LabError("the chain is not built yet")
        return self.chain.namespaces[node]

    def controller_daemon(self, directory: Path, *, replica: str = "controller",
                          etcd: str | None = None) -> daemons.Daemon:
        """A (not yet started) vrc-controller of this cluster in ``directory``: its TLS,
        lease TTL and extra flags; on ``etcd`` (else the run's, else a private one)."""
        opts = self.options
        return daemons.controller(self.lab, directory, etcd=etcd or opts.etcd,
                                  lease_ttl=opts.lease_ttl, replica=replica, pki=self.pki,
                                  extra=opts.controller_args)

    def start_controller(self) -> daemons.Daemon:
        self.controller = self.controller_daemon(self.directory / "controller")
        self.controller.start()
        self.etcd_pid = self._private_etcd_pid()
        if self.etcd_pid is not None:
            self.state.add_process(ProcessRecord.of("etcd (the controller's)", self.etcd_pid))
        self.state.set_info(controller=self.controller.target)
        return self.controller

    def _private_etcd_pid(self) -> int | None:
        """The PID of the controller's private etcd, from its log (JSON lines)."""
        if self.controller is None or self.options.etcd:
            return None
        for line in self.controller.log_text().splitlines():
            if "private etcd started" in line:
                try:
                    return int(json.loads(line)["pid"])
                except (ValueError, KeyError, TypeError):
                    return None
        return None

    def agent_daemon(self, host: str, controller_target: str | None = None) -> daemons.Daemon:
        """The (not yet started) agent of ``host`` on its interfaces, dialling the cluster's
        controller (or ``controller_target``: another replica, or several comma-separated),
        its slice kept in ``agents/HOST-state``."""
        if self.controller is None:
            raise LabError("start the controller first")
        directory = self.directory / "agents"
        return daemons.agent(
            self.lab, self.ns(host), host, [p.ifname for p in self.plan.ports_of(host)],
            directory, controller_target=controller_target or self.controller.target,
            state_dir=directory / f"{host}-state", pki=self.pki, extra=self.options.agent_args)

    def start_agents(self) -> None:
        """Every agent started at once, then each waited for (they start in parallel)."""
        for host in self.plan.hosts:
            self.agents[host] = self.agent_daemon(host).start(wait=False)
        for host in self.plan.hosts:
            self.agents[host].wait_serving()

    # --- the controller's API ------------------------------------------------------------

    @property
    def stub(self) -> Any:
        if self.controller is None:
            raise LabError("no controller")
        if self._channel is None:
            self._channel = self.controller.channel()
        return controller_stub(self._channel)

    def reconnect(self) -> None:
        """Drop the channel (a new controller process listens on the same socket)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def hosts_up(self) -> set[str]:
        reply = self.stub.ListHosts(pb.ListHostsRequest(), timeout=REQUEST_TIMEOUT)
        return {host.id for host in reply.hosts if host.up}

    def wait_registered(self, timeout: float = REGISTER_TIMEOUT) -> None:
        """Bounded poll until every host shows up (its agent's live registration)."""
        wanted = set(self.plan.hosts)
        deadline = time.monotonic() + timeout
        while True:
            up = self._answer(self.hosts_up, set())
            if wanted <= up:
                return
            self._check_agents_alive()
            if time.monotonic() >= deadline:
                raise LabError(f"hosts not registered after {timeout:g} s: "
                               f"{', '.join(sorted(wanted - up))}; their logs are in "
                               f"{self.directory / 'agents'}")
            time.sleep(0.1)

    def _answer(self, call: Callable[[], Any], otherwise: Any) -> Any:
        try:
            return call()
        except grpc.RpcError:
            return otherwise

    def _check_agents_alive(self) -> None:
        for host, daemon in self.agents.items():
            if daemon.proc is not None and daemon.proc.poll() is not None:
                raise LabError(f"agent {host} exited with status {daemon.proc.returncode}; "
                               f"its log ends:\n{daemon.log_tail()}")

    def configuration(self) -> Iterator[tuple[str, Any, Any]]:
        """What :meth:`configure` writes, as (the equivalent CLI command, method, request)."""
        for host in self.plan.hosts:
            for port in self.plan.ports_of(host):
                yield (f"alias add {host} {port.ifname} {port.address}", "PutAlias",
                       pb.PutAliasRequest(alias=pb.Alias(host=host, ifname=port.ifname,
                                                         address=port.address)))
        for claim in self.plan.claims():
            yield (f"prefix add {claim.prefix} --host {claim.host} --iface {claim.ifname}",
                   "PutPrefix", pb.PutPrefixRequest(prefix=claim.prefix, host=claim.host,
                                                    ifname=claim.ifname))

    def configure(self) -> int:
        """Write the chain's aliases and prefix claims through the controller's API; the
        revision of the last write."""
        revision = 0
        for _command, method, request in self.configuration():
            reply = getattr(self.stub, method)(request, timeout=REQUEST_TIMEOUT)
            revision = max(revision, int(reply.revision))
        return revision

    def fleet(self) -> Any:
        return self.stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=REQUEST_TIMEOUT)

    def host_status(self, host: str) -> Any:
        return self.stub.GetHostStatus(pb.GetHostStatusRequest(host=host),
                                       timeout=REQUEST_TIMEOUT)

    def wait_converged(self, revision: int, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Bounded poll until every host has applied ``revision`` (the fleet watermark) and
        none reports a failed item; LabError naming the hosts and items that lag."""
        deadline = time.monotonic() + timeout
        while True:
            fleet = self._answer(self.fleet, None)
            if fleet is not None and fleet.watermark >= revision and \
                    fleet.hosts_up >= len(self.plan.hosts):
                failed = self.failed_items()
                if not failed:
                    return
                raise LabError("items the agents refused: " + "; ".join(failed))
            self._check_agents_alive()
            if time.monotonic() >= deadline:
                lagging = ", ".join(fleet.lagging) if fleet is not None else "(no answer)"
                raise LabError(f"the hosts did not apply revision {revision} within "
                               f"{timeout:g} s (lagging: {lagging}); see `vrc status`")
            time.sleep(0.05)

    def failed_items(self) -> list[str]:
        found = []
        for host in self.plan.hosts:
            for item in self.host_status(host).items:
                if item.state == pb.ITEM_STATE_FAILED:
                    found.append(f"{host} {item.key}: {item.error}")
        return found

    # --- traffic -------------------------------------------------------------------------

    def ping(self, source: str, address: str, count: int = 3,
             timeout: float = PING_TIMEOUT) -> PingResult:
        """``ping`` from end host ``source`` after a bounded wait for the first answer
        (the first datagram of a path waits for ARP at every hop)."""
        ns = self.ns(source)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ns.run("ping", "-n", "-q", "-c", "1", "-W", "1", address, check=False,
                      timeout=10).returncode == 0:
                break
        proc = ns.run("ping", "-n", "-c", str(count), "-i", "0.2", "-w", "10", address,
                      check=False, timeout=20)
        return parse_ping(proc.stdout + proc.stderr)

    def hops(self, source: str, address: str, max_hops: int | None = None) -> list[str]:
        """The addresses that answer on the way from ``source`` to ``address``: a ping with
        TTL 1, 2, ... gets *time exceeded* from each router, then the echo reply."""
        ns = self.ns(source)
        found: list[str] = []
        for ttl in range(1, (max_hops or len(self.plan.hosts) + 1) + 1):
            proc = ns.run("ping", "-n", "-c", "1", "-W", "2", "-t", str(ttl), address,
                          check=False, timeout=10)
            match = re.search(r"From (\d+\.\d+\.\d+\.\d+).*(?:Time to live exceeded|"
                              r"ttl exceeded)", proc.stdout, re.IGNORECASE)
            if match:
                found.append(match.group(1))
                continue
            if proc.returncode == 0:
                found.append(address)
            else:
                found.append("*")
            if found[-1] == address:
                break
        return found

    # --- the end -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process (by PID), delete the namespaces, remove the run directory."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self.lab.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def parse_ping(output: str) -> PingResult:
    counts = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", output)
    rtt = re.search(r"= ([\d.]+/[\d.]+/[\d.]+/[\d.]+) ms", output)
    return PingResult(int(counts.group(1)) if counts else 0,
                      int(counts.group(2)) if counts else 0,
                      rtt.group(1) if rtt else "", output)


__all__ = ["END_A", "END_B", "ChainCluster", "ChainOptions", "PingResult", "parse_ping"]

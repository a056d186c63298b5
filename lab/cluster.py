"""The daemons of a cluster on one machine: vrc-controller and vrc-agent, started on a Lab.

A :class:`Daemon` is one process of ours: its argv (so it can be started
again exactly as before), its log file, its gRPC target and the client TLS
files to reach it. It is stopped or killed by its PID only (through the
:class:`lab.Lab` that started it), and "ready" means its grpc health service
answers SERVING — never a sleep.

``vrc up`` starts one controller with its private etcd and one agent per
router host; the end-to-end tests start the same daemons, some on an etcd of
their own (``etcd=URL``) so they can restart or compact it under a running
cluster. Given a :class:`serving.pki.DevPki`, every link is mutual TLS: the
daemons serve ``unix+tls:`` sockets with their own certificates (so each
agent Syncs as its own host only), and the lab's clients present the admin's.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lab.netns import Lab, LabError, Netns
from lab.procs import console_argv
from serving.pki import DevPki
from serving.tls import UNIX_TLS, TlsConfig, dial

START_TIMEOUT = 40.0
LOG_TAIL = 4000


def admin_tls(pki: DevPki) -> TlsConfig:
    """What the lab's clients (its CLI runs, its API calls) present: the admin's pair."""
    return TlsConfig(cert=str(pki.admin.cert), key=str(pki.admin.key), ca=str(pki.ca))


def tls_flags(tls: TlsConfig | None) -> list[str]:
    """The shared ``--tls-*`` flags that hand ``tls`` to a component (none for None)."""
    if tls is None:
        return []
    pairs = (("--tls-cert", tls.cert), ("--tls-key", tls.key), ("--tls-ca", tls.ca),
             ("--tls-server-name", tls.server_name))
    return [word for flag, value in pairs if value for word in (flag, value)]


@dataclass
class Daemon:
    """One daemon process (see the module docstring)."""

    lab: Lab
    role: str  # "controller", "agent h2", ...
    argv: list[str]
    target: str  # grpc target of its API
    log: Path
    ns: Netns | None = None
    tls: TlsConfig | None = None  # what clients present to it (None: plaintext)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError(f"{self.role}: not started")
        return self.proc.pid

    def start(self, timeout: float = START_TIMEOUT, *, wait: bool = True) -> Daemon:
        """Start the process (again, after a stop or kill) and wait until it serves."""
        if self.running():
            raise LabError(f"{self.role}: already running (pid {self.pid})")
        self.proc = self.lab.spawn(self.ns, *self.argv, log=self.log, role=self.role)
        self.starts += 1
        if wait:
            self.wait_serving(timeout)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def channel(self) -> grpc.Channel:
        return dial(self.target, self.tls)

    def serving(self, timeout: float = 2.0) -> bool:
        """Its health service answers SERVING now."""
        with self.channel() as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types lack Check
            try:
                reply = stub.Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Bounded poll of the health service; LabError with the log's tail if the process
        exits or does not serve in time."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"{self.role} exited with status {self.proc.returncode} at "
                               f"start; its log ends:\n{self.log_tail()}")
            if self.serving():
                return
            if time.monotonic() >= deadline:
                raise LabError(f"{self.role} not serving after {timeout:g} s; its log "
                               f"ends:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM by PID, bounded wait, SIGKILL; the exit status (None if not running)."""
        if self.proc is None:
            return None
        code = self.lab.stop(self.proc, timeout=timeout)
        return code

    def kill(self) -> int | None:
        """SIGKILL by PID (a crash); the exit status."""
        if self.proc is None:
            return None
        return self.lab.kill(self.proc)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 8) -> str:
        """The last ``lines`` lines of its log, JSON lines shown as ``level: event (k=v)``."""
        shown = [readable(line) for line in self.log_text().splitlines() if line.strip()]
        return "\n".join(f"  {line}" for line in shown[-lines:])[-LOG_TAIL:] or "  (empty)"


def readable(line: str) -> str:
    """One structured (JSON) log line as a person reads it; other lines as they are."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    skip = {"event", "level", "logger", "timestamp", "replica", "host"}
    rest = ", ".join(f"{k}={v}" for k, v in record.items() if k not in skip)
    return f"{record.get('level', 'info')}: {record['event']}" + (f" ({rest})" if rest else "")


def controller(lab: Lab, directory: Path, *, etcd: str | None = None,
               lease_ttl: float | None = None, replica: str = "controller",
               pki: DevPki | None = None, extra: Sequence[str] = ()) -> Daemon:
    """A vrc-controller (not started yet) with its data directory and socket in
    ``directory``: its private etcd there, or ``etcd`` (client URLs) when given.
    With ``pki`` it serves mutual TLS on a ``unix+tls:`` socket with the controller's
    certificate (and its private etcd too)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = f"{UNIX_TLS if pki else 'unix:'}{directory / 'controller.sock'}"
    argv = [*console_argv("vrc-controller"), "--data-dir", str(directory),
            "--listen", target, "--id", replica, "--log-format", "json"]
    if etcd:
        argv += ["--etcd", etcd]
    if lease_ttl is not None:
        argv += ["--lease-ttl", f"{lease_ttl:g}"]
    if pki is not None:
        argv += pki.controller_flags()
    argv += list(extra)
    return Daemon(lab, replica, argv, target, directory / "controller.log",
                  tls=admin_tls(pki) if pki else None)


def agent(lab: Lab, ns: Netns, host_id: str, interfaces: Sequence[str], directory: Path, *,
          controller_target: str | None = None, state_dir: Path | None = None,
          arp_probes: int = 0, pki: DevPki | None = None,
          extra: Sequence[str] = ()) -> Daemon:
    """A vrc-agent (not started yet) in ``ns`` on ``interfaces``, its API on a Unix
    socket and its NIC records (``--run-dir``) in ``directory``; with
    ``controller_target`` it dials the controller (Sync) and keeps its slice in
    ``state_dir``. ``arp_probes`` 0: a new address is used at
    once (the run's segments hold nobody else). With ``pki`` its API is a ``unix+tls:``
    socket and it presents its host's certificate, serving and dialling alike (one
    flag set): the controller lets it Sync as ``host_id`` only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = f"{UNIX_TLS if pki else 'unix:'}{directory / f'{host_id}.sock'}"
    argv = [*console_argv("vrc-agent"), "--host-id", host_id, "--listen", target,
            "--arp-probes", str(arp_probes), "--log-format", "json",
            "--run-dir", str(directory / "nics")]  # its NIC records stay in the run
    for ifname in interfaces:
        argv += ["--interface", ifname]
    if controller_target is not None:
        argv += ["--controller", controller_target]
        if state_dir is not None:
            argv += ["--state-dir", str(state_dir)]
    if pki is not None:
        argv += pki.agent_flags(host_id)
    argv += list(extra)
    return Daemon(lab, f"agent {host_id}", argv, target, directory / f"{host_id}.log", ns=ns,
                  tls=admin_tls(pki) if pki else None)


def cli(args: Sequence[str], *, controller_target: str | None = None,
        agent_target: str | None = None, tls: TlsConfig | None = None,
        timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``vrc`` (this code) against a controller or an agent; bounded; LabError on a
    non-zero exit when ``check``."""
    argv = console_argv("vrc")
    if controller_target is not None:
        argv += ["--controller", controller_target]
    if agent_target is not None:
        argv += ["--agent", agent_target]
    argv += tls_flags(tls)
    argv += list(args)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LabError(f"vrc {' '.join(args)}: no answer within {timeout:g} s") from None
    if check and proc.returncode != 0:
        raise LabError(f"vrc {' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc

"""The agent's Sync client: dial the controller, apply each version, acknowledge it.

Two threads:

* the **session thread** dials (a new channel per attempt), says hello (host
  id, Agent API endpoint, NICs, software version, the last applied version,
  the local items), reads the stream and hands every *whole* version (a
  chunked snapshot only once its last chunk is in) to the apply thread. A
  stream that ends, for whatever reason, is redialled after a jittered
  exponential backoff; nothing is removed from the engine meanwhile — the
  agent keeps forwarding with what it last applied.
* the **apply thread** folds the versions that are waiting into the desired
  slice (several at once when they pile up: the ACK of the last covers
  them), reconciles the engine to it (:mod:`agents.sync.reconcile`, run
  through the gate by :mod:`agents.sync.applier`), writes the state file,
  and answers with one ``SyncAck``: the version and every item not applied
  with its error. Between versions it watches for changes made through the
  Agent API and reports drift and local items (``SyncAck.report``); drifted
  items are re-applied with the next version.

A new stream always starts with a snapshot; since the engine is reconciled
to it and never flushed, a reconnect touches only what changed while the
agent was away.

Use in-process (a simulated agent, tests, benchmarks)::

    gate = Gate(engine)
    client = SyncClient(gate, SyncConfig(target="unix:/tmp/ctl.sock", host_id="h1"))
    client.start()
    client.wait_applied(version, timeout=5)
    client.stop()
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import grpc

from agents.sync import engine_port, statefile
from agents.sync.applier import Applier, reconcile_round
from agents.sync.dial import check_targets, open_channel
from agents.sync.engine_port import RouteInstaller
from agents.sync.items import ItemError, Spec
from agents.sync.state import Assembler, ProtocolError, SyncState, VersionUpdate
from agents.sync.wire import error_to_pb, fit_lists, item_to_pb
from serving.logs import get_logger
from serving.tls import TlsConfig
from vrc.v1 import controller_pb2, controller_pb2_grpc


def software_version() -> str:
    try:
        return metadata.version("vrc")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True, slots=True)
class NicInfo:
    """A host NIC as the hello reports it."""

    name: str
    mac: str
    mtu: int


@dataclass(slots=True)
class SyncConfig:
    target: str
    host_id: str
    agent_endpoint: str = ""
    nics: tuple[NicInfo, ...] = ()
    software_version: str = field(default_factory=software_version)
    state_dir: str | None = None
    tls: TlsConfig | None = None
    insecure: bool = False
    backoff_initial: float = 0.2  # seconds before the first redial
    backoff_max: float = 10.0
    keepalive_time: float = 10.0
    keepalive_timeout: float = 5.0
    save_interval: float = 0.5   # the state file is written at most this often
    watch_interval: float = 0.5  # how often an idle agent looks for Agent API changes

    def check(self) -> list[str]:
        """The controller addresses; ValueError naming the flag when the target or TLS
        options are unusable."""
        targets = check_targets(self.target, self.tls, self.insecure)
        if not self.host_id:
            raise ValueError("--host-id: empty")
        return targets


class Backoff:
    """Exponential backoff with jitter: ``initial * 2**n`` capped at ``maximum``, each delay
    drawn from the upper half of that (so agents that lost one controller at once do not
    redial in step)."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self._initial = initial
        self._maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next(self) -> float:
        cap = min(self._maximum, self._initial * (2 ** self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        return self._rng.uniform(cap / 2, cap)

    def reset(self) -> None:
        self._attempt = 0


@dataclass(slots=True)
class SyncStats:
    sessions: int = 0            # streams opened
    versions: int = 0            # whole versions received
    rounds: int = 0              # reconcile rounds run (several versions may share one)
    acks: int = 0
    reports: int = 0
    steps: int = 0               # engine steps run
    last_error: str = ""


class _Session:
    """One stream: its outgoing messages and whether it is still the live one."""

    def __init__(self, number: int, hello: controller_pb2.SyncRequest) -> None:
        self.number = number
        self._hello = hello
        self._outbox: queue.SimpleQueue[controller_pb2.SyncRequest | None] = queue.SimpleQueue()
        self.open = True

    def requests(self) -> Iterator[controller_pb2.SyncRequest]:
        yield self._hello
        while True:
            msg = self._outbox.get()
            if msg is None:
                return
            yield msg

    def send(self, msg: controller_pb2.SyncRequest) -> bool:
        if not self.open:
            return False
        self._outbox.put(msg)
        return True

    def close(self) -> None:
        self.open = False
        self._outbox.put(None)


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """A consistent copy of what the client knows (tests, benchmarks, logs)."""

    version: int
    applied: dict[str, Spec]
    errors: list[ItemError]
    drift: list[ItemError]
    local: dict[str, Spec]
    connected: bool


class SyncClient:
    """See the module docstring. ``gate`` is the agent's :class:`agents.gate.Gate`."""

    def __init__(self, gate: Any, config: SyncConfig, *, log: Any = None,
                 routes: RouteInstaller | None = None, rng: random.Random | None = None) -> None:
        self._targets = config.check()
        self.config = config
        self.log = log or get_logger("vrc.agent.sync", host=config.host_id)
        self.stats = SyncStats()
        self._gate = gate
        self._applier = Applier(gate, routes=routes)
        self._state = SyncState()
        self._state_lock = threading.Lock()  # readers: hello, status(); writer: apply thread
        self._drift: list[ItemError] = []
        self._inbox: queue.SimpleQueue[tuple[_Session, VersionUpdate] | None] = \
            queue.SimpleQueue()
        self._stopping = threading.Event()
        self._applied = threading.Condition()
        self._applied_version = 0
        self._backoff = Backoff(config.backoff_initial, config.backoff_max, rng)
        self._session: _Session | None = None
        self._call: Any = None
        self._threads: list[threading.Thread] = []
        self._needs_full = True  # the first round looks at everything
        self._unsaved = False
        self._saved_at = 0.0

    # --- lifecycle ----------------------------------------------------------------------

    def restore(self) -> int:
        """Apply the ``--state-dir`` snapshot, if any, before the first dial; the number of
        items it held. Call before :meth:`start` (and before the Agent API serves, so that
        nothing configured there is taken for the controller's)."""
        directory = self.config.state_dir
        if directory is None:
            return 0
        try:
            saved = statefile.load(directory, self.config.host_id)
        except statefile.StateFileError as error:
            moved = statefile.set_aside(directory)
            self.log.error("state file unusable; starting without it", error=str(error),
                           moved_to=str(moved) if moved else None)
            return 0
        if saved is None:
            return 0
        with self._state_lock:
            self._state.restore(saved.version, saved.items, saved.controller)
        self._round(None)
        with self._applied:
            self._applied_version = saved.version
            self._applied.notify_all()
        errors = self._state.errors()
        self.log.info("state restored", version=saved.version, items=len(saved.items),
                      failed=len(errors), state_dir=directory)
        for error in errors:
            self.log.warning("restored item not applied", key=error.key, error=error.message)
        return len(saved.items)

    def start(self) -> None:
        for target, name in ((self._session_loop, "vrc-sync"), (self._apply_loop,
                                                                 "vrc-sync-apply")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop both threads (the engine keeps what was applied); False if one hung."""
        self._stopping.set()
        call, session = self._call, self._session
        if session is not None:
            session.close()
        if call is not None:
            with contextlib.suppress(Exception):
                call.cancel()
        self._inbox.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    # --- what tests, benchmarks and the agent read --------------------------------------

    @property
    def version(self) -> int:
        """The last version applied to the engine."""
        return self._applied_version

    @property
    def connected(self) -> bool:
        session = self._session
        return session is not None and session.open and self.stats.versions > 0

    def wait_applied(self, version: int, timeout: float) -> bool:
        """Wait until a version >= ``version`` is applied (and acknowledged)."""
        with self._applied:
            return self._applied.wait_for(lambda: self._applied_version >= version, timeout)

    def status(self) -> ClientStatus:
        with self._state_lock:
            state = self._state
            return ClientStatus(
                state.version, {k: rec.observed for k, rec in state.ledger.items()},
                state.errors(), list(self._drift), dict(state.local), self.connected)

    # --- the session thread -------------------------------------------------------------

    def _session_loop(self) -> None:
        number = 0
        while not self._stopping.is_set():
            number += 1
            delivered = self._run_session(number)
            if self._stopping.is_set():
                break
            if delivered:
                self._backoff.reset()
            delay = self._backoff.next()
            self.log.info("redialling the controller", after_s=round(delay, 2),
                          target=self._targets[number % len(self._targets)])
            self._stopping.wait(delay)

    def _run_session(self, number: int) -> bool:
        """One stream, from dial to its end; whether it delivered a whole version."""
        delivered = False
        channel = None
        session: _Session | None = None
        try:
            session = _Session(number, controller_pb2.SyncRequest(hello=self._hello()))
            target = self._targets[(number - 1) % len(self._targets)]
            channel = open_channel(target, tls=self.config.tls,
                                   insecure=self.config.insecure,
                                   keepalive_time=self.config.keepalive_time,
                                   keepalive_timeout=self.config.keepalive_timeout)
            stub = controller_pb2_grpc.ControllerStub(channel)
            self._session = session
            self._call = call = stub.Sync(session.requests())
            self.stats.sessions += 1
            if self._stopping.is_set():
                call.cancel()
            assembler = Assembler()
            for msg in call:
                update = assembler.add(msg)
                if update is not None:
                    if not delivered:
                        self.log.info("controller stream up", controller=update.controller,
                                      version=update.version, snapshot=update.snapshot,
                                      items=len(update.items))
                    delivered = True
                    self.stats.versions += 1
                    self._inbox.put((session, update))
            self.log.info("controller ended the stream")
        except grpc.RpcError as error:
            code, details = _status_of(error)
            if not self._stopping.is_set():
                self.stats.last_error = f"{code}: {details}"
                self.log.warning("controller stream failed", code=code, details=details)
        except ProtocolError as error:
            self.stats.last_error = str(error)
            self.log.error("controller broke the Sync protocol; redialling", error=str(error))
        except Exception as error:  # never let the session thread die: redial
            self.stats.last_error = repr(error)
            self.log.error("sync session failed", error=repr(error))
        finally:
            if session is not None:
                session.close()
            if self._call is not None:
                with contextlib.suppress(Exception):
                    self._call.cancel()
            self._call = None
            if channel is not None:
                channel.close()
        return delivered

    def _hello(self) -> controller_pb2.SyncHello:
        observed = self._gate.call(engine_port.observe)
        with self._state_lock:
            version = self._applied_version
            ledger = set(self._state.ledger)
        config = self.config
        hello = controller_pb2.SyncHello(
            host_id=config.host_id, agent_endpoint=config.agent_endpoint,
            nics=[controller_pb2.Nic(name=n.name, mac=n.mac, mtu=n.mtu) for n in config.nics],
            software_version=config.software_version, applied_version=version,
            local_items=[item_to_pb(key, spec) for key, spec in sorted(observed.items())
                         if key not in ledger])
        left_out = fit_lists(hello, ("local_items",))
        if left_out:
            self.log.warning("hello too large: local items left out of it", left_out=left_out,
                             sent=len(hello.local_items))
        return hello

    # --- the apply thread ---------------------------------------------------------------

    def _apply_loop(self) -> None:
        interval = self.config.watch_interval
        while not self._stopping.is_set():
            batch = self._take(interval)
            if self._stopping.is_set():
                break
            try:
                if batch:
                    self._apply_versions(batch)
                elif self._applier.changed_behind():
                    self._report_changes()
                self._save(due_only=True)
            except Exception as error:  # one bad round must not end the agent's sync
                self.stats.last_error = repr(error)
                self.log.error("sync round failed", error=repr(error))
        self._save(due_only=False)

    def _take(self, timeout: float) -> list[tuple[_Session, VersionUpdate]]:
        """The versions waiting (at least one, or none after ``timeout``)."""
        try:
            first = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first] if first is not None else []
        while True:
            try:
                more = self._inbox.get_nowait()
            except queue.Empty:
                return batch
            if more is not None:
                batch.append(more)

    def _apply_versions(self, batch: list[tuple[_Session, VersionUpdate]]) -> None:
        touched: set[str] | None = set()
        with self._state_lock:
            for _, update in batch:
                keys = self._state.fold(update)
                touched = None if keys is None or touched is None else touched | keys
        self._round(touched)
        self._unsaved = True
        self._save(due_only=True)
        version = batch[-1][1].version
        with self._applied:
            self._applied_version = version
            self._applied.notify_all()
        self._acknowledge(batch[-1][0], report=False)

    def _round(self, touched: set[str] | None) -> None:
        """One reconcile round over the keys ``touched`` (None: everything).

        The state lock is held throughout: readers (a hello, ``status()``) see
        the state before or after a round, never inside one.
        """
        with self._state_lock:
            steps, _ = reconcile_round(self._applier, self._state, touched,
                                       full=self._needs_full)
            self._needs_full = False
            self._drift = []
        self.stats.rounds += 1
        self.stats.steps += len(steps.steps)

    def _report_changes(self) -> None:
        """Something changed items behind the agent's back: report drift and local items."""
        observed, _ = self._applier.look(None)
        with self._state_lock:
            drift = self._state.drift(observed)
            before = dict(self._state.local)
            self._state.note_local(observed)
            changed = drift != self._drift or before != self._state.local
            self._drift = drift
            if drift:
                self._needs_full = True  # the next version re-applies them
        if drift:
            self.log.warning("managed items changed through the Agent API",
                             keys=[d.key for d in drift])
        session = self._session
        if changed and session is not None and self._applied_version:
            self._acknowledge(session, report=True)

    def _acknowledge(self, session: _Session, *, report: bool) -> None:
        with self._state_lock:
            state = self._state
            ack = controller_pb2.SyncAck(
                version=state.version, report=report,
                errors=[error_to_pb(e) for e in state.errors()],
                drift=[error_to_pb(d) for d in self._drift],
                local_items=[item_to_pb(key, spec) for key, spec in sorted(state.local.items())])
        left_out = fit_lists(ack, ("local_items", "drift", "errors"))
        if left_out:
            self.log.warning("ACK too large: entries left out of it (local items first, then "
                             "drift, then failed items)", left_out=left_out, version=ack.version)
        if session is self._session and session.send(controller_pb2.SyncRequest(ack=ack)):
            if report:
                self.stats.reports += 1
            else:
                self.stats.acks += 1
        if ack.errors and not report:
            self.log.warning("version applied with failed items", version=ack.version,
                             failed=[(e.key, e.code) for e in ack.errors][:20])

    def _save(self, *, due_only: bool) -> None:
        directory = self.config.state_dir
        if directory is None or not self._unsaved:
            return
        now = time.monotonic()
        if due_only and now - self._saved_at < self.config.save_interval:
            return
        with self._state_lock:
            version, controller = self._state.version, self._state.controller
            items = self._state.applied_items()
        try:
            statefile.save(directory, self.config.host_id, version, items, controller)
        except OSError as error:
            self.log.error("cannot write the state file", state_dir=directory,
                           error=error.strerror or str(error))
            return
        self._unsaved = False
        self._saved_at = now


def _status_of(error: grpc.RpcError) -> tuple[str, str]:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return (code.name if code is not None else "UNKNOWN"), str(details or "")

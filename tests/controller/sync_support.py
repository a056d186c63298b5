"""Pieces for the Sync tests: a real controller in this process, simulated agents, a raw peer.

* :func:`sync_controller` — a real :class:`controller.daemon.Controller` (store,
  Sync service, gRPC server on a Unix socket) on the test etcd, with a
  store root of its own and a short lease TTL;
* :class:`~agents.sync.sim.InProcessAgent` — a real Sync client driving a real
  engine (re-exported here);
* :class:`RawAgent` — a Sync peer written in the test: it says hello, records
  every message it receives and answers with the ACK or NACK the test
  chooses, so a test can see exactly what was (and was not) sent.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog

from agents.sync.sim import InProcessAgent, queued_requests
from controller.daemon import Controller, ControllerOptions
from controller.etcd import EtcdConfig
from serving.logs import get_logger
from tests.etcd import TestEtcd
from tests.netns import wait_until
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

__all__ = ["InProcessAgent", "RawAgent", "Running", "agent_log", "host_up", "sync_controller",
           "wait_for"]


def agent_log(host: str) -> Any:
    """Agents' log lines go to stderr (stdout is what CLI tests read)."""
    return structlog.wrap_logger(structlog.PrintLogger(sys.stderr)).bind(host=host)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    wait_until(predicate, timeout, 0.02, what)


def host_up(stub: controller_pb2_grpc.ControllerStub, host: str) -> bool:
    """Whether the host exists and is up (False while its agent has not registered)."""
    try:
        return bool(stub.GetHost(pb.GetHostRequest(id=host), timeout=10).up)
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.NOT_FOUND:
            return False
        raise


@dataclass
class Running:
    controller: Controller
    directory: Path
    root: str
    channels: list[grpc.Channel] = field(default_factory=list)
    agents: list[InProcessAgent] = field(default_factory=list)

    @property
    def target(self) -> str:
        return self.controller.address

    def stub(self) -> controller_pb2_grpc.ControllerStub:
        channel = grpc.insecure_channel(self.target)
        self.channels.append(channel)
        return controller_pb2_grpc.ControllerStub(channel)

    def agent(self, host: str, *interfaces: str, **options: Any) -> InProcessAgent:
        settings: dict[str, Any] = dict(backoff_initial=0.05, backoff_max=0.5,
                                        watch_interval=0.05)
        settings.update(options)
        agent = InProcessAgent(host, self.target, interfaces=interfaces or ("eth1",),
                               log=agent_log(host), **settings)
        self.agents.append(agent)
        return agent.start()


@contextlib.contextmanager
def sync_controller(etcd: TestEtcd, *, root: str | None = None, lease_ttl: float = 2.0,
                    directory: Path | None = None, **options: Any) -> Iterator[Running]:
    """A controller with the Sync service on ``etcd`` (``root``: share one between two)."""
    own_directory = directory is None
    where = directory or Path(tempfile.mkdtemp(prefix="vrc-sync-", dir="/tmp"))
    store_root = root or f"/t{uuid.uuid4().hex[:12]}/v1/"
    settings: dict[str, Any] = dict(
        listen=f"unix:{where}/c.sock", data_dir=str(where), etcd=EtcdConfig((etcd.endpoint,)),
        replica_id=f"c-{uuid.uuid4().hex[:6]}", store_root=store_root, lease_ttl=lease_ttl)
    settings.update(options)
    controller = Controller(ControllerOptions(**settings), log=get_logger("test.controller"))
    controller.start()
    running = Running(controller, where, store_root)
    try:
        assert controller.sync is not None and controller.sync.wait_ready(20)
        yield running
    finally:
        for agent in running.agents:
            agent.stop()
        for channel in running.channels:
            channel.close()
        controller.stop()
        if own_directory:
            shutil.rmtree(where, ignore_errors=True)


@dataclass(eq=False)
class RawAgent:
    """A Sync peer under the test's control (see the module docstring)."""

    target: str
    host: str
    nics: tuple[str, ...] = ("eth1",)
    received: list[pb.SyncResponse] = field(default_factory=list)
    error: grpc.RpcError | None = None

    def __post_init__(self) -> None:
        self._out: queue.SimpleQueue[pb.SyncRequest | None] = queue.SimpleQueue()
        self._changed = threading.Condition()
        self._channel = grpc.insecure_channel(self.target)
        hello = pb.SyncHello(host_id=self.host, agent_endpoint=f"raw:{self.host}",
                             nics=[pb.Nic(name=n, mac="02:00:00:00:00:09", mtu=1500)
                                   for n in self.nics], software_version="raw")
        self._call = controller_pb2_grpc.ControllerStub(self._channel).Sync(
            queued_requests(pb.SyncRequest(hello=hello), self._out))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self._call:
                with self._changed:
                    self.received.append(message)
                    self._changed.notify_all()
        except grpc.RpcError as error:
            with self._changed:
                self.error = error
                self._changed.notify_all()

    def wait(self, predicate: Callable[[list[pb.SyncResponse]], bool], what: str,
             timeout: float = 20.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.received), timeout):
                got = [(m.version, m.snapshot, len(m.upserts)) for m in self.received]
                raise AssertionError(f"{what}: not within {timeout}s; got {got}, "
                                     f"error {self.error}")

    def wait_version(self, version: int) -> pb.SyncResponse:
        self.wait(lambda got: any(m.version >= version and not m.more for m in got),
                  f"a message of version {version} or later")
        return next(m for m in self.received if m.version >= version and not m.more)

    def ack(self, version: int, *errors: tuple[str, str, str]) -> None:
        self._out.put(pb.SyncRequest(ack=pb.SyncAck(version=version, errors=[
            pb.SyncItemError(key=k, code=c, message=f"{k}: refused ({c})", fingerprint=f)
            for k, c, f in errors])))

    def keys_sent(self) -> list[str]:
        return [item.key for m in self.received for item in m.upserts]

    def close(self) -> None:
        self._out.put(None)
        self._call.cancel()
        self._channel.close()

"""The cluster the convergence benchmark measures, and the agents it simulates.

:class:`Harness` is an embedded etcd with one vrc-controller process on it;
:class:`RealFleet` are in-process agents with engines and the real Sync
client; :class:`AckFleet` are lightweight agents that only say hello and ACK,
run in a child process of their own by :class:`AckFleetProcess` (this file
run as a script). Used by ``bench/convergence.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout, not whatever is installed

import grpc  # noqa: E402

from controller.etcd import EmbeddedEtcd  # noqa: E402
from controller.etcd.embedded import Ports, free_port  # noqa: E402
from lab.procs import console_argv  # noqa: E402
from vrc.v1 import controller_pb2 as pb  # noqa: E402
from vrc.v1 import controller_pb2_grpc  # noqa: E402

SEGMENT = ipaddress.IPv4Network("10.0.0.0/16")  # every simulated host on one segment
WAIT = 60.0  # the longest any one change may take before the run is called broken
START_TIMEOUT = 60.0

# --- the harness ------------------------------------------------------------------------


class Harness:
    """The embedded etcd and one vrc-controller process on it, in a temporary directory;
    everything stopped (by PID) and removed at the end, also on failure."""

    def __init__(self, lease_ttl: float) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="vrc-bench-conv-"))
        ports = Ports(free_port(), free_port())
        while ports.peer == ports.client:
            ports = Ports(ports.client, free_port())
        self.etcd = EmbeddedEtcd(self.directory / "etcd", ports=ports, auto_compaction="0")
        self.lease_ttl = lease_ttl
        self.controller: subprocess.Popen[bytes] | None = None
        self.target = f"unix:{self.directory}/controller.sock"
        self.channel: grpc.Channel | None = None
        self.stub: Any = None

    def __enter__(self) -> Harness:
        try:
            self.etcd.start(timeout=START_TIMEOUT)
            self._start_controller()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_controller(self) -> None:
        argv = [*console_argv("vrc-controller"), "--etcd", self.etcd.url,
                "--data-dir", str(self.directory / "controller"), "--listen", self.target,
                "--lease-ttl", f"{self.lease_ttl:g}", "--id", "bench", "--log-level",
                "warning"]
        log = open(self.directory / "controller.log", "wb")  # noqa: SIM115
        with log:
            self.controller = subprocess.Popen(argv, stdout=log, stderr=log,
                                               stdin=subprocess.DEVNULL)
        self.channel = grpc.insecure_channel(self.target)
        self.stub = controller_pb2_grpc.ControllerStub(self.channel)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.controller.poll() is not None:
                raise RuntimeError(f"vrc-controller exited: {self.log_tail()}")
            try:
                self.stub.ListHosts(pb.ListHostsRequest(), timeout=2)
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"vrc-controller not serving: {self.log_tail()}") from None
                time.sleep(0.1)

    def log_tail(self) -> str:
        try:
            return (self.directory / "controller.log").read_text()[-3000:]
        except OSError:
            return ""

    @property
    def controller_pid(self) -> int:
        assert self.controller is not None
        return self.controller.pid

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.controller is not None and self.controller.poll() is None:
            self.controller.terminate()
            try:
                self.controller.wait(20)
            except subprocess.TimeoutExpired:
                self.controller.kill()
                self.controller.wait(10)
        self.etcd.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# --- simulated agents -------------------------------------------------------------------


def segment_address(index: int) -> str:
    return f"{SEGMENT.network_address + index + 1}/{SEGMENT.prefixlen}"


class RealFleet:
    """``count`` in-process agents (engine + the real Sync client), each with one NIC and an
    alias on the shared segment, so every host is every other's neighbour."""

    def __init__(self, harness: Harness, count: int) -> None:
        from agents.sync.sim import InProcessAgent

        self.harness = harness
        self.ids = [f"s{i:03d}" for i in range(count)]
        self.agents = {host: InProcessAgent(host, harness.target, interfaces=("eth1",))
                       for host in self.ids}

    def start(self) -> None:
        for agent in self.agents.values():
            agent.start()
        wait_hosts_up(self.harness, set(self.ids))
        written = {}
        for index, host in enumerate(self.ids):
            reply = self.harness.stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
                host=host, ifname="eth1", address=segment_address(index))), timeout=10)
            written[host] = int(reply.revision)
        for host, revision in written.items():  # a host's version moves when its slice does
            self.wait(host, revision)

    def wait(self, host: str, revision: int) -> None:
        if not self.agents[host].client.wait_applied(revision, WAIT):
            raise RuntimeError(f"{host} did not apply revision {revision} within {WAIT:g} s")

    def wait_all(self, revision: int, but: str = "") -> None:
        for host in self.ids:
            if host != but:
                self.wait(host, revision)

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()


class AckFleet:
    """Lightweight agents on one asyncio loop: each says hello with one NIC and ACKs every
    whole version it receives, applying nothing. It runs in a process of its own
    (:class:`AckFleetProcess`), so the real agents' engines do not hold its interpreter
    lock; each ACK's time is recorded, and :meth:`last_ack` answers when every agent had
    ACKed a revision (times are ``time.perf_counter``: CLOCK_MONOTONIC, one clock for
    every process of the machine)."""

    CHANNELS = 20  # streams share a few connections, as agents behind one NAT would

    def __init__(self, target: str, ids: Sequence[str]) -> None:
        self.target = target
        self.ids = list(ids)
        self.history: dict[str, list[tuple[int, float]]] = {host: [] for host in self.ids}
        self.changed = asyncio.Event()
        self.failures: list[str] = []
        self._channels: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        self._channels = [grpc.aio.insecure_channel(self.target) for _ in range(self.CHANNELS)]
        for index, host in enumerate(self.ids):
            channel = self._channels[index % self.CHANNELS]
            self._tasks.append(asyncio.ensure_future(self._agent(host, index, channel)))

    async def _agent(self, host: str, index: int, channel: Any) -> None:
        stub = controller_pb2_grpc.ControllerStub(channel)
        outbox: asyncio.Queue[pb.SyncRequest | None] = asyncio.Queue()
        mac = f"02:aa:00:{index >> 8 & 255:02x}:{index & 255:02x}:01"
        hello = pb.SyncRequest(hello=pb.SyncHello(
            host_id=host, agent_endpoint=f"sim:{host}", software_version="bench",
            nics=[pb.Nic(name="eth1", mac=mac, mtu=1500)]))

        async def requests() -> Any:
            yield hello
            while (message := await outbox.get()) is not None:
                yield message

        delay = 0.2
        while True:  # a stream that fails is redialled, as a real agent does
            try:
                async for message in stub.Sync(requests()):
                    delay = 0.2
                    if message.more:
                        continue
                    outbox.put_nowait(pb.SyncRequest(ack=pb.SyncAck(version=message.version)))
                    self.history[host].append((message.version, time.perf_counter()))
                    self.changed.set()
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.CANCELLED:
                    return
                self.failures.append(f"{host}: {error.code().name}: {error.details()}")
            outbox = asyncio.Queue()
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, 5.0)

    def _acked_at(self, revision: int) -> float | None:
        """When the last agent had ACKed ``revision`` (or later); None while one has not."""
        latest = 0.0
        for entries in self.history.values():
            at = next((t for version, t in entries if version >= revision), None)
            if at is None:
                return None
            latest = max(latest, at)
        return latest

    async def last_ack(self, revision: int) -> float:
        deadline = time.monotonic() + WAIT
        while (at := self._acked_at(revision)) is None:
            if time.monotonic() > deadline:
                behind = sum(1 for e in self.history.values()
                             if not e or e[-1][0] < revision)
                raise RuntimeError(f"{behind} ACK-only agents did not ACK revision {revision} "
                                   f"within {WAIT:g} s; {self.failures[:3]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)
        for host, entries in self.history.items():  # keep the last: later waits need it
            self.history[host] = [e for e in entries if e[0] >= revision][-1:]
        return at

    async def close(self) -> None:
        if self.failures:
            print(f"{len(self.failures)} streams failed and were redialled, e.g. "
                  f"{self.failures[0]}", file=sys.stderr, flush=True)
        for task in self._tasks:
            task.cancel()
        # every stream ended before its channel closes (else asyncio reports each pending
        # request iterator at exit)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self._channels:
            await channel.close()


async def serve_ack_fleet(target: str, ids: Sequence[str]) -> None:
    """The child's side: open the fleet, say ready, answer each revision read on stdin
    with the time the last agent ACKed it (JSON lines)."""
    fleet = AckFleet(target, ids)
    await fleet.open()
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        try:
            answer: dict[str, Any] = {"at": await fleet.last_ack(int(line))}
        except RuntimeError as error:
            answer = {"error": str(error)}
        print(json.dumps(answer), flush=True)
    await fleet.close()


class AckFleetProcess:
    """An :class:`AckFleet` in a child process (this file run as a script)."""

    def __init__(self, harness: Harness, ids: Sequence[str]) -> None:
        self.harness = harness
        self.ids = list(ids)
        # its stderr goes to a file (a pipe nobody reads until the end could fill up)
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, harness.target, ",".join(self.ids)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        self.failures = ""  # what the fleet said on stderr (streams that failed), after stop

    def start(self) -> None:
        if json.loads(self._line(120)) != {"ready": True}:
            raise RuntimeError("the ACK-only fleet did not start")
        wait_hosts_up(self.harness, set(self.ids))

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the ACK-only fleet did not answer (status {self.proc.poll()})")
        return line

    def wait_all(self, revision: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{revision}\n")
        self.proc.stdin.flush()
        answer = json.loads(self._line(WAIT + 30))
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return float(answer["at"])

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.errors.seek(0)
        self.failures = self.errors.read()
        self.errors.close()


def wait_hosts_up(harness: Harness, hosts: set[str], timeout: float = 120.0, *,
                  up: bool = True) -> None:
    """Bounded poll of ListHosts until every one of ``hosts`` is up (``up=False``: down);
    an UNAVAILABLE answer (the controller's etcd slow under a registration storm on a
    loaded machine: "retry") is retried until the deadline."""
    deadline = time.monotonic() + timeout
    missing = set(hosts)
    while True:
        try:
            reply = harness.stub.ListHosts(pb.ListHostsRequest(), timeout=30)
            missing = hosts - {h.id for h in reply.hosts if h.up == up}
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
        if not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(missing)} hosts not {'up' if up else 'down'} after "
                               f"{timeout:g} s")
        time.sleep(0.2)


if __name__ == "__main__":  # the child of AckFleetProcess: target and host ids
    asyncio.run(serve_ack_fleet(sys.argv[1], sys.argv[2].split(",")))

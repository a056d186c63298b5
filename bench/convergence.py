"""Convergence: from a write returning to every affected agent having applied (ACKed) it.

Run from the repository root (no root needed)::

    python3 bench/convergence.py [--changes 200] [--rounds 3] [--scale 50,200,1000]
                                 [--resync 10000] [--quick]
    python3 bench/convergence.py --storm 1000 [--rounds 3]

The harness is one machine's cluster: an embedded etcd (the controller's own
kind, ``controller.etcd.EmbeddedEtcd``) in a temporary directory, one
``vrc-controller`` process on it, and simulated agents: 50 real Sync clients
reconciling in-process engines (``agents.sync.sim.InProcessAgent``, all in
this process, every one on one shared segment so each is every other's
neighbour), and for the growth figures lightweight ACK-only agents on
asyncio in a process of their own (hello, then an ACK for every whole
version; their ACK times are read on the same CLOCK_MONOTONIC).

Each figure is p50 / p99 over ``--changes`` writes, the best of ``--rounds``
rounds (the lowest p99: on a shared machine, the least disturbed round);
every write is a real change (a new address, a new prefix, the policy
switched), never a repeat:

* the reference: raw etcd put -> watch delivery on the same etcd, in the same
  run, with etcd's own gRPC API (no vrc code): from the put being sent to
  the watcher holding the event (and, beside it, from the put returning —
  the event is usually there already);
* single-host changes (``PutAlias`` on one of the 50 hosts): from the write
  returning to that host's agent having applied it;
* all-host changes (``PutPrefix``: a route on every other host; the cluster
  policy: every host's effective same-prefix mode): from the write returning
  to the last agent having applied it;
* ``ratio single-host p99 / etcd watch p99: X`` (the target is 5 or less);
* how it grows: all-host (policy) p99 and the controller's resident memory
  with the 50 engines, then 50, 200 and 1,000 ACK-only agents (after the
  first change that follows their registration, which is reported apart);
* a full resync of ``--resync`` aliases: a host's agent starting with an
  empty engine until it has applied them all, then the agent restarted with
  its ``--state-dir`` until the snapshot is reconciled against what it holds.

``--storm N`` measures only a registration storm: ``N`` ACK-only agents
opening their Sync streams at once, from the fleet process starting until
ListHosts shows every one up, then from the fleet stopping until every one
is down again (their streams closed, their registrations released). Each
round starts a fresh etcd and controller: the fleet registers there for the
first time (every registration creates its host record), then the same
fleet again (the host records are there, only liveness is written), then
another ``N`` new hosts beside the first ``N`` (down by then: as in the
growth figures, where each fleet registers into the hosts of the ones
before); the best (shortest) of ``--rounds`` rounds of each is shown, and
every round says how many streams failed and were redialled.

The 50 simulated agents share one interpreter, so this process switches
threads every 1 ms instead of 5 (``HARNESS_SWITCH_INTERVAL``): otherwise an
agent's apply waits for another agent's thread to release the GIL, which is
the harness's cost, not vrc's. Figures vary with the machine and its load
(CI machines have 2 cores and run other work; the simulated agents share
them with the controller and etcd);
only figures of one run compare with each other. Timing is printed, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import math
import os
import queue
import random
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout, not whatever is installed

import grpc  # noqa: E402
from pyetcd import etcdrpc  # noqa: E402

from controller.etcd import EmbeddedEtcd  # noqa: E402
from controller.etcd.embedded import Ports, free_port  # noqa: E402
from lab.procs import console_argv  # noqa: E402
from serving.logs import configure_logging  # noqa: E402
from vrc.v1 import controller_pb2 as pb  # noqa: E402
from vrc.v1 import controller_pb2_grpc  # noqa: E402
from vrc.v1 import types_pb2 as tpb  # noqa: E402

REAL_AGENTS = 50
SEGMENT = ipaddress.IPv4Network("10.0.0.0/16")  # every simulated host on one segment
WAIT = 60.0  # the longest any one change may take before the run is called broken
START_TIMEOUT = 60.0


# --- figures ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    samples: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.samples, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 0.99)

    def line(self) -> str:
        return (f"{self.name:<44} p50 {self.p50 * 1e3:8.2f} ms   p99 {self.p99 * 1e3:8.2f} ms"
                f"   (n={len(self.samples)})")


def best_of(rounds: int, measure: Callable[[], Figure]) -> Figure:
    """The round with the lowest p99 (on a shared machine, the least disturbed one)."""
    return min((measure() for _ in range(rounds)), key=lambda figure: figure.p99)


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


# --- the reference: raw etcd ------------------------------------------------------------


def raw_etcd_watch(url: str, rounds: int) -> tuple[Figure, Figure]:
    """Put -> watch delivery with etcd's own gRPC API: (from the put sent, from the put
    returned) to the watcher thread holding the event."""
    channel = grpc.insecure_channel(url.removeprefix("http://"))
    kv = etcdrpc.KVStub(channel)
    watch = etcdrpc.WatchStub(channel)
    prefix = b"/bench/raw/"
    requests: queue.Queue[Any] = queue.Queue()
    requests.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
        key=prefix, range_end=prefix[:-1] + b"0")))
    seen: dict[bytes, float] = {}
    arrived = threading.Condition()
    created = threading.Event()  # a put before the watch exists would never be seen

    def feed() -> Iterator[Any]:
        while (item := requests.get()) is not None:
            yield item

    call = watch.Watch(feed())

    def read() -> None:
        with contextlib.suppress(grpc.RpcError):
            for response in call:
                now = time.perf_counter()
                if response.created:
                    created.set()
                with arrived:
                    for event in response.events:
                        seen[bytes(event.kv.key)] = now
                    arrived.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent_to, returned_to = [], []
    try:
        if not created.wait(WAIT):
            raise RuntimeError("etcd did not create the watch within a minute")
        for i in range(rounds + 20):  # the first 20 warm the path up
            key = prefix + b"%06d" % i
            sent = time.perf_counter()
            kv.Put(etcdrpc.PutRequest(key=key, value=b"x" * 64), timeout=10)
            returned = time.perf_counter()
            with arrived:
                if not arrived.wait_for(lambda k=key: k in seen, WAIT):
                    raise RuntimeError("etcd watch did not deliver a put within a minute")
                at = seen[key]
            if i >= 20:
                sent_to.append(at - sent)
                returned_to.append(max(0.0, at - returned))
    finally:
        requests.put(None)
        call.cancel()
        channel.close()
    return (Figure("etcd put -> watch (from the put sent)", tuple(sent_to)),
            Figure("etcd put -> watch (from the put returned)", tuple(returned_to)))


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
    """An :class:`AckFleet` in a child process (this script with ``--ack-fleet``)."""

    def __init__(self, harness: Harness, ids: Sequence[str]) -> None:
        self.harness = harness
        self.ids = list(ids)
        # its stderr goes to a file (a pipe nobody reads until the end could fill up)
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--ack-fleet", harness.target, "--ids",
             ",".join(self.ids)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.errors, text=True)
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


# --- measurements -----------------------------------------------------------------------


#: every write of a run is a real change: each takes the next number (an alias address, a
#: prefix, the policy mode to switch to), so no round re-writes what an earlier one wrote
_serial = itertools.count()


def timed_writes(count: int, write: Callable[[int], int],
                 wait: Callable[[int, int], float | None]) -> tuple[float, ...]:
    """``count`` writes one after another, each ``write(n)`` with the next serial number;
    each sample is from the write returning to ``wait(n, revision)`` returning (or to the
    time it gives)."""
    samples = []
    for _ in range(count):
        n = next(_serial)
        revision = write(n)
        returned = time.perf_counter()
        done = wait(n, revision)
        samples.append((done if done is not None else time.perf_counter()) - returned)
    return tuple(samples)


def single_host(harness: Harness, fleet: RealFleet, count: int) -> Figure:
    def host(n: int) -> str:
        return fleet.ids[n % len(fleet.ids)]

    def write(n: int) -> int:
        address = f"10.{100 + n // 250}.{n % 250}.1/24"  # a new subnet each time
        return int(harness.stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
            host=host(n), ifname="eth1", address=address)), timeout=10).revision)

    return Figure(f"single-host (PutAlias), 1 of {len(fleet.ids)} agents",
                  timed_writes(count, write, lambda n, rev: fleet.wait(host(n), rev)))


def all_host_prefix(harness: Harness, fleet: RealFleet, count: int) -> Figure:
    def owner(n: int) -> str:
        return fleet.ids[n % len(fleet.ids)]

    def write(n: int) -> int:
        prefix = f"172.{16 + n // 256}.{n % 256}.0/24"
        return int(harness.stub.PutPrefix(pb.PutPrefixRequest(
            prefix=prefix, host=owner(n), ifname="eth1"), timeout=10).revision)

    # every host but the owner gets a route to the new prefix through the owner
    return Figure(f"all-host (PutPrefix), {len(fleet.ids)} agents",
                  timed_writes(count, write, lambda n, rev: fleet.wait_all(rev, but=owner(n))))


_mode = itertools.cycle((tpb.POLICY_MULTIPATH, tpb.POLICY_ALLOW))  # away from the default


def set_policy(harness: Harness, _n: int) -> int:
    return int(harness.stub.SetPolicy(pb.SetClusterPolicyRequest(
        same_prefix=next(_mode)), timeout=10).revision)


def all_host_policy(harness: Harness, fleet: RealFleet | AckFleetProcess,
                    count: int) -> Figure:
    def wait(_n: int, revision: int) -> float | None:
        if isinstance(fleet, AckFleetProcess):
            return fleet.wait_all(revision)
        fleet.wait_all(revision)
        return None

    kind = "ACK-only agents" if isinstance(fleet, AckFleetProcess) else "agents"
    return Figure(f"all-host (policy), {len(fleet.ids)} {kind}",
                  timed_writes(count, lambda n: set_policy(harness, n), wait))


def full_resync(harness: Harness, aliases: int) -> tuple[float, float, float]:
    """(seconds to write them, a fresh agent applying them all, a restarted client
    reconciling a snapshot it already holds)."""
    from agents.sync.sim import InProcessAgent

    host = "resync"
    harness.stub.AddHost(pb.AddHostRequest(id=host), timeout=10)
    base = int(ipaddress.IPv4Address("10.200.0.0"))
    started = time.perf_counter()
    revision = 0
    for i in range(aliases):  # each in a /30 of its own: no two share a prefix guard
        address = f"{ipaddress.IPv4Address(base + 4 * i + 1)}/30"
        revision = int(harness.stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
            host=host, ifname="eth1", address=address)), timeout=30).revision)
    written = time.perf_counter() - started
    state_dir = harness.directory / "resync-state"
    agent = InProcessAgent(host, harness.target, interfaces=("eth1",),
                           state_dir=str(state_dir))
    started = time.perf_counter()
    agent.start()
    if not agent.client.wait_applied(revision, 600):
        raise RuntimeError(f"the resync of {aliases} aliases did not finish in 10 minutes")
    fresh = time.perf_counter() - started
    applied = len(agent.aliases())
    agent.stop()  # its state file now holds the slice
    if applied < aliases:
        raise RuntimeError(f"after the resync the engine holds {applied} of {aliases} aliases")
    # the agent restarted: the same engine, a new client that restores its state file,
    # dials, and reconciles the snapshot against what it holds (nothing to change)
    again = InProcessAgent(host, harness.target, engine=agent.engine, state_dir=str(state_dir))
    started = time.perf_counter()
    again.start()
    deadline = time.monotonic() + 600
    while again.client.stats.acks < 1:  # its first ACK: the snapshot reconciled
        if time.monotonic() > deadline:
            raise RuntimeError("the second resync did not finish in 10 minutes")
        time.sleep(0.001)
    held = time.perf_counter() - started
    errors = again.client.status().errors
    again.stop()
    if errors:
        raise RuntimeError(f"the second resync refused {len(errors)} items: {errors[:3]}")
    return written, fresh, held


# --- the run ----------------------------------------------------------------------------


@dataclass
class Options:
    changes: int = 200
    rounds: int = 3
    scale: tuple[int, ...] = (50, 200, 1000)
    resync: int = 10_000
    lease_ttl: float = 10.0
    storm: int = 0  # agents of the registration storm alone (0: the figures above)


def say(text: str = "") -> None:
    print(text, flush=True)


#: 50 simulated agents share this interpreter (a real one has a process of its own): with
#: the default 5 ms switch interval an agent whose version arrived waits for another
#: agent's thread to let go of the GIL, which measures the harness, not vrc
HARNESS_SWITCH_INTERVAL = 0.001


def run(options: Options) -> None:
    configure_logging("text", "error")  # the simulated agents' logs: only what went wrong
    sys.setswitchinterval(HARNESS_SWITCH_INTERVAL)
    with Harness(options.lease_ttl) as harness:
        say(f"embedded etcd {harness.etcd.url} (pid {harness.etcd.pid}), vrc-controller pid "
            f"{harness.controller_pid}, {os.cpu_count()} CPUs")
        rounds, changes = options.rounds, options.changes
        say(f"each figure: the best of {rounds} rounds of {changes} writes (lowest p99); "
            "times from the write returning")
        returned = []

        def etcd() -> Figure:
            sent, since_returned = raw_etcd_watch(harness.etcd.url, changes)
            returned.append(since_returned)
            return sent

        sent = best_of(rounds, etcd)
        say(sent.line())
        say(min(returned, key=lambda f: f.p99).line())
        real = RealFleet(harness, min(REAL_AGENTS, options.scale[0]))
        real.start()
        try:
            single = best_of(rounds, lambda: single_host(harness, real, changes))
            say(single.line())
            say(best_of(rounds, lambda: all_host_prefix(harness, real, changes)).line())
            policy = best_of(rounds, lambda: all_host_policy(harness, real, changes))
            say(policy.line())
            real_rss = rss_mib(harness.controller_pid)
        finally:
            real.stop()
        say(f"ratio single-host p99 / etcd watch p99: {single.p99 / sent.p99:.2f}")
        say()
        say("how it grows: all-host changes (policy), one round each; controller memory (RSS)")
        say(f"  {len(real.ids):>5} agents with engines (in this process): p99 "
            f"{policy.p99 * 1e3:8.2f} ms   p50 {policy.p50 * 1e3:7.2f} ms   RSS "
            f"{real_rss:6.1f} MiB")
        for total in options.scale:
            fleet = AckFleetProcess(harness, [f"a{i:04d}" for i in range(total)])
            try:
                started = time.perf_counter()
                fleet.start()
                registered = time.perf_counter() - started
                settled = all_host_policy(harness, fleet, 1).p99  # the first, untimed
                grown = all_host_policy(harness, fleet, changes)
                rss = rss_mib(harness.controller_pid)
            finally:
                fleet.stop()
            if fleet.failures:
                say(f"  ACK-only fleet: {fleet.failures.strip()}")
            say(f"  {total:>5} ACK-only agents (another process):  p99 {grown.p99 * 1e3:8.2f} "
                f"ms   p50 {grown.p50 * 1e3:7.2f} ms   RSS {rss:6.1f} MiB   (all up in "
                f"{registered:.1f} s; the first change after took {settled:.2f} s)")
        if options.resync:
            written, fresh, held = full_resync(harness, options.resync)
            say()
            say(f"full resync of {options.resync} aliases: a fresh agent {fresh:.2f} s; a "
                f"restarted agent holding them (its --state-dir) {held:.2f} s; writing them "
                f"through the API took {written:.1f} s")


@dataclass(frozen=True, slots=True)
class StormRound:
    up: float  # from the fleet starting to every host up
    down: float  # from the fleet stopping to every host down
    failures: str  # the fleet's account of streams that failed and were redialled


def storm_round(harness: Harness, ids: Sequence[str]) -> StormRound:
    fleet = AckFleetProcess(harness, ids)
    try:
        started = time.perf_counter()
        fleet.start()  # returns once ListHosts shows every host up
        up = time.perf_counter() - started
    finally:
        stopped = time.perf_counter()
        fleet.stop()
    wait_hosts_up(harness, set(ids), up=False)
    return StormRound(up, time.perf_counter() - stopped, fleet.failures.strip())


def run_storm(total: int, rounds: int, lease_ttl: float) -> None:
    """The registration storm of ``--storm`` (the module docstring): each round on a fresh
    etcd and controller, so every round starts from the same empty cluster."""
    say(f"registration storm: {total} ACK-only agents at once (another process), {rounds} "
        f"rounds, each on a fresh etcd and vrc-controller; {os.cpu_count()} CPUs")
    first = [f"a{i:04d}" for i in range(total)]
    second = [f"b{i:04d}" for i in range(total)]
    storms = (("new hosts", first), ("redial", first), (f"{total} more", second))
    kept: dict[str, list[StormRound]] = {kind: [] for kind, _ in storms}
    for number in range(rounds):
        with Harness(lease_ttl) as harness:
            for kind, ids in storms:
                result = storm_round(harness, ids)
                kept[kind].append(result)
                say(f"  round {number + 1} {kind:<10}: all up in {result.up:6.2f} s, all down "
                    f"{result.down:5.2f} s after the streams closed"
                    + (f"; {result.failures}" if result.failures else ""))
    for kind, results in kept.items():
        best = min(results, key=lambda r: r.up)
        say(f"best {kind:<10}: {total} agents all up in {best.up:.2f} s (worst "
            f"{max(r.up for r in results):.2f} s), all down {best.down:.2f} s after")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200, help="writes of each kind")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the etcd, single-host and 50-agent figures (the best "
                             "is shown)")
    parser.add_argument("--scale", default="50,200,1000",
                        help="agent counts for the growth figures (the first <= 50 are real)")
    parser.add_argument("--resync", type=int, default=10_000,
                        help="aliases in the full-resync figure (0: skip)")
    parser.add_argument("--storm", type=int, default=0,
                        help="measure only a registration storm of this many agents")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 20 changes, 10 and 40 agents, 500 aliases")
    args = parser.parse_args(argv)
    if args.quick:
        return Options(changes=20, rounds=1, scale=(10, 40), resync=500)
    scale = tuple(int(n) for n in args.scale.split(",") if n)
    return Options(changes=args.changes, rounds=args.rounds, scale=scale, resync=args.resync,
                   storm=args.storm)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--ack-fleet"]:  # the child of AckFleetProcess
        asyncio.run(serve_ack_fleet(args[1], args[3].split(",")))
        return 0
    options = parse_args(args)
    if options.storm:
        run_storm(options.storm, options.rounds, options.lease_ttl)
        return 0
    run(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import contextlib
import ipaddress
import itertools
import math
import os
import queue
import sys
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

from bench.fleets import (  # noqa: E402
    WAIT,
    AckFleetProcess,
    Harness,
    RealFleet,
    wait_hosts_up,
)
from serving.logs import configure_logging  # noqa: E402
from vrc.v1 import controller_pb2 as pb  # noqa: E402
from vrc.v1 import types_pb2 as tpb  # noqa: E402

REAL_AGENTS = 50


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
    options = parse_args(list(sys.argv[1:] if argv is None else argv))
    if options.storm:
        run_storm(options.storm, options.rounds, options.lease_ttl)
        return 0
    run(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())

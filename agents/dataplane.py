"""The data-plane loop: the one thread that moves frames between NICs and the engine.

One iteration:

1. wait for frames: right after an iteration that moved frames, spin on the
   rings' next slot for at most ``busy_poll`` seconds (the answer to what
   was just forwarded usually comes back within it, and a sleep and wake-up
   would cost more than the wait); otherwise, and when the window closes
   empty, ``poll`` every link's receive ring and a wake-up eventfd, at most
   until the engine's next timer deadline and never longer than
   ``max_wait`` — zero when a ring still holds frames from the last batch.
   An idle loop never spins: the window opens only after traffic.
   The thread runs at the ``priority`` it was given (``realtime``: SCHED_RR,
   as the kernel's own forwarding runs in softirq context above every
   process; ``high``: nice -10; ``normal``), so other work on the host does
   not take its core away while frames wait;
2. take up to ``max_batch`` frames from each ready ring (no lock held);
3. under the gate's lock, once per iteration: feed each link's batch to
   ``engine.receive_batch(ifindex, frames, now)``, run ``engine.tick(now)``
   if its deadline has come, drain ``engine.transmit()`` and read the next
   deadline;
4. with the lock released, send the output grouped per link, one
   ``send_batch`` per link.

API calls run on gRPC threads through ``gate.call``; the gate then calls
``wake`` so what they produced (a gratuitous ARP, a hook's packet) leaves at
once instead of at the next timeout. The clock is ``time.monotonic`` unless
another is injected; the engine only ever sees the numbers.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agents.packet_socket import LOCAL_FILTER_MAX
from router import IfFlags
from router.offload import Outgoing

#: How the loop thread asks the scheduler for its core (docs/agent.md, "Priority").
PRIORITIES = ("realtime", "high", "normal")
RT_PRIORITY = 10  # SCHED_RR priority: above every normal thread, far below the kernel's own
HIGH_NICE = -10
MAX_BATCH = 256
MAX_WAIT = 0.25  # seconds: the loop re-checks its stop flag at least this often
BUSY_POLL = 0.00005  # seconds of spinning on the rings after an iteration that moved frames
#: The loop looks at its own CPU share every PACE_WINDOW seconds. Spinning may take at
#: most SPIN_SHARE of a window; a realtime loop that used more than MAX_SHARE of one rests
#: REST seconds at normal priority, so it never reaches the kernel's RT throttle (95% of
#: each second by default, which would stop it for 50 ms at once and let the ring overflow).
PACE_WINDOW = 0.02
SPIN_SHARE = 0.25
MAX_SHARE = 0.9
REST = 0.0015
POLL_IN = select.POLLIN | select.POLLERR


class Link(Protocol):
    """What the loop needs from a link (``agents.link.PacketLink`` in the agent)."""

    @property
    def ifname(self) -> str: ...

    @property
    def mac(self) -> bytes: ...

    @property
    def promiscuous(self) -> bool: ...

    def fileno(self) -> int: ...

    def recv_batch(self, max_frames: int = MAX_BATCH) -> list[bytes]: ...

    def pending(self) -> bool: ...

    def send_batch(self, frames: list[Outgoing]) -> int: ...

    def set_promiscuous(self, on: bool) -> None: ...


class EngineGate(Protocol):
    """The part of ``agents.gate.Gate`` the loop uses."""

    on_change: Callable[[], None] | None

    def locked(self) -> contextlib.AbstractContextManager[Any]: ...


@dataclass(slots=True)
class LoopStats:
    """What the loop counted; read by the metrics collector."""

    iterations: int = 0
    frames_in: int = 0
    frames_out: int = 0
    ticks: int = 0
    tx_unroutable: int = 0  # output for an ifindex without a link (e.g. a vanished NIC)
    tx_failed: int = 0
    engine_errors: int = 0
    spin_hits: int = 0  # busy-poll windows that found a frame
    spin_misses: int = 0  # ... that closed empty (the loop then slept in poll)
    rests: int = 0  # a realtime loop's rests at normal priority below the kernel's RT throttle


def wanted_promiscuous(ifp: Any, link_mac: bytes) -> bool:
    """Does the engine need frames for MACs other than the NIC's own?

    Yes when the engine interface's MAC differs from the NIC's (the NIC
    would filter the engine's unicast frames) or when the engine asked for
    promiscuous mode (a promiscuous tap, IFF_PROMISC).
    """
    if ifp is None:
        return False
    lladdr = bytes(getattr(ifp, "lladdr", b"") or b"")
    flags = getattr(ifp, "flags", IfFlags.NONE)
    return (bool(lladdr) and lladdr != link_mac) or bool(flags & IfFlags.PROMISC)


def _name_native_thread(name: str) -> None:
    """The kernel's name of the calling thread (Python before 3.14 leaves it "python3")."""
    with contextlib.suppress(OSError):
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(name[:15])


class DataPlane:
    """The loop thread. ``links`` maps the engine's ifindex to the link carrying it."""

    def __init__(
        self,
        gate: EngineGate,
        links: Mapping[int, Link],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_batch: int = MAX_BATCH,
        max_wait: float = MAX_WAIT,
        busy_poll: float = BUSY_POLL,
        priority: str = "normal",
        log: Any = None,
    ) -> None:
        self.gate = gate
        self.links = dict(links)
        self.clock = clock
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.busy_poll = busy_poll
        if priority not in PRIORITIES:
            raise ValueError(f"priority {priority!r}: one of {', '.join(PRIORITIES)}")
        self.priority = priority
        self.granted_priority = "normal"  # what the scheduler gave the thread
        self.log = log
        self._busy = False  # the last iteration moved frames: spin before sleeping
        self._wall: Callable[[], float] = time.monotonic  # the pacing's clocks
        self._cpu: Callable[[], float] = time.thread_time
        self._resting = False  # running at normal priority below the RT throttle
        self._window_start = time.monotonic()
        self._window_end = self._window_start + PACE_WINDOW
        self._window_cpu = 0.0
        self._spin_spent = 0.0  # seconds spun in the current window
        self.stats = LoopStats()
        self._deadline: float | None = None
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._changed = True  # check promiscuous needs on the first iteration
        self._local_ring_off_logged = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll = select.poll()
        for link in self.links.values():
            self._poll.register(link.fileno(), POLL_IN)
            for ring in ("control_fileno", "local_fileno"):  # PacketLink's ARP and local rings
                fileno = getattr(link, ring, None)
                if fileno is not None:
                    self._poll.register(fileno(), POLL_IN)
        self._poll.register(self._wake_fd, select.POLLIN)
        # bound methods looked up once: the loop calls them every iteration
        self._receivers = tuple((ifindex, link.recv_batch) for ifindex, link in self.links.items())
        self._pending = tuple(link.pending for link in self.links.values())
        self._local_followers = tuple(  # PacketLink's local ring follows our addresses
            (link, link.set_local_addresses) for link in self.links.values()
            if hasattr(link, "set_local_addresses"))
        gate.on_change = self.wake  # API calls wake the loop from now on

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the loop thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="vrc-dataplane", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop and join the loop thread; True when it ended within ``timeout``."""
        self._stopping.set()
        self.wake()
        thread, self._thread = self._thread, None
        if self.gate.on_change == self.wake:
            self.gate.on_change = None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        if self._wake_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._wake_fd)
            self._wake_fd = -1
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Make the loop run an iteration now (called by the gate after API calls)."""
        self._changed = True
        if self._wake_fd >= 0:
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake_fd, 1)

    def _claim_priority(self) -> None:
        """Ask for the loop thread's scheduling (this thread only; the API threads stay
        normal). Falls back step by step when refused (no CAP_SYS_NICE), and says so."""
        wanted = PRIORITIES[PRIORITIES.index(self.priority):]
        for level in wanted:
            try:
                if level == "realtime":
                    os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
                    # the nice level applies while the loop rests at normal priority
                    with contextlib.suppress(OSError):
                        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HIGH_NICE)
                elif level == "high":
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HIGH_NICE)
            except OSError:
                continue
            self.granted_priority = level
            break
        if self.log is not None and self.granted_priority != self.priority:
            self.log.warning("data-plane priority refused", wanted=self.priority,
                             granted=self.granted_priority)

    def _run(self) -> None:
        _name_native_thread("vrc-dataplane")  # top -H, ps -L and /proc show the loop
        self._claim_priority()
        self._window_start, self._window_cpu = self._wall(), self._cpu()
        self._window_end = self._window_start + PACE_WINDOW
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the loop must outlive any single bad iteration
                self.stats.engine_errors += 1
                if self.log is not None:
                    self.log.exception("data-plane iteration failed", error=str(exc))
                time.sleep(0.01)  # no hot spin if something keeps failing

    # ------------------------------------------------------------ one iteration
    def run_once(self) -> None:
        """Receive, run the engine, transmit; wait (bounded) first only when every ring is
        empty. Used by tests too.

        Receiving first costs one status read per empty ring, where asking ``poll`` or
        every ring's ``pending`` before each batch cost a syscall or a call per link.
        """
        self._pace()
        batches = self._receive()
        if not batches:
            self._wait_for_work()
            batches = self._receive()
        output = self._run_engine(batches)
        if output:
            self._transmit(output)
        self._busy = bool(batches or output)
        self.stats.iterations += 1

    def _wait_for_work(self) -> None:
        """Every ring was empty: spin a little right after traffic, else sleep in ``poll``."""
        timeout = self._timeout()
        if timeout <= 0:
            return
        if (self._busy and self._spin_spent < SPIN_SHARE * PACE_WINDOW
                and self._spin(min(timeout, self.busy_poll))):
            return
        self._wait(timeout)

    def _timeout(self) -> float:
        """How long the loop may sleep: until the engine's next deadline, at most
        ``max_wait``."""
        if self._deadline is None:
            return self.max_wait
        return min(self.max_wait, max(0.0, self._deadline - self.clock()))

    def _spin(self, seconds: float) -> bool:
        """Watch the rings' next slots for ``seconds``; True as soon as one holds a frame."""
        pending = self._pending
        clock = time.monotonic
        start = clock()
        end = start + seconds
        found = False
        while not found and clock() < end:
            for ready in pending:
                if ready():
                    found = True
                    break
        self._spin_spent += clock() - start
        if found:
            self.stats.spin_hits += 1
        else:
            self.stats.spin_misses += 1
        return found

    def _pace(self) -> None:
        """Once per window: reset the spin budget; a realtime loop that took more than
        ``MAX_SHARE`` of the window's time rests for ``REST`` seconds.

        Resting means running at normal priority (``SCHED_OTHER`` at nice
        ``HIGH_NICE``), not sleeping: the kernel's RT throttle counts only
        realtime run time, so the loop keeps forwarding through the rest when
        nothing else wants the core, and yields it like any normal thread when
        something does. A sleep gave those 1.5 ms of every 21.5 away even on an
        idle core (7% of the peak rate).
        """
        now = self._wall()
        if now < self._window_end:
            return
        cpu = self._cpu()
        if self._resting:  # the rest is over: realtime again, a fresh window
            self._resting = not self._set_realtime(True)
        elif (self.granted_priority == "realtime"
              and cpu - self._window_cpu > MAX_SHARE * (now - self._window_start)):
            self.stats.rests += 1
            if self._set_realtime(False):
                self._resting = True
                self._window_end = now + REST
                return
            time.sleep(REST)  # the switch was refused: rest the old way
            now, cpu = self._wall(), self._cpu()
        self._window_start, self._window_cpu = now, cpu
        self._window_end = now + PACE_WINDOW
        self._spin_spent = 0.0

    def _set_realtime(self, on: bool) -> bool:
        """The loop thread's policy: SCHED_RR at ``RT_PRIORITY``, or SCHED_OTHER."""
        try:
            if on:
                os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
            else:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            return False
        return True

    def _wait(self, timeout: float) -> None:
        """Sleep in ``poll`` until a ring has a frame, the loop is woken, or ``timeout``."""
        # poll() takes milliseconds; round up so a deadline is never polled early in a spin.
        millis = max(1, int(timeout * 1000 + 0.999))
        for fd, _mask in self._poll.poll(millis):
            if fd == self._wake_fd:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.eventfd_read(self._wake_fd)

    def _receive(self) -> list[tuple[int, list[bytes]]]:
        """What every ring holds now (an empty ring costs one status read)."""
        batches: list[tuple[int, list[bytes]]] = []
        max_batch = self.max_batch
        for ifindex, recv_batch in self._receivers:
            frames = recv_batch(max_batch)
            if frames:
                batches.append((ifindex, frames))
                self.stats.frames_in += len(frames)
        return batches

    def _run_engine(self, batches: list[tuple[int, list[bytes]]]) -> list[tuple[int, Outgoing]]:
        with self.gate.locked() as engine:
            now = self.clock()
            for ifindex, frames in batches:
                engine.receive_batch(ifindex, frames, now)
            if self._deadline is not None and now >= self._deadline:
                engine.tick(now)
                self.stats.ticks += 1
            output: list[tuple[int, Outgoing]] = engine.transmit()  # a fresh list (drained)
            self._deadline = engine.next_deadline()
            if self._changed:
                self._changed = False
                self._sync_promiscuous(engine)
                self._sync_local_addresses(engine)
        return output

    def _sync_local_addresses(self, engine: Any) -> None:
        """Each link's local ring takes frames to the engine's addresses (once per change;
        the filters are only rewritten when the set differs)."""
        if not self._local_followers:
            return
        keys = engine.local_address_keys()
        for link, follow in self._local_followers:
            try:
                fits = follow(keys)
            except OSError as exc:
                if self.log is not None:
                    self.log.warning("local ring filter change failed", ifname=link.ifname,
                                     error=str(exc))
                continue
            if not fits and not self._local_ring_off_logged and self.log is not None:
                self._local_ring_off_logged = True
                self.log.info("too many addresses for the local ring: frames to them share "
                              "the main ring", addresses=len(keys), limit=LOCAL_FILTER_MAX)

    def _sync_promiscuous(self, engine: Any) -> None:
        """Promiscuous membership follows ``wanted_promiscuous`` (docs/agent.md)."""
        for link in self.links.values():
            wanted = wanted_promiscuous(engine.interface(link.ifname), link.mac)
            if wanted != link.promiscuous:
                try:
                    link.set_promiscuous(wanted)
                except OSError as exc:
                    if self.log is not None:
                        self.log.warning(
                            "promiscuous mode change failed", ifname=link.ifname, error=str(exc)
                        )
                    continue
                if self.log is not None:
                    self.log.info("promiscuous mode", ifname=link.ifname, on=wanted)

    def _transmit(self, output: list[tuple[int, Outgoing]]) -> None:
        if len(output) == 1:  # a lone frame (a ping, an ARP answer): no grouping
            ifindex, frame = output[0]
            self._send(ifindex, [frame])
            return
        per_link: dict[int, list[Outgoing]] = {}
        last_ifindex = -1
        bucket: list[Outgoing] = []
        for ifindex, frame in output:
            if ifindex != last_ifindex:  # forwarded bursts go out one interface in a row
                bucket = per_link.setdefault(ifindex, [])
                last_ifindex = ifindex
            bucket.append(frame)
        for ifindex, frames in per_link.items():
            self._send(ifindex, frames)

    def _send(self, ifindex: int, frames: list[Outgoing]) -> None:
        link = self.links.get(ifindex)
        if link is None:
            self.stats.tx_unroutable += len(frames)
            return
        sent = link.send_batch(frames)
        self.stats.frames_out += sent
        self.stats.tx_failed += len(frames) - sent

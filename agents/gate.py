"""The engine gate: the one locked way into the engine from other threads.

The engine is sans-I/O and single-threaded. The agent has two kinds of
callers: the data-plane loop (one thread, a batch of frames at a time) and
the gRPC handler threads (API calls, streams). Both go through one
:class:`Gate`:

* ``gate.call(fn)`` — an API call: runs ``fn(engine)`` under the lock, then
  wakes the data-plane loop (``gate.on_change``) so frames the call produced
  (a gratuitous ARP, a packet from a hook) go out promptly.
* ``with gate.locked() as engine:`` — the data-plane loop's entry, once per
  batch; it does not wake anyone (the loop is awake).

Whichever entry was used, before the lock is released the gate collects what
the engine produced for API clients — events, packets for hook streams —
and hands them to per-client mailboxes (it asks the engine's
``client_output_pending()`` first: most batches produce none). Only the gate
drains those engine outputs; frames to transmit (``engine.transmit()``) stay the data-plane
loop's business. Stream handlers wait on the mailboxes, never on the lock.

Mailboxes are bounded in items and, for captures and hooks, in bytes: each
stream may hold :data:`STREAM_BYTES` of frames or packets its client has not
read yet, and all of them together :data:`TOTAL_BYTES` (one
:class:`BytePool` per gate). What does not fit is dropped and counted — a
capture never stalls routing, nor grows the agent without bound.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import threading
from collections import deque
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from router import Event, IfFamily, RouterError
from router.errors import ENXIO

T = TypeVar("T")
Item = TypeVar("Item")

EVENT_HISTORY = 65536  # events kept for clients that resume from a sequence number
MAILBOX_SIZE = 65536  # items a slow stream client may fall behind before drops
STREAM_BYTES = 16 << 20  # unread frames/packets one capture or hook stream may hold
TOTAL_BYTES = 64 << 20  # ... all capture and hook streams of one agent together
RECORD_OVERHEAD = 128  # bytes a queued frame costs beyond its data (objects, deque slot)
LINKTYPE_NULL = 0  # pcap: BSD loopback, a 4-byte address family header (ngN)
LINKTYPE_ETHERNET = 1


class BytePool:
    """Bytes several mailboxes share, up to ``limit``; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` bytes; returns how many were granted."""
        with self._lock:
            granted = max(0, min(wanted, self.limit - self.used))
            self.used += granted
            return granted

    def give(self, count: int) -> None:
        with self._lock:
            self.used -= count


class Mailbox(Generic[Item]):
    """A bounded hand-over from the gate to one stream client.

    ``put_many`` never blocks the engine side: when the client is too slow the
    newest items are dropped and counted (a capture must not stall routing).
    The bound is ``limit`` items and, when ``data_of`` is given, ``byte_limit``
    bytes of this mailbox and whatever ``pool`` (shared with other mailboxes)
    still has. An item costs ``len(data_of(item))`` plus :data:`RECORD_OVERHEAD`
    (the objects around the data); ``data_of`` is a C-level getter
    (``operator.attrgetter``) or None for items that are bytes themselves, so the
    accounting stays a couple of C loops per batch.
    """

    def __init__(self, limit: int = MAILBOX_SIZE, *, byte_limit: int | None = None,
                 pool: BytePool | None = None,
                 data_of: Callable[[Item], Sized] | None = None,
                 sized: bool | None = None) -> None:
        self._items: deque[Item] = deque()
        self._limit = limit
        self._byte_limit = byte_limit
        self._pool = pool
        self._data_of = data_of
        self._sized = sized if sized is not None else (
            data_of is not None or byte_limit is not None or pool is not None)
        self._ready = threading.Condition()
        self.bytes = 0
        self.dropped = 0
        self.closed = False

    def put_many(self, items: list[Item]) -> None:
        with self._ready:
            room = max(self._limit - len(self._items), 0)
            fitting = items[:room] if room < len(items) else items
            if self._sized and fitting:
                fitting = self._within_bytes(fitting)
            self.dropped += len(items) - len(fitting)
            self._items.extend(fitting)
            self._ready.notify_all()

    def _cost(self, items: list[Item]) -> int:
        data = items if self._data_of is None else map(self._data_of, items)
        return sum(map(len, data)) + RECORD_OVERHEAD * len(items)  # type: ignore[arg-type]

    def _within_bytes(self, items: list[Item]) -> list[Item]:
        """The leading ``items`` that fit this mailbox's and the pool's bytes (reserved)."""
        wanted = self._cost(items)
        room = wanted if self._byte_limit is None else self._byte_limit - self.bytes
        granted = self._pool.take(min(wanted, room)) if self._pool is not None \
            else min(wanted, room)
        if granted == wanted:  # the common case: the whole batch fits
            self.bytes += granted
            return items
        data = items if self._data_of is None else map(self._data_of, items)
        sizes = [len(d) + RECORD_OVERHEAD for d in data]  # type: ignore[arg-type]
        used = self._prefix(sizes, granted)
        if self._pool is not None and granted > used:
            self._pool.give(granted - used)
        self.bytes += used
        count = len(list(itertools.takewhile(lambda total: total <= used,
                                             itertools.accumulate(sizes))))
        return items[:count]

    @staticmethod
    def _prefix(sizes: list[int], budget: int) -> int:
        """The bytes of the longest leading run of ``sizes`` within ``budget``."""
        used = 0
        for size in sizes:
            if used + size > budget:
                break
            used += size
        return used

    def take(self, timeout: float | None, limit: int = MAILBOX_SIZE) -> list[Item]:
        """Up to ``limit`` items; waits up to ``timeout`` for the first one."""
        with self._ready:
            if not self._items and not self.closed:
                self._ready.wait(timeout)
            count = min(limit, len(self._items))
            taken = [self._items.popleft() for _ in range(count)]
            if self._sized and taken:
                self._release(self._cost(taken))
            return taken

    def discard(self) -> None:
        """Drop whatever is queued (the stream is over) and give its bytes back."""
        with self._ready:
            self._items.clear()
            self._release(self.bytes)

    def _release(self, count: int) -> None:
        if count:
            self.bytes -= count
            if self._pool is not None:
                self._pool.give(count)

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()


class EventLog:
    """The engine's events, kept in order with their sequence numbers.

    Subscribers read "everything after seq N" and learn when some of those
    events were already forgotten (``lost``): they should list the state
    again rather than trust a partial replay.
    """

    def __init__(self, history: int = EVENT_HISTORY) -> None:
        self._events: deque[Event] = deque()
        self._history = history
        self._forgotten_upto = 0  # highest seq no longer kept
        self._last_seq = 0
        self._changed = threading.Condition()

    @property
    def last_seq(self) -> int:
        with self._changed:
            return self._last_seq

    def extend(self, events: list[Event]) -> None:
        if not events:
            return
        with self._changed:
            self._events.extend(events)
            while len(self._events) > self._history:
                self._forgotten_upto = self._events.popleft().seq
            self._last_seq = max(self._last_seq, events[-1].seq)
            self._changed.notify_all()

    def read_after(self, seq: int, limit: int) -> tuple[list[Event], bool]:
        """Kept events with a sequence number above ``seq``, and whether some were lost."""
        with self._changed:
            return self._after(seq, limit)

    def wait_after(self, seq: int, timeout: float | None,
                   limit: int = MAILBOX_SIZE) -> tuple[list[Event], bool]:
        with self._changed:
            if self._last_seq <= seq:
                self._changed.wait(timeout)
            return self._after(seq, limit)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _after(self, seq: int, limit: int) -> tuple[list[Event], bool]:
        lost = seq < self._forgotten_upto
        if self._last_seq <= seq:
            return [], lost
        out: list[Event] = []
        # Newest events are at the right: walk back to the resume point.
        for event in reversed(self._events):
            if event.seq <= seq:
                break
            out.append(event)
        out.reverse()
        return out[:limit], lost


@dataclass(eq=False)
class TapStream:
    """One capture client: the engine's tap handle and the frames for it."""

    ifname: str
    linktype: int
    snaplen: int
    handle: Any = None
    mailbox: Mailbox[Any] = field(default_factory=Mailbox)

    @property
    def dropped(self) -> int:
        """Frames this client lost: the engine's tap queue overflowed, or our mailbox."""
        return self.mailbox.dropped + int(getattr(self.handle, "dropped", 0) or 0)


_FRAME_OF = operator.attrgetter("frame")  # a tap record's data (router.tap.TapRecord)


def linktype_of(ifp: Any) -> int:
    """pcap link type of an interface's frames: DLT_NULL for ngN, else Ethernet."""
    return LINKTYPE_NULL if getattr(ifp, "family", None) is IfFamily.NETGRAPH \
        else LINKTYPE_ETHERNET


class _Locked:
    """``Gate.locked()``: the lock, then the engine's outputs for API clients collected on
    the way out. A class, not a generator context manager: the loop enters it once per
    batch, and a generator frame per entry cost more than the lock itself."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    def __enter__(self) -> Any:
        gate = self._gate
        gate._lock.acquire()
        return gate.engine

    def __exit__(self, *exc: object) -> None:
        gate = self._gate
        try:
            gate._collect()
        finally:
            gate._lock.release()


class Gate:
    """The locked entry point to one engine; see the module docstring."""

    def __init__(self, engine: Any, *, event_history: int = EVENT_HISTORY,
                 stream_bytes: int = STREAM_BYTES, total_bytes: int = TOTAL_BYTES) -> None:
        self.engine = engine
        self.events = EventLog(event_history)
        self.stream_bytes = BytePool(total_bytes)  # shared by capture and hook mailboxes
        self._per_stream_bytes = stream_bytes
        self.on_change: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._hooks: dict[Any, Mailbox[bytes]] = {}
        self._taps: dict[Any, TapStream] = {}
        self._locked = _Locked(self)

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(engine)`` under the lock, collect its outputs, wake the data plane."""
        try:
            with self._lock:
                try:
                    return fn(self.engine)
                finally:
                    self._collect()
        finally:
            wake = self.on_change
            if wake is not None:
                wake()

    def locked(self) -> contextlib.AbstractContextManager[Any]:
        """The data-plane loop's per-batch entry: the engine, under the lock."""
        return self._locked

    # --- hooks: packets the engine sends to an ngN hook go to one stream ---------

    def _bounded_mailbox(self, data_of: Callable[[Any], Sized] | None) -> Mailbox[Any]:
        return Mailbox(byte_limit=self._per_stream_bytes, pool=self.stream_bytes,
                       data_of=data_of, sized=True)

    def open_hook(self, ifname: str, hook: str) -> tuple[Any, Mailbox[bytes]]:
        """Connect an ngN hook (the engine raises EISCONN if taken) and its mailbox."""
        mailbox: Mailbox[bytes] = self._bounded_mailbox(None)  # packets are bytes

        def connect(engine: Any) -> Any:
            handle = engine.hook_connect(ifname, hook)
            self._hooks[handle] = mailbox
            return handle

        return self.call(connect), mailbox

    def close_hook(self, handle: Any) -> None:
        def disconnect(engine: Any) -> None:
            mailbox = self._hooks.pop(handle, None)
            if mailbox is not None:
                mailbox.close()
                mailbox.discard()
            engine.hook_disconnect(handle)

        self.call(disconnect)

    # --- taps: frames passing an interface go to capture streams ---------------------

    def open_tap(self, ifname: str, snaplen: int = 0) -> TapStream:
        """Open an engine tap on ``ifname`` (``engine.tap``) and a mailbox for its frames.

        The engine's tap (``router.ng.tap.Tap``) queues records; the gate drains
        them (``engine.drain_taps``) after every engine entry, so frames reach
        the stream within one data-plane iteration.
        """
        def start(engine: Any) -> TapStream:
            ifp = engine.interface(ifname)
            if ifp is None:
                raise RouterError(ENXIO, "ifname", ifname)
            tap = engine.tap(ifname, snaplen=snaplen) if snaplen else engine.tap(ifname)
            stream = TapStream(ifname, int(getattr(tap, "linktype", linktype_of(ifp))),
                               snaplen, tap, self._bounded_mailbox(_FRAME_OF))
            self._taps[id(tap)] = stream
            return stream

        return self.call(start)

    def close_tap(self, stream: TapStream) -> None:
        def stop(engine: Any) -> None:
            stream.mailbox.close()
            stream.mailbox.discard()
            if self._taps.pop(id(stream.handle), None) is not None:
                engine.untap(stream.handle)

        self.call(stop)

    # --- collection, under the lock --------------------------------------------------

    def _collect(self) -> None:
        if not self.engine.client_output_pending():
            return
        self.events.extend(list(self.engine.drain_events()))
        self._deliver_hook_output()
        self._deliver_tapped_frames()

    def _deliver_hook_output(self) -> None:
        per_hook: dict[Any, list[bytes]] = {}
        for handle, packet in self.engine.drain_hook_output():
            per_hook.setdefault(handle, []).append(bytes(packet))
        for handle, packets in per_hook.items():
            mailbox = self._hooks.get(handle)
            if mailbox is not None:
                mailbox.put_many(packets)

    def _deliver_tapped_frames(self) -> None:
        per_tap: dict[int, list[Any]] = {}
        for tap, record in self.engine.drain_taps():
            per_tap.setdefault(id(tap), []).append(record)
        for key, records in per_tap.items():
            stream = self._taps.get(key)
            if stream is not None:
                stream.mailbox.put_many(records)

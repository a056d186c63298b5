"""Per-host deltas to the streams that want them: one message per delta, bounded queues.

Typha's lesson: turn each change into a message once, and let every client
follow; cut off the client that falls too far behind instead of buffering
for it forever. Here a :class:`~controller.sync.slices.HostDelta` becomes
one ``SyncResponse``, offered to each open stream of its host (normally
one). A stream's queue holds at most ``queue_limit`` messages: the one that
would exceed it marks the stream *behind*, and its handler ends it with
RESOURCE_EXHAUSTED; the agent redials and gets a snapshot, which the
reconciler diffs against what it holds (nothing is flushed).

A new stream's snapshot and its registration happen under the pipeline's
lock (:attr:`Fanout.lock`, also held while a batch is stepped and
published), so a stream sees every version after its snapshot exactly once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from controller.sync.items import SliceItem
from controller.sync.slices import HostDelta
from vrc.v1 import controller_pb2 as pb

QUEUE_LIMIT = 1000  # messages a stream may be behind before it is cut off
SNAPSHOT_CHUNK = 1000  # items per snapshot message (about 100 kB)


def delta_message(delta: HostDelta, controller: str) -> pb.SyncResponse:
    return pb.SyncResponse(version=delta.version, upserts=[i.message for i in delta.upserts],
                           removals=list(delta.removals), controller=controller)


def snapshot_messages(items: dict[str, SliceItem], version: int, controller: str,
                      chunk: int = SNAPSHOT_CHUNK) -> Iterator[pb.SyncResponse]:
    """The slice as one snapshot: ``more`` on every message but the last."""
    ordered = [items[key].message for key in sorted(items)]
    chunks = [ordered[i:i + chunk] for i in range(0, len(ordered), chunk)] or [[]]
    for index, part in enumerate(chunks):
        yield pb.SyncResponse(version=version, snapshot=True, upserts=part,
                              more=index < len(chunks) - 1, controller=controller)


@dataclass(eq=False)
class Subscriber:
    """One stream's queue of messages (see the module docstring)."""

    host: str
    limit: int = QUEUE_LIMIT
    _queue: deque[pb.SyncResponse] = field(default_factory=deque)
    _ready: threading.Condition = field(default_factory=threading.Condition)
    behind: bool = False
    closed: str = ""  # why it was closed (superseded, stopping); empty while open

    def offer(self, message: pb.SyncResponse) -> None:
        with self._ready:
            if self.closed or self.behind:
                return
            if len(self._queue) >= self.limit:
                self.behind = True
                self._queue.clear()
            else:
                self._queue.append(message)
            self._ready.notify_all()

    def take(self, timeout: float) -> list[pb.SyncResponse]:
        """Whatever is queued; waits up to ``timeout`` for the first message."""
        with self._ready:
            if not self._queue and not self.behind and not self.closed:
                self._ready.wait(timeout)
            messages = list(self._queue)
            self._queue.clear()
            return messages

    def close(self, why: str) -> None:
        with self._ready:
            self.closed = self.closed or why
            self._ready.notify_all()

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()


class Fanout:
    """The open streams by host; publishes deltas to them."""

    def __init__(self, controller: str, queue_limit: int = QUEUE_LIMIT) -> None:
        self.controller = controller
        self.queue_limit = queue_limit
        self.lock = threading.RLock()  # the pipeline's lock (see the module docstring)
        self._streams: dict[str, list[Subscriber]] = {}
        self.messages = 0  # delta messages built (one per changed host per batch)

    def publish(self, deltas: list[HostDelta]) -> None:
        """Call with :attr:`lock` held, in the same hold as the step that made the deltas."""
        for delta in deltas:
            streams = self._streams.get(delta.host)
            if not streams:
                continue
            message = delta_message(delta, self.controller)
            self.messages += 1
            for stream in streams:
                stream.offer(message)

    def subscribe(self, host: str, items: dict[str, SliceItem], version: int
                  ) -> tuple[Subscriber, dict[str, SliceItem], int]:
        """Register a stream for ``host`` (call with :attr:`lock` held); with it, a copy of
        the slice and its version, for the snapshot (:func:`snapshot_messages`, built
        outside the lock: the items never change once made).

        Other streams of the same host on this replica are closed: an agent that
        redialled before its old stream was noticed dead gets the new one.
        """
        for old in self._streams.get(host, []):
            old.close(f"superseded by a newer stream of host {host}")
        stream = Subscriber(host, self.queue_limit)
        self._streams[host] = [stream]
        return stream, dict(items), version

    def unsubscribe(self, stream: Subscriber) -> bool:
        """Forget ``stream``; whether it was still the host's current one."""
        with self.lock:
            streams = self._streams.get(stream.host, [])
            current = stream in streams
            if current:
                streams.remove(stream)
            if not streams:
                self._streams.pop(stream.host, None)
            return current

    def holds(self, host: str) -> bool:
        """Whether this replica has an open stream of ``host``."""
        with self.lock:
            return bool(self._streams.get(host))

    def hosts(self) -> list[str]:
        with self.lock:
            return sorted(self._streams)

    def close_all(self, why: str) -> None:
        with self.lock:
            for streams in self._streams.values():
                for stream in streams:
                    stream.close(why)

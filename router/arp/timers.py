"""A timer heap with lazy cancellation, for the ARP entries and the ACD records.

Each timed object carries a ``timer_token``; arming it bumps the token and
pushes ``(deadline, seq, token, obj)``. An item whose token no longer matches
(re-armed, cancelled, or the object deleted) is stale and skipped when it
reaches the top, so cancelling costs nothing and a tick only touches the
timers that are due, never every entry.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Timed(Protocol):
    timer_token: int
    timer_at: float


T = TypeVar("T", bound=Timed)


class TimerHeap(Generic[T]):
    """Deadlines of objects that have at most one pending timer each.

    ``alive(obj)`` says whether an object may still fire at all (e.g. it has
    not been deleted); a dead object's items are dropped like stale ones.
    """

    __slots__ = ("_alive", "_heap", "_seq")

    def __init__(self, alive: Callable[[T], bool]) -> None:
        self._heap: list[tuple[float, int, int, T]] = []
        self._seq = itertools.count()
        self._alive = alive

    def __len__(self) -> int:
        return len(self._heap)

    def arm(self, obj: T, deadline: float) -> None:
        """(Re)arm ``obj`` to fire at ``deadline``; any earlier arming is forgotten."""
        obj.timer_token += 1
        obj.timer_at = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), obj.timer_token, obj))

    @staticmethod
    def cancel(obj: T) -> None:
        obj.timer_token += 1
        obj.timer_at = 0.0

    def _live(self, item: tuple[float, int, int, T]) -> bool:
        obj = item[3]
        return obj.timer_token == item[2] and self._alive(obj)

    def pop_due(self, now: float) -> T | None:
        """The next object whose timer is due at ``now`` (its timer cleared), or None."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if self._live(item):
                item[3].timer_at = 0.0
                return item[3]
        return None

    def next_deadline(self) -> float | None:
        """The earliest live deadline, discarding stale items on the way."""
        heap = self._heap
        while heap:
            item = heap[0]
            obj = item[3]
            if obj.timer_token == item[2] and self._alive(obj):  # _live, inlined: per batch
                return item[0]
            heapq.heappop(heap)
        return None

    def compact(self, live_count: int) -> None:
        """Drop stale items when they outnumber the live ones (bounded memory)."""
        if len(self._heap) > 4 * live_count + 64:
            self._heap = [item for item in self._heap if self._live(item)]
            heapq.heapify(self._heap)

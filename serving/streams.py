"""A budget for long-lived server streams, so they can never take every worker thread.

grpc's synchronous server ties one worker thread to each open stream; with
as many streams as workers, unary calls and health checks wait until a
stream ends (issue 11 found exactly that in the agent). A daemon sizes its
thread pool as its stream budget plus workers kept for unary calls, and every
streaming handler takes a slot first: beyond the total, or beyond the
per-client share, the stream is refused at once (RESOURCE_EXHAUSTED) instead
of queueing.

A client is the peer's address without its port (``ipv4:127.0.0.1``); every
Unix-socket client is the same client (grpc does not tell them apart).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class BudgetExceeded(Exception):
    """No stream slot for this client; the text says which limit and how to raise it."""


def client_of(peer: str) -> str:
    """``ipv4:127.0.0.1:5555`` → ``ipv4:127.0.0.1``; ``ipv6:[::1]:5`` → ``ipv6:[::1]``;
    ``unix:...`` → ``unix``."""
    if peer.startswith("unix"):
        return "unix"
    head, sep, _port = peer.rpartition(":")
    return head if sep and head else peer


class StreamBudget:
    def __init__(self, total: int, per_client: int, *, what: str = "streams",
                 flag: str = "") -> None:
        if total < 1 or per_client < 1:
            raise ValueError(f"stream budget {total}/{per_client}: both must be 1 or more")
        self.total = total
        self.per_client = min(per_client, total)
        self.what = what
        self.flag = flag
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    @property
    def open(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def open_for(self, client: str) -> int:
        with self._lock:
            return self._open[client]

    def acquire(self, peer: str) -> Callable[[], None]:
        """Take one slot for ``peer``; the function that gives it back (call it once).
        BudgetExceeded if there is none."""
        client = client_of(peer)
        with self._lock:
            if sum(self._open.values()) >= self.total:
                raise BudgetExceeded(self._message(f"all {self.total} {self.what} are open"))
            if self._open[client] >= self.per_client:
                raise BudgetExceeded(self._message(
                    f"{client} already has {self.per_client} {self.what} open"))
            self._open[client] += 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._open[client] -= 1
                if self._open[client] <= 0:
                    del self._open[client]

        return release

    @contextmanager
    def slot(self, peer: str) -> Iterator[None]:
        """Hold one slot for the duration of a ``with`` block."""
        release = self.acquire(peer)
        try:
            yield
        finally:
            release()

    def _message(self, why: str) -> str:
        hint = f" (the limit is {self.flag})" if self.flag else ""
        return f"{why}: close one and retry{hint}"

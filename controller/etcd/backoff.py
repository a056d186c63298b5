"""Exponential backoff with jitter, the one retry pacing of the etcd layer.

Doubling from ``initial`` to ``maximum``; each delay is drawn from
[delay/2, delay] so replicas that failed together do not retry together.
:meth:`Backoff.reset` after a success starts again from ``initial``.
"""

from __future__ import annotations

import random


class Backoff:
    __slots__ = ("_next", "_random", "initial", "maximum")

    def __init__(self, initial: float = 0.1, maximum: float = 5.0,
                 rng: random.Random | None = None) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff {initial}..{maximum}: need 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._next = initial
        self._random = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt (seconds), and double the one after."""
        delay = self._next
        self._next = min(self.maximum, self._next * 2)
        return delay / 2 + self._random.random() * delay / 2

    def peek(self) -> float:
        """The upper bound of the next delay, without taking it."""
        return self._next

    def reset(self) -> None:
        self._next = self.initial

"""Per-identity write budgets (a token bucket for each caller) and request sizes.

Every write an identity makes takes a token from its bucket; the bucket
holds ``burst`` tokens and refills at ``rate`` a second. An empty bucket
answers how long until the next token, which the caller reports as the
retry hint (RESOURCE_EXHAUSTED, trailer ``vrc-retry-after``). Buckets that
are full are forgotten once more than ``max_identities`` are kept, so a
stream of new identities cannot grow memory without end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

MAX_IDENTITIES = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class WriteLimiter:
    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_identities: int = MAX_IDENTITIES,
                 flags: str = "--write-rate/--write-burst") -> None:
        if not rate > 0 or burst < 1:
            raise ValueError(f"write limit {rate}/s burst {burst}: the rate must be more than "
                             "0 and the burst 1 or more")
        self.rate = float(rate)
        self.burst = int(burst)
        self.clock = clock
        self.max_identities = max_identities
        self.flags = flags
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self.refused = 0

    def describe(self) -> str:
        return (f"the write limit of {self.rate:g}/s (burst {self.burst}, {self.flags})")

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if there was one, else the seconds to wait."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_identities:
                    self._forget_full(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst),
                                bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            self.refused += 1
            return (1.0 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full = [key for key, b in self._buckets.items()
                if b.tokens + (now - b.stamp) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_identities:  # all busy: drop the oldest
            oldest = min(self._buckets, key=lambda k: self._buckets[k].stamp)
            del self._buckets[oldest]


class RequestSizeLimit(grpc.ServerInterceptor):
    """A tighter bound on single requests than the server's receive limit.

    grpc has one receive limit per server, and it must fit the largest stream
    message (a Sync hello or ACK names every local or failed item of a host:
    hundreds of kilobytes for thousands of items). Requests of unary-request
    methods — a Controller or Agent API call is a few hundred bytes — are held
    to ``max_bytes`` here instead, refused with RESOURCE_EXHAUSTED naming the
    method, the size and the limit.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def intercept_service(self, continuation: Callable[[Any], Any],
                          handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        method = handler_call_details.method
        limit = self.max_bytes
        options = {"request_deserializer": handler.request_deserializer,
                   "response_serializer": handler.response_serializer}

        def check(request: Any, context: grpc.ServicerContext) -> None:
            size = request.ByteSize()
            if size > limit:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{method}: a request of {size} bytes is over the limit of "
                              f"{limit} bytes")

        if not handler.response_streaming:
            inner = handler.unary_unary

            def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
                check(request, context)
                return inner(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **options)
        inner_stream = handler.unary_stream

        def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            check(request, context)
            yield from inner_stream(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **options)

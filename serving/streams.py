"""A budget for long-lived server streams, so they can never take every worker thread.

grpc's synchronous server ties one worker thread to each open stream; with
as many streams as workers, unary calls and health checks wait until a
stream ends (issue 11 found exactly that in the agent: 32 streams locked out
its whole API). A daemon sizes its thread pool as its stream budget plus
workers kept for unary calls, and every stream takes a slot first: beyond
the total, or beyond the per-client share, the stream is refused at once
(RESOURCE_EXHAUSTED, the message naming the limit and the flag that raises
it) instead of queueing.

Two ways to use it:

* by hand, in a handler (``vrc-controller``'s ``WatchConfig``)::

      release = budget.acquire(context.peer())   # BudgetExceeded when full
      try:
          yield from ...
      finally:
          release()

* for every streaming method of a server at once (``vrc-agent``: events,
  captures, hooks, reflection), with no code in the handlers::

      budget = StreamBudget(64, 16, what="API streams", total_flag="--max-streams",
                            per_client_flag="--max-streams-per-client")
      server = budgeted_server(budget, unary_threads=16)   # pool: 64 + 16 threads
      add_MyServicer_to_server(servicer, server)

  The interceptor takes a slot when a stream's handler starts and gives it
  back when the handler returns, i.e. exactly while it holds a thread.
  Handlers that hold no thread (grpc's ``experimental_non_blocking``, used by
  ``grpc.health.v1.Health/Watch``) are left alone.

A client is the caller's identity when it has one — a verified client
certificate's SPIFFE ID (:func:`serving.auth.peer_identity`), so clients behind
one NAT address get a share each and one identity cannot take more by opening
connections from many hosts — else the peer's address without its port
(``ipv4:127.0.0.1``: one host, however many connections); every Unix-socket
client is the same client ``unix``: grpc gives handlers no peer credentials
for a Unix socket (``context.peer()`` is ``unix:``, grpc/grpc#15511), and only
the daemon's own user can connect to its socket (mode 0600) anyway.

A client that vanishes without closing its connection (a host that lost
power) would keep its slots until TCP gives up, which can take hours:
:func:`budgeted_server` turns on HTTP/2 keepalive pings and bounds the wait
for their answers (:func:`keepalive_options`), so such a connection and its
streams end within about the sum of the two.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc

from serving.server import UNIX_CLIENT, client_of

__all__ = ["UNIX_CLIENT", "BudgetExceeded", "StreamBudget", "budgeted_server", "client_key",
           "client_of", "client_of_call", "keepalive_options"]
DEFAULT_UNARY_THREADS = 16
DEFAULT_KEEPALIVE_SECONDS = 60.0
DEFAULT_KEEPALIVE_TIMEOUT_SECONDS = 20.0

Behavior = Callable[..., Any]


class BudgetExceeded(Exception):
    """No stream slot for this client; the text says which limit and how to raise it."""


def client_of_call(context: grpc.ServicerContext) -> str:
    """The client a call counts against: its certificate's identity, else its address."""
    from serving.auth import Transport, peer_identity  # serving.auth imports this module

    identity = peer_identity(context)
    if identity.transport is Transport.TLS:
        return identity.name
    return client_of(str(context.peer()))


def client_key(peer: str) -> str:
    """For a handler that has only the peer's text: the identity of the authorized call
    this thread serves (:func:`serving.auth.current_identity`), else the address."""
    from serving.auth import Transport, current_identity

    identity = current_identity()
    if identity is not None and identity.transport is Transport.TLS:
        return identity.name
    return client_of(peer)


class StreamBudget:
    """Open streams per client and in total, up to ``total`` and ``per_client``; thread-safe.

    ``what`` names the streams in refusals; ``flag`` names what raises the
    limits, or ``total_flag`` and ``per_client_flag`` one each (then a refusal
    names the one that was hit, with its value).
    """

    def __init__(self, total: int, per_client: int, *, what: str = "streams",
                 flag: str = "", total_flag: str = "", per_client_flag: str = "") -> None:
        if total < 1 or per_client < 1:
            raise ValueError(f"stream budget {total}/{per_client}: both must be 1 or more")
        self.total = total
        self.per_client = min(per_client, total)
        self.what = what
        self.flag = flag
        self.total_flag = total_flag
        self.per_client_flag = per_client_flag
        self.refused = 0  # streams refused since the start
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    @property
    def open(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def open_for(self, client: str) -> int:
        with self._lock:
            return self._open[client]

    def open_by_client(self) -> dict[str, int]:
        """Open streams by client, a copy."""
        with self._lock:
            return dict(self._open)

    def acquire(self, peer: str) -> Callable[[], None]:
        """Take one slot for ``peer`` (grpc's peer text; the caller's identity counts
        instead during an authorized call); the function that gives it back (call it
        once). BudgetExceeded if there is none."""
        return self.acquire_for(client_key(peer))

    def acquire_for(self, client: str) -> Callable[[], None]:
        """:meth:`acquire` for a client already named (:func:`client_of_call`)."""
        with self._lock:
            if sum(self._open.values()) >= self.total:
                self.refused += 1
                raise BudgetExceeded(self._message(
                    f"all {self.total} {self.what} are open", self.total_flag, self.total))
            if self._open[client] >= self.per_client:
                self.refused += 1
                raise BudgetExceeded(self._message(
                    f"{client} already has {self.per_client} {self.what} open",
                    self.per_client_flag, self.per_client))
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

    def interceptor(self) -> grpc.ServerInterceptor:
        """A server interceptor that budgets every thread-holding streaming method."""
        return _BudgetInterceptor(self)

    def _message(self, why: str, flag: str, limit: int) -> str:
        if flag:
            return f"{why}: close one and retry (the limit is {flag} {limit}: raise it for more)"
        hint = f" (the limit is {self.flag})" if self.flag else ""
        return f"{why}: close one and retry{hint}"


class _BudgetInterceptor(grpc.ServerInterceptor):
    """Wraps the behaviour of every thread-holding streaming method in a budget slot."""

    def __init__(self, budget: StreamBudget) -> None:
        self._budget = budget

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler
        budget = self._budget
        coding = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.request_streaming and handler.response_streaming:
            both = handler.stream_stream
            if both is None or _non_blocking(both):
                return handler
            return grpc.stream_stream_rpc_method_handler(_budgeted_stream(budget, both), **coding)
        if handler.response_streaming:
            out = handler.unary_stream
            if out is None or _non_blocking(out):
                return handler  # health's Watch: holds no thread while open
            return grpc.unary_stream_rpc_method_handler(_budgeted_stream(budget, out), **coding)
        into = handler.stream_unary
        if into is None or _non_blocking(into):
            return handler
        return grpc.stream_unary_rpc_method_handler(_budgeted_call(budget, into), **coding)


def _non_blocking(behavior: Behavior) -> bool:
    """grpc's experimental_non_blocking handlers return at once and hold no thread."""
    return bool(getattr(behavior, "experimental_non_blocking", False))


def _slot_or_refuse(budget: StreamBudget, context: grpc.ServicerContext
                    ) -> Callable[[], None] | None:
    try:
        return budget.acquire_for(client_of_call(context))
    except BudgetExceeded as refused:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(refused))
        return None  # abort raises; this keeps the type honest


def _budgeted_stream(budget: StreamBudget, behavior: Behavior) -> Behavior:
    def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        release = _slot_or_refuse(budget, context)
        if release is None:
            return
        try:
            yield from behavior(request, context)
        finally:
            release()

    return stream


def _budgeted_call(budget: StreamBudget, behavior: Behavior) -> Behavior:
    def call(requests: Any, context: grpc.ServicerContext) -> Any:
        release = _slot_or_refuse(budget, context)
        if release is None:
            return None
        try:
            return behavior(requests, context)
        finally:
            release()

    return call


def keepalive_options(keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS,
                      timeout_seconds: float = DEFAULT_KEEPALIVE_TIMEOUT_SECONDS
                      ) -> list[tuple[str, int]]:
    """Server channel options that ping idle connections so dead peers free their streams."""
    return [
        ("grpc.keepalive_time_ms", int(keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", int(timeout_seconds * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),  # keep pinging an idle stream
        # the ack of any ping is awaited this long (grpc core's own default: a minute)
        ("grpc.http2.ping_timeout_ms", int(timeout_seconds * 1000)),
    ]


def budgeted_server(
    budget: StreamBudget,
    *,
    unary_threads: int = DEFAULT_UNARY_THREADS,
    thread_name_prefix: str = "vrc-grpc",
    keepalive: tuple[float, float] = (DEFAULT_KEEPALIVE_SECONDS,
                                      DEFAULT_KEEPALIVE_TIMEOUT_SECONDS),
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Server:
    """A grpc server whose pool has a thread per stream of ``budget`` plus ``unary_threads``
    that streams never take, every streaming method budgeted, and keepalive on.
    ``interceptors`` (authorization) run before the budget's."""
    if unary_threads < 1:
        raise ValueError(f"unary threads {unary_threads}: must be 1 or more")
    pool = futures.ThreadPoolExecutor(max_workers=budget.total + unary_threads,
                                      thread_name_prefix=thread_name_prefix)
    # ``interceptors`` run first: a caller authorization refuses takes no stream slot.
    return grpc.server(
        pool, interceptors=[*interceptors, budget.interceptor()],
        options=[*keepalive_options(*keepalive), *options])

"""Our etcd client: a pyetcd client that is health-checked before use and rebuilt after failure.

Why a layer: pyetcd marks its only endpoint failed for 300 s after one
UNAVAILABLE (and then refuses every request), its ``transaction()`` drops the
response header (the revision a write created), and a grpc channel left in
TRANSIENT_FAILURE reconnects on grpc's own backoff (up to two minutes). So:

* before a client is (re)built, :meth:`EtcdClient.wait_healthy` asks every
  endpoint for its status (``Maintenance.Status`` needs no credentials) until
  one answers with a leader;
* requests go straight to pyetcd's generated stubs (``kvstub``,
  ``maintenancestub``, ``etcdrpc.WatchStub``) on the client's channel, with our
  own deadline, so every response keeps its header;
* after UNAVAILABLE or DEADLINE_EXCEEDED the client is dropped and the next
  request builds a new one (new channels, a healthy endpoint first); an
  expired auth token (UNAUTHENTICATED) rebuilds too and the request is sent
  once more. A dropped client's channel is closed only after the longest
  request timeout, so the other requests running on it end on their own
  instead of failing with "Channel closed" (under a burst, one slow request
  used to fail every request in flight); a request that still meets a closed
  channel is sent once more on a new client.

Errors come out as :mod:`controller.etcd.errors` types, never as grpc errors.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pyetcd
from pyetcd import etcdrpc

from controller.etcd.backoff import Backoff
from controller.etcd.config import Endpoint, EtcdConfig
from controller.etcd.errors import (
    EtcdCompacted,
    EtcdError,
    EtcdRefused,
    EtcdRequestTooLarge,
    EtcdUnavailable,
)
from controller.etcd.txn import Txn, prefix_end, to_bytes

T = TypeVar("T")

PROBE_TIMEOUT = 2.0
# Bounded reconnects for the channels we keep (grpc's default backs off to 120 s).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]
_REBUILD = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# After a failed build, requests fail at once for this long instead of each waiting
# for its own health probe in turn (threads queue on the build lock).
FAIL_FAST = 1.0

_log = logging.getLogger("vrc.controller.etcd")


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as etcd holds it."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0

    @classmethod
    def of(cls, kv: Any) -> KeyValue:
        return cls(kv.key.decode(), bytes(kv.value), int(kv.create_revision),
                   int(kv.mod_revision), int(kv.version), int(kv.lease))


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int  # the store revision the range was read at
    more: bool = False
    count: int = 0


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int  # on success: the revision the writes created (unchanged if none wrote)
    failure_reads: list[list[KeyValue]]  # the failure branch's ranges, when it failed


@dataclass(frozen=True, slots=True)
class Read:
    """One range of a :meth:`EtcdClient.read` (a key, or every key under a prefix)."""

    key: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    version: str
    leader: int
    revision: int
    db_size: int
    endpoint: str


class EtcdClient:
    """Thread-safe: requests from any thread share one pyetcd client until it fails."""

    def __init__(self, config: EtcdConfig, *, connect_timeout: float = 30.0) -> None:
        self.config = config
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._client: Any = None
        self._endpoint: Endpoint | None = None
        config.channel_credentials()  # the TLS files are readable (ValueError naming them)
        self.rebuilds = 0  # how many times a client was built (metrics, tests)
        self._stop = threading.Event()
        self._failure: EtcdUnavailable | None = None
        self._failed_at = 0.0
        self._retired: list[Any] = []  # dropped clients, closed once their requests are over

    # -- health -------------------------------------------------------------------------

    def probe(self, endpoint: Endpoint, timeout: float = PROBE_TIMEOUT) -> Status:
        """Ask one endpoint for its status on a channel of its own; EtcdUnavailable if it
        does not answer or has no leader."""
        channel = self._channel(endpoint)
        try:
            reply = etcdrpc.MaintenanceStub(channel).Status(etcdrpc.StatusRequest(),
                                                            timeout=timeout)
        except grpc.RpcError as error:
            raise EtcdUnavailable(f"etcd at {endpoint.url}: {_rpc_text(error)}") from None
        finally:
            channel.close()
        if not reply.leader:
            raise EtcdUnavailable(f"etcd at {endpoint.url}: no leader")
        return Status(reply.version, int(reply.leader), int(reply.header.revision),
                      int(reply.dbSize), endpoint.url)

    def healthy_endpoint(self) -> Endpoint:
        """The first endpoint that answers with a leader; EtcdUnavailable naming each failure."""
        problems = []
        for endpoint in self.config.endpoints:
            try:
                self.probe(endpoint)
                return endpoint
            except EtcdUnavailable as error:
                problems.append(str(error))
        raise EtcdUnavailable("; ".join(problems))

    def wait_healthy(self, timeout: float | None = None,
                     sleep: Callable[[float], object] = time.sleep) -> Endpoint:
        """Probe until an endpoint is healthy (backoff 100 ms → 2 s) or ``timeout`` passes
        (None: ``connect_timeout``; 0: one round of probes)."""
        limit = self.connect_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        backoff = Backoff(initial=0.1, maximum=2.0)
        while True:
            try:
                return self.healthy_endpoint()
            except EtcdUnavailable as error:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EtcdUnavailable(f"etcd not healthy after {limit:g} s: {error}"
                                          ) from None
                sleep(min(backoff.next(), left))

    # -- the client ---------------------------------------------------------------------

    def _channel(self, endpoint: Endpoint) -> grpc.Channel:
        try:
            credentials = self.config.channel_credentials()
        except ValueError as error:
            raise EtcdUnavailable(f"etcd TLS files: {error}") from None
        if credentials is not None:
            return grpc.secure_channel(endpoint.netloc, credentials,
                                       options=CHANNEL_OPTIONS)
        return grpc.insecure_channel(endpoint.netloc, options=CHANNEL_OPTIONS)

    def _build(self, wait: float | None) -> Any:
        endpoint = self.wait_healthy(wait, sleep=self._stop.wait)
        # The TLS files are read at every build, so rotated certificates are used from the
        # next rebuild on (a failure, or etcd restarting) with no restart of ours.
        try:
            credentials = self.config.channel_credentials()
        except ValueError as error:
            raise EtcdUnavailable(f"etcd TLS files: {error}") from None
        ep = pyetcd.Endpoint(endpoint.host, endpoint.port, secure=credentials is not None,
                             creds=credentials, opts=CHANNEL_OPTIONS)
        try:
            client = pyetcd.MultiEndpointEtcd3Client(
                endpoints=[ep], timeout=self.config.timeout, user=self.config.user,
                password=self.config.password)
        except grpc.RpcError as error:
            ep.close()
            raise _translate(error) from None
        self._endpoint = endpoint
        self.rebuilds += 1
        _log.info("etcd client ready at %s", endpoint.url)
        return client

    def _current(self, wait: float | None) -> Any:
        with self._lock:
            if self._stop.is_set():
                raise EtcdUnavailable("etcd client closed")
            if self._client is None:
                recent = time.monotonic() - self._failed_at < FAIL_FAST
                if self._failure is not None and recent:
                    raise EtcdUnavailable(str(self._failure))
                try:
                    self._client = self._build(wait)
                except EtcdUnavailable as error:
                    self._failure, self._failed_at = error, time.monotonic()
                    raise
                self._failure = None
            return self._client

    def _drop(self, client: Any) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        self._retire(client)

    def _retire(self, client: Any) -> None:
        """Close a dropped client once the requests already running on it are over.

        One request's failure must not fail every other request in flight on the
        same channel: closing it at once turns them into CANCELLED "Channel
        closed" (and a request about to start into grpc's ValueError). So it
        closes after the longest request timeout; new requests use a new client.
        """
        with self._lock:
            if client in self._retired:
                return
            self._retired.append(client)
        timer = threading.Timer(max(self.config.timeout, 30.0) + 1.0, self._close_retired,
                                args=(client,))
        timer.daemon = True
        timer.start()

    def _close_retired(self, client: Any) -> None:
        with self._lock:
            if client not in self._retired:
                return
            self._retired.remove(client)
        with contextlib.suppress(Exception):
            client.close()

    def invalidate(self) -> None:
        """Drop the current client; the next request builds a new one (after a health wait)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            self._retire(client)

    @property
    def endpoint(self) -> Endpoint | None:
        """The endpoint the current client talks to (None before the first request)."""
        return self._endpoint if self._client is not None else None

    def call(self, request: Callable[[Any], T], *, wait: float | None = None) -> T:
        """Run ``request(pyetcd_client)``; grpc errors become etcd-layer errors.

        Without a client, one is built first, waiting up to ``wait`` seconds
        for a healthy endpoint (None: the request timeout; 0: one probe round,
        for callers with a backoff of their own). A failure that says the
        connection is bad drops the client so the next call rebuilds it; an
        expired token is retried once on a new client.
        """
        patience = self.config.timeout if wait is None else wait
        for attempt in (1, 2):
            client = self._current(patience)
            try:
                return request(client)
            except ValueError as error:  # grpc: "Cannot invoke RPC: Channel closed!"
                if "closed" not in str(error):
                    raise
                self._drop(client)  # closed under us (EtcdClient.close, or a caller's own)
                if attempt == 1 and not self._stop.is_set():
                    continue
                raise EtcdUnavailable(f"etcd client channel closed: {error}") from None
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else None
                if code in _REBUILD or code is grpc.StatusCode.UNAUTHENTICATED:
                    self._drop(client)
                if code is grpc.StatusCode.UNAUTHENTICATED and attempt == 1:
                    continue
                raise _translate(error) from None
        raise AssertionError("unreachable")

    # -- requests -----------------------------------------------------------------------

    def range(self, key: str | bytes, range_end: bytes | None = None, *, revision: int = 0,
              limit: int = 0, keys_only: bool = False, newest_first: bool = False
              ) -> RangeResult:
        """Keys in ``[key, range_end)`` (just ``key`` without an end), in key order
        (``newest_first``: descending); ``count`` is the number in the range whatever
        ``limit``."""
        request = etcdrpc.RangeRequest(key=to_bytes(key), revision=revision, limit=limit,
                                       keys_only=keys_only)
        if newest_first:
            request.sort_order = etcdrpc.RangeRequest.DESCEND
            request.sort_target = etcdrpc.RangeRequest.KEY
        if range_end is not None:
            request.range_end = range_end

        def send(client: Any) -> Any:
            return client.kvstub.Range(request, timeout=self.config.timeout,
                                       metadata=client.metadata)

        try:
            reply = self.call(send)
        except EtcdCompacted as error:
            raise EtcdCompacted(revision, error.compact_revision) from None
        return RangeResult([KeyValue.of(kv) for kv in reply.kvs], int(reply.header.revision),
                           bool(reply.more), int(reply.count))

    def get(self, key: str) -> tuple[KeyValue | None, int]:
        """The key (None if absent) and the revision it was read at."""
        result = self.range(key)
        return (result.kvs[0] if result.kvs else None), result.revision

    def get_prefix(self, prefix: str, *, revision: int = 0) -> RangeResult:
        return self.range(prefix, prefix_end(prefix), revision=revision)

    def read(self, reads: Sequence[Read]) -> tuple[list[list[KeyValue]], int]:
        """Several keys and ranges read at one revision (one read-only transaction)."""
        ops = []
        for item in reads:
            request = etcdrpc.RangeRequest(key=to_bytes(item.key))
            if item.prefix:
                request.range_end = prefix_end(item.key)
            ops.append(etcdrpc.RequestOp(request_range=request))

        def send(client: Any) -> Any:
            return client.kvstub.Txn(etcdrpc.TxnRequest(success=ops),
                                     timeout=self.config.timeout, metadata=client.metadata)

        reply = self.call(send)
        results = [[KeyValue.of(kv) for kv in op.response_range.kvs] for op in reply.responses]
        return results, int(reply.header.revision)

    def txn(self, txn: Txn) -> TxnResult:
        """Send ``txn``; its outcome and the revision (header) it was applied at."""
        txn.check_limits()
        request = txn.request()

        def send(client: Any) -> Any:
            return client.kvstub.Txn(request, timeout=self.config.timeout,
                                     metadata=client.metadata)

        reply = self.call(send)
        reads = []
        if not reply.succeeded:
            reads = [[KeyValue.of(kv) for kv in op.response_range.kvs]
                     for op in reply.responses if op.WhichOneof("response") == "response_range"]
        return TxnResult(bool(reply.succeeded), int(reply.header.revision), reads)

    def status(self, *, wait: float | None = None) -> Status:
        """The status of the endpoint in use (``wait``: as for :meth:`call`)."""
        def send(client: Any) -> Any:
            return client.maintenancestub.Status(etcdrpc.StatusRequest(),
                                                 timeout=self.config.timeout,
                                                 metadata=client.metadata)

        reply = self.call(send, wait=wait)
        where = self._endpoint.url if self._endpoint else ""
        return Status(reply.version, int(reply.leader), int(reply.header.revision),
                      int(reply.dbSize), where)

    def revision(self) -> int:
        """The store's current revision (a one-key read: cheap, linearizable)."""
        return self.range(b"\0", limit=1, keys_only=True).revision

    def compact(self, revision: int, *, physical: bool = True) -> None:
        def send(client: Any) -> Any:
            return client.kvstub.Compact(
                etcdrpc.CompactionRequest(revision=revision, physical=physical),
                timeout=max(self.config.timeout, 30.0), metadata=client.metadata)

        self.call(send)

    def watch_call(self, requests: Iterator[Any], *, wait: float = 0) -> tuple[Any, Any]:
        """Open a Watch stream fed by ``requests``: (the pyetcd client it runs on, the call).

        The caller iterates the call for responses and cancels it to stop;
        errors while iterating are grpc errors: pass them to :meth:`failed`.
        """
        def send(client: Any) -> tuple[Any, Any]:
            stub = etcdrpc.WatchStub(client.channel)
            return client, stub.Watch(requests, metadata=client.metadata)

        return self.call(send, wait=wait)

    def failed(self, client: Any, error: grpc.RpcError) -> EtcdError:
        """The etcd-layer error for a failure on a stream of ``client`` (dropping it if bad)."""
        code = error.code() if hasattr(error, "code") else None
        if code in _REBUILD or code is grpc.StatusCode.UNAUTHENTICATED:
            self._drop(client)
        return _translate(error)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            client, self._client = self._client, None
            retired, self._retired = self._retired, []
        for old in ([client] if client is not None else []) + retired:
            with contextlib.suppress(Exception):
                old.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rpc_text(error: grpc.RpcError) -> str:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return f"{code.name if code else 'error'}: {details}"


def _translate(error: grpc.RpcError) -> EtcdError:
    """A grpc error from etcd as the etcd-layer error a caller can act on."""
    code = error.code() if hasattr(error, "code") else None
    details = str(error.details() if hasattr(error, "details") else error)
    if code in _REBUILD:
        return EtcdUnavailable(f"etcd: {_rpc_text(error)}")
    if code is grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
        return EtcdCompacted(0)
    if code is grpc.StatusCode.INVALID_ARGUMENT and (
            "too many operations" in details or "too large" in details):
        return EtcdRequestTooLarge(f"etcd: {details}")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:  # a request over grpc's own size limit
        return EtcdRequestTooLarge(f"etcd: {details}")
    return EtcdRefused(code.name if code else "UNKNOWN", details)

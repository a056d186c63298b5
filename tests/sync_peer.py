"""A scripted Sync server: a real protocol peer for the agent's Sync client tests.

It speaks the ``vrc.v1.Controller/Sync`` stream over a real gRPC server on a
Unix socket, but instead of a store it sends what the test tells it to and
records what the agent says (hellos, ACKs). It is a legitimate peer, not a
mock of the store: the agent cannot tell it from a controller.

Helpers build the messages a controller would send (:func:`alias_item`,
:func:`route_item`, :func:`policy_item`, :func:`snapshot`, :func:`update`).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from vrc.v1 import controller_pb2, controller_pb2_grpc, types_pb2

POLICIES = {"allow": types_pb2.POLICY_ALLOW, "refuse": types_pb2.POLICY_REFUSE,
            "multipath": types_pb2.POLICY_MULTIPATH}


def _fingerprint(item: controller_pb2.SyncItem) -> str:
    return hashlib.sha256(item.SerializeToString(deterministic=True)).hexdigest()[:16]


def alias_item(ifname: str, address: str, broadcast: str = "", destination: str = "",
               host: str = "h1") -> controller_pb2.SyncItem:
    item = controller_pb2.SyncItem(
        key=f"alias/{ifname}/{address.split('/')[0]}",
        alias=controller_pb2.Alias(host=host, ifname=ifname, address=address,
                                   broadcast=broadcast, destination=destination))
    item.fingerprint = _fingerprint(item)
    return item


def route_item(prefix: str, *hops: tuple[str, str], owner: str = "", distance: int = 1
               ) -> controller_pb2.SyncItem:
    item = controller_pb2.SyncItem(
        key=f"route/{prefix}",
        route=controller_pb2.SyncRoute(
            prefix=prefix, hops=distance, owner=owner,
            next_hops=[controller_pb2.NextHop(gateway=gw, ifname=ifname) for gw, ifname in hops]))
    item.fingerprint = _fingerprint(item)
    return item


def policy_item(mode: str) -> controller_pb2.SyncItem:
    item = controller_pb2.SyncItem(key="policy", policy=POLICIES[mode])
    item.fingerprint = _fingerprint(item)
    return item


def snapshot(version: int, *items: controller_pb2.SyncItem, more: bool = False
             ) -> controller_pb2.SyncResponse:
    return controller_pb2.SyncResponse(version=version, snapshot=True, upserts=list(items),
                                       more=more, controller="scripted")


def update(version: int, *items: controller_pb2.SyncItem, removals: tuple[str, ...] = (),
           more: bool = False) -> controller_pb2.SyncResponse:
    return controller_pb2.SyncResponse(version=version, upserts=list(items),
                                       removals=list(removals), more=more,
                                       controller="scripted")


_END = object()


@dataclass(eq=False)
class Stream:
    """One agent stream as the peer sees it."""

    hello: controller_pb2.SyncHello
    _outbox: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    acks: list[controller_pb2.SyncAck] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    ended: bool = False

    def send(self, *messages: controller_pb2.SyncResponse) -> None:
        for msg in messages:
            self._outbox.put(msg)

    def end(self) -> None:
        """End the stream as a controller going away would (status OK)."""
        self._outbox.put(_END)

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self._outbox.put((code, details))

    def wait_ack(self, version: int, timeout: float = 10.0, *, report: bool | None = None
                 ) -> controller_pb2.SyncAck:
        """The first ACK of ``version`` (or, with ``report``, the first one of that kind)."""
        def found() -> controller_pb2.SyncAck | None:
            for ack in self.acks:
                if ack.version == version and (report is None or ack.report == report):
                    return ack
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no ACK of version {version} within {timeout}s; "
                                     f"got {[(a.version, a.report) for a in self.acks]}")
            ack = found()
            assert ack is not None
            return ack

    def _record(self, ack: controller_pb2.SyncAck) -> None:
        with self._changed:
            self.acks.append(ack)
            self._changed.notify_all()

    def _finish(self) -> None:
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_ended(self, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.ended, timeout):
                raise AssertionError(f"the stream did not end within {timeout}s")


class ScriptedController(controller_pb2_grpc.ControllerServicer):
    """The peer's servicer; only Sync is implemented (the rest is UNIMPLEMENTED)."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self._changed = threading.Condition()
        self.on_hello: Any = None  # callable(Stream): what to send first

    def Sync(self, request_iterator: Iterator[controller_pb2.SyncRequest],
             context: grpc.ServicerContext) -> Iterator[controller_pb2.SyncResponse]:
        first = next(request_iterator, None)
        if first is None or not first.HasField("hello"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello first")
        stream = Stream(first.hello)
        reader = threading.Thread(target=self._read, args=(stream, request_iterator),
                                  daemon=True)
        reader.start()
        with self._changed:
            self.streams.append(stream)
            self._changed.notify_all()
        context.add_callback(stream.end)
        if self.on_hello is not None:
            self.on_hello(stream)
        try:
            while context.is_active():
                try:
                    msg = stream._outbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if msg is _END:
                    return
                if isinstance(msg, tuple):
                    context.abort(*msg)
                yield msg
        finally:
            stream._finish()

    @staticmethod
    def _read(stream: Stream, requests: Iterator[controller_pb2.SyncRequest]) -> None:
        try:
            for request in requests:
                if request.HasField("ack"):
                    stream._record(request.ack)
        except grpc.RpcError:
            pass

    def wait_stream(self, count: int = 1, timeout: float = 10.0) -> Stream:
        """The ``count``-th stream (1-based), once it has said hello."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.streams) >= count, timeout):
                raise AssertionError(f"only {len(self.streams)} stream(s) within {timeout}s")
            return self.streams[count - 1]


class PeerServer:
    """The scripted controller served on a Unix socket; ``stop``/``start`` simulate an outage."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.target = f"unix:{path}"
        self.controller = ScriptedController()
        self._server: grpc.Server | None = None

    def start(self) -> PeerServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[
            ("grpc.http2.min_ping_interval_without_data_ms", 1000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_ping_strikes", 0),
        ])
        controller_pb2_grpc.add_ControllerServicer_to_server(self.controller, server)
        server.add_insecure_port(self.target)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=0).wait(5)
            self._server = None

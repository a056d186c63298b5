"""A private etcd for tests, and a loopback TCP proxy that a test can cut and restore.

:class:`TestEtcd` runs a real etcd (the same binary choice as vrc-controller's
private etcd) on free loopback ports in a directory of the test's own, waits
for its health, and kills it by PID when the test ends — also when it fails.
It can be killed and started again on the same ports and data (a restarted
etcd, as clients see it).

:class:`TcpProxy` forwards a loopback port to etcd; ``cut()`` closes every
connection and refuses new ones until ``restore()``, so a test decides
exactly when a client loses etcd and when it gets it back (no timing).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from controller.etcd import EmbeddedEtcd, Endpoint, EtcdClient, EtcdConfig
from controller.etcd.embedded import Ports, free_port
from controller.store import Store


class TestEtcd:
    """One etcd process; ``endpoint``, ``client()``, ``kill()``, ``start()``."""

    __test__ = False  # not a test class for pytest

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = Ports(free_port(), free_port())
        while self.ports.peer == self.ports.client:
            self.ports = Ports(self.ports.client, free_port())
        self.etcd = EmbeddedEtcd(directory, ports=self.ports, auto_compaction="0")
        self._clients: list[EtcdClient] = []

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.ports.client)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def pid(self) -> int | None:
        return self.etcd.pid

    def start(self) -> TestEtcd:
        self.etcd.start(timeout=30)
        return self

    def kill(self) -> None:
        self.etcd.kill()

    def client(self, endpoint: Endpoint | None = None, **options: object) -> EtcdClient:
        """A client (closed with the server); ``endpoint`` overrides (a proxy's)."""
        client = EtcdClient(EtcdConfig((endpoint or self.endpoint,)), **options)  # type: ignore[arg-type]
        self._clients.append(client)
        return client

    def store(self, **options: object) -> Store:
        """A store under a root of its own, so tests sharing one etcd never meet."""
        return Store(self.client(), root=f"/t{uuid.uuid4().hex[:12]}/v1/", **options)  # type: ignore[arg-type]

    def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self.etcd.kill()


@contextlib.contextmanager
def running_etcd() -> Iterator[TestEtcd]:
    """A started etcd in a fresh directory, killed and removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix="vrc-etcd-"))
    server = TestEtcd(directory)
    try:
        server.start()
        yield server
    finally:
        server.close()
        shutil.rmtree(directory, ignore_errors=True)


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` and ``restore()`` (any thread)."""

    def __init__(self, target: Endpoint) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self.restore()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def cut(self) -> None:
        """Close the listener and every connection: clients see the server vanish."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()
        for thread in self._threads:
            thread.join(5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.target.host, self.target.port), 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

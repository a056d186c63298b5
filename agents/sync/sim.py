"""Simulated hosts for tests and benchmarks: a real Sync client on an in-process engine, or
an ACK-only peer.

For tests and benchmarks that need many agents in one process (a
convergence benchmark, a controller test): no NICs, no data-plane loop, no
Agent API — the engine is reconciled by the real :class:`SyncClient` exactly
as in ``vrc-agent``, and the test reads the engine back through the gate::

    host = InProcessAgent("h1", "unix:/tmp/ctl.sock", interfaces=("eth1", "eth2"))
    host.start()
    host.client.wait_applied(revision, timeout=10)
    host.aliases()   # {"eth1/10.0.12.1": "10.0.12.1/24", ...}
    host.stop()      # the engine keeps what it applied

:class:`AckingAgent` is far lighter (one thread, no engine): it acknowledges
every whole version it receives, for benchmarks with hundreds of hosts.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from agents.gate import Gate
from agents.sync.client import NicInfo, SyncClient, SyncConfig
from agents.sync.dial import open_channel
from agents.sync.state import Assembler, ProtocolError
from vrc.v1 import controller_pb2, controller_pb2_grpc

DEFAULT_MTU = 1500


def nics_of(engine: Any) -> tuple[NicInfo, ...]:
    """The engine's Ethernet interfaces as the hello reports NICs."""
    found = []
    for ifp in engine.interfaces():
        mac = bytes(getattr(ifp, "lladdr", b"") or b"")
        if len(mac) == 6:
            found.append(NicInfo(ifp.name, mac.hex(":"), int(ifp.mtu)))
    return tuple(found)


def _mac(host_index: int, port: int) -> str:
    return f"02:76:{host_index >> 8 & 255:02x}:{host_index & 255:02x}:00:{port + 1:02x}"


class InProcessAgent:
    """See the module docstring. ``sync_options`` go to :class:`SyncConfig` (``state_dir``,
    ``backoff_initial``, ...); ``engine`` replaces the default one (ARP probing off, so a
    new address is usable at once); ``log`` is the client's structlog logger."""

    _count = 0

    def __init__(self, host_id: str, target: str, *, interfaces: tuple[str, ...] = ("eth1",),
                 engine: Any = None, agent_endpoint: str = "", log: Any = None,
                 **sync_options: Any) -> None:
        InProcessAgent._count += 1
        self.host_id = host_id
        self.engine = engine if engine is not None else self._new_engine(interfaces)
        self.gate = Gate(self.engine)
        config = SyncConfig(target=target, host_id=host_id,
                            agent_endpoint=agent_endpoint or f"sim:{host_id}",
                            nics=nics_of(self.engine), **sync_options)
        self.client = SyncClient(self.gate, config, log=log)

    @classmethod
    def _new_engine(cls, interfaces: tuple[str, ...]) -> Any:
        from router import ArpConfig, Engine, EngineConfig

        engine = Engine(EngineConfig(arp=ArpConfig(probe_num=0)))
        for port, ifname in enumerate(interfaces):
            engine.add_ethernet(ifname, mac=_mac(cls._count, port), up=True)
        return engine

    def start(self) -> InProcessAgent:
        self.client.restore()
        self.client.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        return self.client.stop(timeout)

    # --- reading the engine back --------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        """``IFNAME/A`` -> ``A/LEN`` for every address in the engine."""
        def read(engine: Any) -> dict[str, str]:
            found = {}
            for ifp in engine.interfaces():
                for ia in engine.inet.addresses(ifp):
                    address = engine.get_address(ifp.name, ia.addr)
                    found[f"{ifp.name}/{address['address']}"] = (
                        f"{address['address']}/{address['plen']}")
            return found

        result: dict[str, str] = self.gate.call(read)
        return result

    def routes(self) -> dict[str, list[tuple[str, str]]]:
        """``P/LEN`` -> [(gateway, ifname), ...] of every configured route (not an address's)."""
        from router.inet.route import ntoa

        def read(engine: Any) -> dict[str, list[tuple[str, str]]]:
            found: dict[str, list[tuple[str, str]]] = {}
            for route in engine.routes():
                if route.is_configured:
                    text = route.describe()
                    legs = found.setdefault(f"{text['dst']}/{route.plen}", [])
                    several = getattr(route, "nexthops", ())  # a multipath route's legs
                    if several:
                        legs.extend((ntoa(h.gateway), h.ifname) for h in several)
                    else:
                        legs.append((text["gateway"], route.ifname))
            return {k: sorted(v) for k, v in found.items()}

        result: dict[str, list[tuple[str, str]]] = self.gate.call(read)
        return result

    def policy(self) -> str:
        return str(self.gate.call(lambda e: e.get_policy()))


def queued_requests(first: controller_pb2.SyncRequest,
                    outbox: queue.SimpleQueue[controller_pb2.SyncRequest | None]
                    ) -> Iterator[controller_pb2.SyncRequest]:
    """A Sync request stream: ``first`` (the hello), then what is put on ``outbox`` until
    a None ends it."""
    yield first
    while (message := outbox.get()) is not None:
        yield message


class AckingAgent:
    """The lightest Sync peer: says hello, takes whole versions and acknowledges each at
    once, applying nothing (no engine). For benchmarks that need hundreds of hosts in one
    process: it measures the controller's side, not an engine's.

    ``applied`` maps each acknowledged version to when its last message arrived
    (``time.perf_counter``); :meth:`wait_version` waits for one. It does not redial: a
    stream that ends leaves ``error`` set.
    """

    def __init__(self, host_id: str, target: str, *, nics: tuple[str, ...] = ("eth1",)) -> None:
        self.host_id = host_id
        self.applied: dict[int, float] = {}
        self.items = 0  # items received in all
        self.error: Exception | None = None
        self._changed = threading.Condition()
        self._out: queue.SimpleQueue[controller_pb2.SyncRequest | None] = queue.SimpleQueue()
        self._channel = open_channel(target)
        hello = controller_pb2.SyncHello(
            host_id=host_id, agent_endpoint=f"sim:{host_id}", software_version="acking",
            nics=[controller_pb2.Nic(name=name, mac=_mac(InProcessAgent._count, n), mtu=1500)
                  for n, name in enumerate(nics)])
        InProcessAgent._count += 1
        self._call = controller_pb2_grpc.ControllerStub(self._channel).Sync(
            queued_requests(controller_pb2.SyncRequest(hello=hello), self._out))
        self._thread = threading.Thread(target=self._read, name=f"acking-{host_id}",
                                        daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assembler = Assembler()
        try:
            for message in self._call:
                self.items += len(message.upserts)
                update = assembler.add(message)
                if update is None:
                    continue
                self._out.put(controller_pb2.SyncRequest(ack=controller_pb2.SyncAck(
                    version=update.version)))
                with self._changed:
                    self.applied[update.version] = time.perf_counter()
                    self._changed.notify_all()
        except (grpc.RpcError, ProtocolError) as error:
            self.error = error
        with self._changed:
            self._changed.notify_all()

    def wait_version(self, version: int, timeout: float) -> float | None:
        """When a version >= ``version`` was acknowledged (perf_counter), or None."""
        with self._changed:
            self._changed.wait_for(lambda: any(v >= version for v in self.applied)
                                   or self.error is not None, timeout)
            times = [t for v, t in self.applied.items() if v >= version]
            return min(times) if times else None

    def stop(self) -> None:
        self._out.put(None)
        self._call.cancel()
        self._channel.close()
        self._thread.join(5)

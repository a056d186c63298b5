"""Liveness: each connected agent's registration on an etcd lease of its own.

While a replica holds a host's Sync stream it keeps ``live/{host}`` (a
:class:`~controller.store.LiveRecord`: replica, agent endpoint, since when)
on a lease with a TTL of ``--lease-ttl`` seconds, and keeps every such lease
alive on one ``LeaseKeepAlive`` call per round (a third of the TTL), whatever
the number of agents. When the stream ends the lease is revoked: the host is
down at once. When the replica dies, or loses etcd for longer than the TTL,
the leases lapse and the hosts are down within the TTL; an agent that
redials any replica is registered again. Only ``live/`` keys ever hang on a
lease — desired state never does (flannel #520, Cilium #9422).

A lease that etcd no longer knows (it lapsed while etcd or this replica was
away) is granted anew and the key put again on the next round; so is a
registration whose key went away while its stream is still open (another
replica's stale stream revoked it): liveness follows the stream that is
actually open.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from pyetcd import etcdrpc

from controller.etcd import EtcdClient, EtcdError, Txn
from controller.store import Keys, LiveRecord, encode
from controller.store.core import etcd_errors

_log = logging.getLogger("vrc.controller.liveness")


@dataclass(eq=False)
class Registration:
    """One stream's registration; ``lease`` changes when it is granted anew."""

    host: str
    agent_endpoint: str
    lease: int = 0
    registered_at: float = 0.0
    released: bool = False


class Liveness:
    """Registers hosts on leases and keeps the leases alive (one thread)."""

    def __init__(self, etcd: EtcdClient, keys: Keys, *, ttl: float, replica: str) -> None:
        self.etcd = etcd
        self.keys = keys
        self.ttl = max(1, math.ceil(ttl))  # etcd's TTLs are whole seconds
        self.replica = replica
        self._held: dict[int, Registration] = {}  # id(registration) -> registration
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.regrants = 0

    # --- registrations ----------------------------------------------------------------

    def register(self, host: str, agent_endpoint: str) -> Registration:
        """Grant a lease and put ``live/{host}`` on it; store errors (UNAVAILABLE) raise."""
        registration = Registration(host, agent_endpoint, registered_at=time.time())
        with etcd_errors():
            self._grant_and_put(registration)
        with self._lock:
            self._held[id(registration)] = registration
        return registration

    def release(self, registration: Registration) -> None:
        """Revoke the lease (best effort: a lease etcd cannot be told about lapses)."""
        with self._lock:
            self._held.pop(id(registration), None)
            registration.released = True
        if registration.lease:
            with contextlib.suppress(EtcdError):
                self._revoke(registration.lease)

    def ensure(self, host: str) -> None:
        """The live key of ``host`` went away: put it again if a registration holds it."""
        for registration in self._registrations():
            if registration.host == host and not registration.released:
                try:
                    self._grant_and_put(registration, reuse=True)
                except EtcdError as error:
                    _log.warning("re-registering %s failed: %s", host, error)

    def _registrations(self) -> list[Registration]:
        with self._lock:
            return list(self._held.values())

    def _grant_and_put(self, registration: Registration, *, reuse: bool = False) -> None:
        lease = registration.lease if reuse and registration.lease else self._grant()
        record = LiveRecord(registration.host, self.replica, registration.agent_endpoint,
                            registration.registered_at)
        try:
            self.etcd.txn(Txn().put(self.keys.live(registration.host), encode(record),
                                    lease=lease))
        except EtcdError:
            if reuse:  # the lease itself may be gone: a new one, once
                lease = self._grant()
                self.etcd.txn(Txn().put(self.keys.live(registration.host), encode(record),
                                        lease=lease))
            else:
                raise
        old, registration.lease = registration.lease, lease
        if old and old != lease:
            with contextlib.suppress(EtcdError):
                self._revoke(old)
        if registration.released:  # the stream ended meanwhile: take the key back down
            with contextlib.suppress(EtcdError):
                self._revoke(lease)

    # --- etcd lease calls -------------------------------------------------------------

    def _grant(self) -> int:
        def send(client: Any) -> int:
            reply = etcdrpc.LeaseStub(client.channel).LeaseGrant(
                etcdrpc.LeaseGrantRequest(TTL=self.ttl), timeout=self.etcd.config.timeout,
                metadata=client.metadata)
            return int(reply.ID)

        return self.etcd.call(send, wait=0)

    def _revoke(self, lease: int) -> None:
        def send(client: Any) -> None:
            etcdrpc.LeaseStub(client.channel).LeaseRevoke(
                etcdrpc.LeaseRevokeRequest(ID=lease), timeout=self.etcd.config.timeout,
                metadata=client.metadata)

        self.etcd.call(send, wait=0)

    def _keep_alive(self, leases: list[int]) -> dict[int, int]:
        """One LeaseKeepAlive call for every lease: lease id -> the TTL etcd answered
        (0 or less: etcd no longer knows it)."""
        def send(client: Any) -> dict[int, int]:
            requests = [etcdrpc.LeaseKeepAliveRequest(ID=lease) for lease in leases]
            replies = etcdrpc.LeaseStub(client.channel).LeaseKeepAlive(
                iter(requests), timeout=self.etcd.config.timeout, metadata=client.metadata)
            return {int(reply.ID): int(reply.TTL) for reply in replies}

        return self.etcd.call(send, wait=0)

    # --- the keeper thread ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vrc-liveness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl + 5)
            self._thread = None

    def _run(self) -> None:
        interval = self.ttl / 3
        while not self._stop.wait(interval):
            try:
                self.keep_alive_round()
            except EtcdError as error:
                _log.warning("lease keep-alive failed (retrying in %.1f s): %s", interval, error)

    def keep_alive_round(self) -> None:
        """Refresh every held lease; grant anew (and put again) the ones etcd lost."""
        held = [r for r in self._registrations() if r.lease and not r.released]
        self.rounds += 1
        if not held:
            return
        answered = self._keep_alive(sorted({r.lease for r in held}))
        for registration in held:
            if answered.get(registration.lease, 0) <= 0 and not registration.released:
                self.regrants += 1
                _log.warning("lease of %s lapsed; registering it again", registration.host)
                self._grant_and_put(registration)

"""Liveness: each connected agent's registration, on etcd leases this replica keeps alive.

While a replica holds a host's Sync stream it keeps ``live/{host}`` (a
:class:`~controller.store.LiveRecord`: replica, agent endpoint, since when)
on a lease with a TTL of ``--lease-ttl`` seconds, and keeps every such lease
alive on one ``LeaseKeepAlive`` call per round (a third of the TTL), whatever
the number of agents. Registrations are written in batches
(:mod:`controller.sync.registrar`): the registrations of one batch share its
lease, so a storm of them costs few grants, few transactions and few leases
to keep alive. When a stream ends its key is deleted (the lease revoked once
nothing live is left on it): the host is down at once. When the replica
dies, or loses etcd for longer than the TTL, the leases lapse and the hosts
are down within the TTL; an agent that redials any replica is registered
again. Only ``live/`` keys ever hang on a lease — desired state never does
(flannel #520, Cilium #9422).

A lease that etcd no longer knows (it lapsed while etcd or this replica was
away) is replaced on the next round: its registrations are put again on a
new one; so is a registration whose key went away while its stream is still
open: liveness follows the stream that is actually open.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from pyetcd import etcdrpc

from controller.etcd import EtcdClient, EtcdError
from controller.store import HostRecord, Keys, WriteHook
from controller.sync.registrar import Registrar, Registration

__all__ = ["Liveness", "Registration"]

_log = logging.getLogger("vrc.controller.liveness")


class Liveness:
    """Registers hosts (through the :class:`Registrar`) and keeps their leases alive
    (one thread)."""

    def __init__(self, etcd: EtcdClient, keys: Keys, *, ttl: float, replica: str,
                 hooks: Sequence[WriteHook] = ()) -> None:
        """``hooks``: the store's write hooks, run on the host records registrations
        write (the audit record)."""
        self.etcd = etcd
        self.keys = keys
        self.ttl = max(1, math.ceil(ttl))  # etcd's TTLs are whole seconds
        self.replica = replica
        self.registrar = Registrar(etcd, keys, ttl=self.ttl, replica=replica, hooks=hooks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.regrants = 0

    @property
    def interval(self) -> float:
        return self.ttl / 3

    # --- registrations ----------------------------------------------------------------

    def register(self, host: str, agent_endpoint: str,
                 report: HostRecord | None = None) -> Registration:
        """Put ``live/{host}`` on a lease, with ``report`` (the host record its hello
        described, written if it changed) in the same transaction; store errors
        (UNAVAILABLE) raise, and then nothing of it was kept."""
        registration = Registration(host, agent_endpoint, registered_at=time.time())
        self.registrar.register(registration, report)
        return registration

    def release(self, registration: Registration) -> None:
        """The stream ended: its key goes (best effort: what etcd cannot be told lapses)."""
        self.registrar.release(registration)

    def ensure(self, host: str) -> None:
        """The live key of ``host`` went away: put it again if a registration holds it."""
        self.registrar.put_again(self.registrar.holding(host))

    # --- the keeper thread ------------------------------------------------------------

    def start(self) -> None:
        self.registrar.start()
        self._thread = threading.Thread(target=self._run, name="vrc-liveness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl + 5)
            self._thread = None
        self.registrar.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.keep_alive_round()
            except EtcdError as error:
                _log.warning("lease keep-alive failed (retrying in %.1f s): %s",
                             self.interval, error)

    def keep_alive_round(self) -> None:
        """Refresh every lease a live registration is on; put again on a new lease the
        registrations of the ones etcd lost, and of the ones a release has failed on for
        a round (left to lapse with the key whose stream ended)."""
        held = {lease: regs for lease, regs in self.registrar.held().items() if regs}
        self.rounds += 1
        if not held:
            return
        given_up = self.registrar.failing(longer_than=self.interval) & set(held)
        kept = sorted(set(held) - given_up)
        answered = self._keep_alive(kept) if kept else {}
        lost = [lease for lease in held if lease in given_up or answered.get(lease, 0) <= 0]
        again = [r for lease in lost for r in held[lease]]
        if again:
            self.regrants += len(again)
            _log.warning("%d leases lapsed or given up; putting their %d registrations "
                         "again", len(lost), len(again))
            self.registrar.put_again(again)

    def _keep_alive(self, leases: list[int]) -> dict[int, int]:
        """One LeaseKeepAlive call for every lease: lease id -> the TTL etcd answered
        (0 or less: etcd no longer knows it)."""
        def send(client: Any) -> dict[int, int]:
            requests = [etcdrpc.LeaseKeepAliveRequest(ID=lease) for lease in leases]
            replies = etcdrpc.LeaseStub(client.channel).LeaseKeepAlive(
                iter(requests), timeout=self.etcd.config.timeout, metadata=client.metadata)
            return {int(reply.ID): int(reply.TTL) for reply in replies}

        return self.etcd.call(send, wait=0)

"""Writing status records to etcd, coalesced.

ACKs arrive per agent and per version; writing each would be one etcd put per
ACK (per item, in the naive design) under load. The writer keeps the newest
record of each host and writes whatever changed at most once per
``interval``, many hosts per transaction — so the write rate is bounded by
the interval, not by the ACK rate, and a burst of versions costs one write
per host. A failed write keeps the records for the next round (etcd may be
away; the ACKs are not lost, only late in etcd).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from controller.etcd import Backoff, EtcdClient, EtcdError, Txn
from controller.store import Keys
from controller.sync.status import StatusRecord, encode

_log = logging.getLogger("vrc.controller.status")

PUTS_PER_TXN = 64  # etcd allows 128 operations per transaction
INTERVAL = 0.1


class StatusWriter:
    def __init__(self, etcd: EtcdClient, keys: Keys, *, interval: float = INTERVAL,
                 wanted: Callable[[str], bool] = lambda host: True) -> None:
        """``wanted(host)``: whether the host still exists (a removed host's status is not
        written back)."""
        self.etcd = etcd
        self.keys = keys
        self.interval = interval
        self.wanted = wanted
        self._dirty: dict[str, StatusRecord] = {}
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.writes = 0  # transactions committed
        self.records = 0  # records written

    def put(self, record: StatusRecord) -> None:
        with self._ready:
            self._dirty[record.host] = record
            self._ready.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vrc-status", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        backoff = Backoff(initial=0.1, maximum=5.0)
        while True:
            with self._ready:
                while not self._dirty and not self._stopping:
                    self._ready.wait()
                if self._stopping and not self._dirty:
                    return
                batch, self._dirty = self._dirty, {}
                stopping = self._stopping
            try:
                self.flush(batch)
                backoff.reset()
            except EtcdError as error:
                _log.warning("writing %d status records failed: %s", len(batch), error)
                with self._ready:
                    for host, record in batch.items():
                        self._dirty.setdefault(host, record)  # a newer one wins
                if stopping:
                    return
                with self._ready:
                    self._ready.wait(backoff.next())
                continue
            if stopping:
                continue  # write what came in meanwhile, then end
            with self._ready:  # coalesce: at most one round per interval
                self._ready.wait_for(lambda: self._stopping, self.interval)

    def flush(self, batch: dict[str, StatusRecord]) -> None:
        records = [r for host, r in sorted(batch.items()) if self.wanted(host)]
        for start in range(0, len(records), PUTS_PER_TXN):
            txn = Txn()
            for record in records[start:start + PUTS_PER_TXN]:
                txn.put(self.keys.status(record.host), encode(record))
            self.etcd.txn(txn)
            self.writes += 1
            self.records += len(records[start:start + PUTS_PER_TXN])

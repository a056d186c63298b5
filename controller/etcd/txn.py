"""A small builder for etcd transactions with revision compares.

Every write of the store is one transaction: the compares say "each key I
read still has the revision I read" (0: it still does not exist), the success
branch holds the writes. A caller may add more writes to the same transaction
before it is sent (an audit record, say); :meth:`Txn.check_limits` keeps the
whole under etcd's limits (128 operations, 1.5 MiB per request by default).

Configuration keys are never attached to a lease: :meth:`Txn.put` takes a
lease only for liveness records, and the store never passes one.
"""

from __future__ import annotations

from typing import Any

from pyetcd import etcdrpc

from controller.etcd.errors import EtcdRequestTooLarge

MAX_TXN_OPS = 128  # etcd's --max-txn-ops default
MAX_REQUEST_BYTES = 1536 * 1024  # etcd's --max-request-bytes default (1.5 MiB)
REQUEST_HEADROOM = 4096  # grpc framing and the auth token ride in the same request


def to_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode()


def prefix_end(prefix: str | bytes) -> bytes:
    """The ``range_end`` that makes a range cover every key starting with ``prefix``."""
    raw = bytearray(to_bytes(prefix))
    for index in reversed(range(len(raw))):
        if raw[index] < 0xFF:
            raw[index] += 1
            return bytes(raw[: index + 1])
    return b"\0"  # all 0xff: to the end of the keyspace


class Txn:
    """Compares and writes, sent as one etcd ``Txn``; nothing happens until the client sends it."""

    __slots__ = ("_compares", "_failure", "_success")

    def __init__(self) -> None:
        self._compares: list[Any] = []
        self._success: list[Any] = []
        self._failure: list[Any] = []

    # -- compares ---------------------------------------------------------------------

    def require_revision(self, key: str | bytes, mod_revision: int) -> Txn:
        """``key`` was last modified at ``mod_revision``; 0 means it must not exist."""
        if mod_revision == 0:
            return self.require_absent(key)
        self._compares.append(etcdrpc.Compare(
            key=to_bytes(key), target=etcdrpc.Compare.MOD, result=etcdrpc.Compare.EQUAL,
            mod_revision=mod_revision))
        return self

    def require_absent(self, key: str | bytes) -> Txn:
        self._compares.append(etcdrpc.Compare(
            key=to_bytes(key), target=etcdrpc.Compare.CREATE, result=etcdrpc.Compare.EQUAL,
            create_revision=0))
        return self

    def require_unchanged_since(self, prefix: str | bytes, revision: int) -> Txn:
        """No key under ``prefix`` was created or modified after ``revision``.

        A compare over a range holds for every key in it (and for an empty
        range); deletions are not seen, which is what a caller wants when only
        new or changed keys could invalidate what it read.
        """
        self._compares.append(etcdrpc.Compare(
            key=to_bytes(prefix), range_end=prefix_end(prefix), target=etcdrpc.Compare.MOD,
            result=etcdrpc.Compare.LESS, mod_revision=revision + 1))
        return self

    # -- writes -----------------------------------------------------------------------

    def put(self, key: str | bytes, value: bytes, *, lease: int = 0) -> Txn:
        self._success.append(etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
            key=to_bytes(key), value=value, lease=lease)))
        return self

    def delete(self, key: str | bytes) -> Txn:
        self._success.append(etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(
            key=to_bytes(key))))
        return self

    def delete_prefix(self, prefix: str | bytes) -> Txn:
        self._success.append(etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(
            key=to_bytes(prefix), range_end=prefix_end(prefix))))
        return self

    def delete_range(self, start: str | bytes, end: str | bytes) -> Txn:
        """Delete every key in ``[start, end)``."""
        self._success.append(etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(
            key=to_bytes(start), range_end=to_bytes(end))))
        return self

    def extend(self, other: Txn) -> Txn:
        """Add ``other``'s compares and both its branches to this one (several writes
        planned apart, sent as one transaction)."""
        self._compares.extend(other._compares)
        self._success.extend(other._success)
        self._failure.extend(other._failure)
        return self

    def when(self, compares: Txn, then: Txn) -> Txn:
        """A nested transaction in the success branch: ``then``'s writes apply only if
        ``compares``' compares hold, whatever the other operations' do (etcd 3.3+)."""
        self._success.append(etcdrpc.RequestOp(request_txn=etcdrpc.TxnRequest(
            compare=compares._compares, success=then._success)))
        return self

    def read_on_failure(self, key: str | bytes, *, prefix: bool = False) -> Txn:
        """Read ``key`` (or the range) in the failure branch: why a compare failed, in one trip."""
        request = etcdrpc.RangeRequest(key=to_bytes(key))
        if prefix:
            request.range_end = prefix_end(key)
        self._failure.append(etcdrpc.RequestOp(request_range=request))
        return self

    # -- inspection -------------------------------------------------------------------

    @property
    def compares(self) -> int:
        return len(self._compares)

    @property
    def operations(self) -> int:
        return len(self._success)

    def written_keys(self) -> list[bytes]:
        """Keys the success branch puts or deletes (a delete of a range gives its start)."""
        keys: list[bytes] = []
        for op in self._success:
            kind = op.WhichOneof("request")
            if kind == "request_txn":  # a nested transaction: the keys its writes touch
                keys.extend(getattr(nested, nested.WhichOneof("request")).key
                            for nested in op.request_txn.success)
            else:
                keys.append(getattr(op, kind).key)
        return keys

    def writes(self) -> list[tuple[bytes, bytes | None, bool]]:
        """What the success branch writes: (key, the value put or None for a delete,
        whether a delete covers a range starting at key)."""
        found: list[tuple[bytes, bytes | None, bool]] = []
        for op in self._success:
            kind = op.WhichOneof("request")
            if kind == "request_put":
                found.append((bytes(op.request_put.key), bytes(op.request_put.value), False))
            elif kind == "request_delete_range":
                request = op.request_delete_range
                found.append((bytes(request.key), None, bool(request.range_end)))
        return found

    def request(self) -> Any:
        """The ``etcdserverpb.TxnRequest`` to send."""
        return etcdrpc.TxnRequest(compare=self._compares, success=self._success,
                                  failure=self._failure)

    def check_limits(self, max_ops: int = MAX_TXN_OPS,
                     max_bytes: int = MAX_REQUEST_BYTES) -> None:
        """EtcdRequestTooLarge unless etcd will accept this transaction as it is."""
        worst = max(len(self._compares), len(self._success), len(self._failure))
        if worst > max_ops:
            raise EtcdRequestTooLarge(
                f"transaction of {worst} operations is over etcd's limit of {max_ops}")
        size = self.request().ByteSize()
        if size > max_bytes - REQUEST_HEADROOM:
            raise EtcdRequestTooLarge(
                f"transaction of {size} bytes is over etcd's request limit of {max_bytes}")

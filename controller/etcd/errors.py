"""What can go wrong talking to etcd, in words the store and the API can act on."""

from __future__ import annotations


class EtcdError(Exception):
    """Base of every error the etcd layer raises."""


class EtcdUnavailable(EtcdError):
    """etcd cannot be reached, has no leader, or did not answer in time: retry later."""


class EtcdCompacted(EtcdError):
    """A read or watch asked for a revision etcd has compacted away."""

    def __init__(self, revision: int, compact_revision: int = 0) -> None:
        self.revision = revision
        self.compact_revision = compact_revision
        at = f" (compacted up to {compact_revision})" if compact_revision else ""
        super().__init__(f"etcd revision {revision} has been compacted{at}")


class EtcdRequestTooLarge(EtcdError):
    """A transaction over etcd's limits (operations per transaction, bytes per request)."""


class EtcdRefused(EtcdError):
    """etcd answered with an error that retrying will not fix (permission, bad request)."""

    def __init__(self, code: str, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(f"etcd refused the request: {code}: {details}")

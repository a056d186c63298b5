"""Why the store (or validation before it) refused a request.

One exception type per outcome a client can act on; :mod:`controller.errors`
maps each to its gRPC status in one table. Every message names the field and
the value (echoed bounded and ASCII-escaped, so a 7 kB or non-ASCII value
cannot swell or break the status), and nothing was written when one is raised.
"""

from __future__ import annotations

from typing import ClassVar

ECHO_LIMIT = 64  # characters of a bad value echoed in a message


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """``value`` for a message: ASCII (non-ASCII escaped), cut to ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in escaped)
    if len(escaped) > limit:
        return f"{escaped[:limit]}... ({len(text)} characters)"
    return escaped


class StoreError(Exception):
    """A refusal; ``field`` and ``value`` name the input it is about (empty: none)."""

    reason: ClassVar[str] = "error"

    def __init__(self, field: str, value: object, detail: str, *, revision: int | None = None
                 ) -> None:
        self.field = field
        self.value = value
        self.detail = detail
        self.revision = revision  # ABORTED: the record's current revision
        super().__init__(self.text())

    def shown_value(self) -> str:
        return shown(self.value) if self.value not in (None, "") else ""

    def text(self) -> str:
        if not self.field:
            return self.detail
        value = self.shown_value()
        named = f"{self.field} '{value}'" if value else self.field
        return f"{named}: {self.detail}"


class InvalidArgument(StoreError):
    reason = "invalid-argument"


class NotFound(StoreError):
    reason = "not-found"


class AlreadyExists(StoreError):
    reason = "already-exists"


class FailedPrecondition(StoreError):
    reason = "failed-precondition"


class Aborted(StoreError):
    """A stale ``expected_revision`` (``revision`` is the current one), or too many lost races."""

    reason = "aborted"


class ResourceExhausted(StoreError):
    reason = "resource-exhausted"


class OutOfRange(StoreError):
    """A watch from a revision etcd has compacted."""

    reason = "out-of-range"


class Unavailable(StoreError):
    """etcd is unreachable: retry."""

    reason = "unavailable"


class PermissionDenied(StoreError):
    """The caller's identity may not do this (the message names it and the method)."""

    reason = "permission-denied"


class Corrupt(StoreError):
    """A record in etcd that is not what vrc writes (edited by hand?)."""

    reason = "corrupt"

"""One error type for the whole engine, speaking the seeds' errno vocabulary.

API calls (the ioctl equivalents) either return a result or raise
:class:`RouterError`. Packets never raise: drops are counted with a reason.
The gRPC edge maps ``RouterError.errno`` to a status code in one place.
"""

from __future__ import annotations

import errno as _errno

# The BSD kernels use EJUSTRETURN (-2) for "handled, stop here, not an error":
# a filter that took a packet, a pre-output that is holding one for ARP.
EJUSTRETURN = -2

EPERM = _errno.EPERM
ENXIO = _errno.ENXIO
EBUSY = _errno.EBUSY
EEXIST = _errno.EEXIST
ENODEV = _errno.ENODEV
EINVAL = _errno.EINVAL
ENOBUFS = _errno.ENOBUFS
EISCONN = _errno.EISCONN
ENETDOWN = _errno.ENETDOWN
ENETUNREACH = _errno.ENETUNREACH
EHOSTDOWN = _errno.EHOSTDOWN
EHOSTUNREACH = _errno.EHOSTUNREACH
EADDRNOTAVAIL = _errno.EADDRNOTAVAIL
EADDRINUSE = _errno.EADDRINUSE
EAFNOSUPPORT = _errno.EAFNOSUPPORT
EPFNOSUPPORT = _errno.EPFNOSUPPORT
EPROTONOSUPPORT = _errno.EPROTONOSUPPORT
EOPNOTSUPP = _errno.EOPNOTSUPP
ENOTSUP = getattr(_errno, "ENOTSUP", _errno.EOPNOTSUPP)
EDESTADDRREQ = _errno.EDESTADDRREQ
ESRCH = _errno.ESRCH
EMSGSIZE = _errno.EMSGSIZE
ENOENT = _errno.ENOENT

_NAMES: dict[int, str] = {EJUSTRETURN: "EJUSTRETURN"}
_NAMES.update({code: name for code, name in _errno.errorcode.items()})
# Linux aliases ENOTSUP to EOPNOTSUPP; the seeds say EOPNOTSUPP.
_NAMES[EOPNOTSUPP] = "EOPNOTSUPP"

_REASONS: dict[int, str] = {
    EJUSTRETURN: "handled",
    EPERM: "not permitted",
    ENXIO: "no such interface or not attached",
    EBUSY: "busy",
    EEXIST: "already exists",
    ENODEV: "no family module for the interface",
    EINVAL: "invalid argument",
    ENOBUFS: "no buffer space (table full)",
    EISCONN: "already connected",
    ENETDOWN: "network is down",
    ENETUNREACH: "network is unreachable",
    EHOSTUNREACH: "host is unreachable",
    EHOSTDOWN: "host is down",
    EADDRNOTAVAIL: "address not available",
    EADDRINUSE: "address already in use",
    EAFNOSUPPORT: "address family not supported",
    EPFNOSUPPORT: "protocol family not supported",
    EPROTONOSUPPORT: "protocol not supported",
    EOPNOTSUPP: "operation not supported",
    EDESTADDRREQ: "destination address required",
    ESRCH: "no such entry",
    EMSGSIZE: "message too long",
    ENOENT: "no such entry",
}


def errno_name(code: int) -> str:
    """Symbolic name of an errno value, e.g. ``EEXIST``."""
    return _NAMES.get(code, f"E{code}")


def errno_reason(code: int) -> str:
    """Short human reason for an errno value."""
    return _REASONS.get(code, errno_name(code))


class RouterError(Exception):
    """An engine call failed with ``errno``.

    ``field`` names the input that was wrong (``"address"``, ``"mask"``,
    ``"interface"``, …) and ``value`` is what was given, so the API edge can
    tell the user exactly what to fix. ``subject`` says what was being done,
    e.g. ``"alias 10.0.0.1/24 on eth1"``.
    """

    __slots__ = ("errno", "field", "subject", "value")

    def __init__(
        self,
        errno: int,
        field: str = "",
        value: object = None,
        subject: str = "",
        detail: str = "",
    ) -> None:
        self.errno = errno
        self.field = field
        self.value = value
        self.subject = subject
        reason = detail or errno_reason(errno)
        head = subject or (f"{field} {value}" if field else "")
        text = f"{head}: {reason} ({errno_name(errno)})" if head else (
            f"{reason} ({errno_name(errno)})"
        )
        if field and subject:
            text += f" [field {field}={value}]"
        super().__init__(text)

    @property
    def name(self) -> str:
        return errno_name(self.errno)


def fail(errno: int, field: str = "", value: object = None, subject: str = "",
         detail: str = "") -> RouterError:
    """Build a :class:`RouterError`; ``raise fail(EEXIST, "address", a)`` reads well."""
    return RouterError(errno, field, value, subject, detail)

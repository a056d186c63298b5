"""Engine errors at the gRPC edge: the one place errno becomes a status code.

The engine raises :class:`router.errors.RouterError` with an errno, the field
and the value (DESIGN.md section 5). Every handler of the Agent servicer is
wrapped by :func:`grpc_errors`, which turns such an error into an aborted call
whose status code comes from :data:`STATUS_BY_ERRNO` and whose message is the
error's own text (it names the field and the value). The errno name, field and
value also travel as trailing metadata (``vrc-errno``, ``vrc-field``,
``vrc-value``) so programs need not parse the message.

Request validation at the edge raises the same ``RouterError(EINVAL, field,
value)``, so a bad IP string and an engine refusal take the same path.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from errno import ENOSPC
from typing import Any, NoReturn, TypeVar

import grpc

from router.errors import (
    EADDRINUSE,
    EADDRNOTAVAIL,
    EBUSY,
    EDESTADDRREQ,
    EEXIST,
    EINVAL,
    EISCONN,
    ENETDOWN,
    ENETUNREACH,
    ENOBUFS,
    ENOENT,
    ENXIO,
    EOPNOTSUPP,
    EPERM,
    EPFNOSUPPORT,
    EPROTONOSUPPORT,
    ESRCH,
    RouterError,
)

STATUS_BY_ERRNO: dict[int, grpc.StatusCode] = {
    EINVAL: grpc.StatusCode.INVALID_ARGUMENT,
    EDESTADDRREQ: grpc.StatusCode.INVALID_ARGUMENT,
    EEXIST: grpc.StatusCode.ALREADY_EXISTS,
    EISCONN: grpc.StatusCode.ALREADY_EXISTS,
    EADDRNOTAVAIL: grpc.StatusCode.NOT_FOUND,
    ENXIO: grpc.StatusCode.NOT_FOUND,
    ESRCH: grpc.StatusCode.NOT_FOUND,
    EBUSY: grpc.StatusCode.FAILED_PRECONDITION,
    EPROTONOSUPPORT: grpc.StatusCode.UNIMPLEMENTED,
    EPFNOSUPPORT: grpc.StatusCode.UNIMPLEMENTED,
    EOPNOTSUPP: grpc.StatusCode.UNIMPLEMENTED,
    ENETDOWN: grpc.StatusCode.UNAVAILABLE,
    # Beyond DESIGN.md's list: a static route whose gateway no connected
    # network reaches is the caller's state to fix, not an unknown failure.
    ENETUNREACH: grpc.StatusCode.FAILED_PRECONDITION,
    # Refusals the engine raises that DESIGN.md 5 does not list: deleting the
    # ARP entry of our own address (EPERM: delete the address instead), a full
    # table or unit space, a missing entry.
    EPERM: grpc.StatusCode.FAILED_PRECONDITION,
    EADDRINUSE: grpc.StatusCode.ALREADY_EXISTS,
    ENOENT: grpc.StatusCode.NOT_FOUND,
    ENOBUFS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ENOSPC: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

ERRNO_KEY = "vrc-errno"
FIELD_KEY = "vrc-field"
VALUE_KEY = "vrc-value"

F = TypeVar("F", bound=Callable[..., Any])


def status_for(errno: int) -> grpc.StatusCode:
    """The status code of an engine errno; UNKNOWN for errno values not listed."""
    return STATUS_BY_ERRNO.get(errno, grpc.StatusCode.UNKNOWN)


# The engine names some inputs by its own words; the API's request fields
# are what a client can fix, so trailers and messages use those.
API_FIELD_NAMES = {
    "lladdr": "mac",
    "addr": "address",
    "dest": "destination",
    "point_to_point": "mode",
}


def api_field(field: str) -> str:
    """The request field an engine field name stands for (``lladdr`` → ``mac``)."""
    return API_FIELD_NAMES.get(field, field)


def _given(value: object) -> bool:
    return value is not None and value != ""


def message_of(error: RouterError) -> str:
    """The error as one line for a person: what was done, why it failed, which input.

    The engine's text ends in ``[field F=V]`` when its subject already says
    what was being done. That tail is dropped where the subject shows the
    value already, says "not given" where the value is empty (instead of
    ``=None``), and otherwise names the API field and the value.
    """
    text = str(error)
    field = api_field(error.field)
    if not error.subject:
        head = f"{error.field} {error.value}"
        if not (error.field and text.startswith(f"{head}:")):
            return text
        named = f"{field} {error.value}" if _given(error.value) else field
        return named + text[len(head):]
    tail = f" [field {error.field}={error.value}]"
    if not (error.field and text.endswith(tail)):
        return text
    head = text[: -len(tail)]
    if not _given(error.value):
        return f"{head} [{field} not given]"
    if isinstance(error.value, bool) or str(error.value) in error.subject:
        return head  # the subject says it already (a bool says nothing more)
    return f"{head} [{field} {error.value}]"


def abort(context: grpc.ServicerContext, error: RouterError) -> NoReturn:
    """End the call with the status of ``error``, its text and its errno/field/value."""
    context.set_trailing_metadata((
        (ERRNO_KEY, error.name),
        (FIELD_KEY, api_field(error.field)),
        (VALUE_KEY, str(error.value) if _given(error.value) else ""),
    ))
    context.abort(status_for(error.errno), message_of(error))
    raise AssertionError("grpc's abort returned")  # it raises; this keeps the type honest


def grpc_errors(handler: F) -> F:
    """Wrap a servicer method (unary or streaming) so RouterError aborts the call.

    Streaming handlers are generators: the error can surface at any ``next``,
    so the wrapper re-yields inside the ``try``.
    """
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from handler(self, request, context)
            except RouterError as error:
                abort(context, error)

        return stream  # type: ignore[return-value]

    @functools.wraps(handler)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler(self, request, context)
        except RouterError as error:
            abort(context, error)

    return unary  # type: ignore[return-value]


def map_errors_of(cls: type) -> type:
    """Class decorator: :func:`grpc_errors` on every RPC method ``cls`` defines.

    RPC methods are recognised by their CamelCase names, as grpc's generated
    servicer base declares them.
    """
    for name, member in list(vars(cls).items()):
        if callable(member) and name[:1].isupper():
            setattr(cls, name, grpc_errors(member))
    return cls


def invalid(field: str, value: object, why: str, subject: str = "") -> RouterError:
    """A request that fails validation at the edge: INVALID_ARGUMENT naming ``field``.

    An empty ``value`` reads ``field: why`` (``ifname: is required``) rather
    than ``field : why``; ``subject`` says what the request was for.
    """
    return RouterError(EINVAL, field, value, subject=subject, detail=why)

"""Store and validation errors at the gRPC edge: the one place they become a status.

Every Controller RPC is wrapped by :func:`map_errors_of`: a
:class:`~controller.store.errors.StoreError` aborts the call with the status
from :data:`STATUS_BY_REASON` and the error's text (it names the field and the
value). Trailing metadata carries the same for programs: ``vrc-reason``
(``not-found``...), ``vrc-field``, ``vrc-value`` (bounded, ASCII-escaped: always
valid header text) and, for ABORTED, ``vrc-revision`` (the record's current
revision).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc

from controller.store.errors import (
    Aborted,
    AlreadyExists,
    Corrupt,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    StoreError,
    Unavailable,
)

STATUS_BY_REASON: dict[type[StoreError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Corrupt: grpc.StatusCode.DATA_LOSS,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}

REASON_KEY = "vrc-reason"
FIELD_KEY = "vrc-field"
VALUE_KEY = "vrc-value"
REVISION_KEY = "vrc-revision"

F = TypeVar("F", bound=Callable[..., Any])
_log = logging.getLogger("vrc.controller.api")


def status_for(error: StoreError) -> grpc.StatusCode:
    return STATUS_BY_REASON.get(type(error), grpc.StatusCode.UNKNOWN)


def abort(context: grpc.ServicerContext, error: StoreError) -> NoReturn:
    """End the call with the status of ``error``, its text and its trailers."""
    trailers = [(REASON_KEY, error.reason), (FIELD_KEY, error.field),
                (VALUE_KEY, error.shown_value())]
    if error.revision is not None:
        trailers.append((REVISION_KEY, str(error.revision)))
    context.set_trailing_metadata(tuple(trailers))
    if isinstance(error, Corrupt):
        _log.error("corrupt record in etcd: %s", error)
    context.abort(status_for(error), str(error))
    raise AssertionError("grpc's abort returned")  # it raises; this keeps the type honest


def grpc_errors(handler: F) -> F:
    """Wrap a servicer method (unary or server streaming) so StoreError aborts the call."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from handler(self, request, context)
            except StoreError as error:
                abort(context, error)

        return stream  # type: ignore[return-value]

    @functools.wraps(handler)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler(self, request, context)
        except StoreError as error:
            abort(context, error)

    return unary  # type: ignore[return-value]


def map_errors_of(cls: type) -> type:
    """Class decorator: :func:`grpc_errors` on every RPC method (CamelCase) ``cls`` defines."""
    for name, member in list(vars(cls).items()):
        if callable(member) and name[:1].isupper():
            setattr(cls, name, grpc_errors(member))
    return cls

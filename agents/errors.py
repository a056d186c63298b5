"""Engine errors at the gRPC edge: the one place errno becomes a status code.

The engine raises :class:`router.errors.RouterError` with an errno, the field
and the value (DESIGN.md section 5). Every handler of the Agent servicer is
wrapped by :func:`grpc_errors`, which turns such an error into an aborted call
whose status code comes from :data:`STATUS_BY_ERRNO` and whose message is the
error's own text (it names the field and the value). The errno name, field and
value also travel as trailing metadata (``vrc-errno``, ``vrc-field``,
``vrc-value``) so programs need not parse the message.

What a client sent is echoed with care (:func:`echo_text`, :func:`trailers_of`):

* metadata values must be printable ASCII, so ``vrc-field`` and
  ``vrc-value`` are percent-encoded UTF-8 (every byte outside ``!``..``~``
  and ``%`` itself as ``%XX``, the escaping grpc uses for ``grpc-message``;
  ``urllib.parse.unquote`` decodes it). ASCII values without spaces read as
  they are: ``10.0.0.256/24``, ``eth0``; ``é`` is ``%C3%A9``.
* values are cut at :data:`MAX_ECHO` characters, in the trailers (then
  ``vrc-value-length`` carries the length of the whole value) and in the
  message (``xxxx… (7000 characters, cut)``), and the message as a whole at
  :data:`MAX_MESSAGE`: a huge value can never make the status itself too big
  to send (grpc's 8 KiB header limit turned such an error into
  RESOURCE_EXHAUSTED).
* control characters in the message are shown escaped (``\\n``, ``\\x00``),
  so an error stays one line in a log or on a terminal.

Request validation at the edge raises the same ``RouterError(EINVAL, field,
value)``, so a bad IP string and an engine refusal take the same path.
"""

from __future__ import annotations

import functools
import inspect
import string
import urllib.parse
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
VALUE_LENGTH_KEY = "vrc-value-length"
MAX_ECHO = 128  # characters of a client's value echoed in messages and trailers
MAX_MESSAGE = 1024  # characters of a status message
# printable ASCII but space and '%': left as they are in a trailer value
_TRAILER_SAFE = "".join(c for c in string.printable if "!" <= c <= "~" and c != "%")

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


def cut(text: str, limit: int = MAX_ECHO) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters, cut)"


def _shown(char: str) -> str:
    """A control character as its escape (``\\n``, ``\\x1b``), anything else as itself."""
    if char.isprintable() or char == " ":
        return char
    return char.encode("unicode_escape").decode("ascii")


def echo_text(text: str, value: str = "") -> str:
    """A message fit to send and to print: long values cut, controls escaped, bounded.

    ``value`` (the error's value) is cut wherever the message shows it; any
    other run without spaces longer than :data:`MAX_ECHO` (another input the
    engine's text quotes) is cut too.
    """
    if len(value) > MAX_ECHO:
        text = text.replace(value, cut(value))
    shown = "".join(_shown(c) for c in text) if not text.isprintable() else text
    words = [cut(word) for word in shown.split(" ")]
    return cut(" ".join(words), MAX_MESSAGE - 40)


def trailer_text(text: str) -> str:
    """Percent-encoded UTF-8: printable ASCII but space and ``%`` stay as they are."""
    return urllib.parse.quote(text, safe=_TRAILER_SAFE)


def trailers_of(error: RouterError) -> tuple[tuple[str, str], ...]:
    """``vrc-errno``, ``vrc-field``, ``vrc-value`` (and ``vrc-value-length`` when cut)."""
    value = str(error.value) if _given(error.value) else ""
    pairs = [
        (ERRNO_KEY, error.name),
        (FIELD_KEY, trailer_text(api_field(error.field))),
        (VALUE_KEY, trailer_text(value[:MAX_ECHO])),
    ]
    if len(value) > MAX_ECHO:
        pairs.append((VALUE_LENGTH_KEY, str(len(value))))
    return tuple(pairs)


def abort(context: grpc.ServicerContext, error: RouterError) -> NoReturn:
    """End the call with the status of ``error``, its text and its errno/field/value."""
    context.set_trailing_metadata(trailers_of(error))
    value = str(error.value) if _given(error.value) else ""
    context.abort(status_for(error.errno), echo_text(message_of(error), value))
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

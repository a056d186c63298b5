"""Who is calling and what they may do: peer identities, roles, the authorization interceptor.

**Identity of a peer** (:func:`peer_identity`):

* over TLS with a client certificate: the certificate's vrc SPIFFE ID
  (``spiffe://vrc/admin/alice``; grpc reports it as ``peer_spiffe_id``),
  else its first URI SAN, else ``cn:`` and its common name;
* over a Unix socket: ``local``. The socket is mode 0600, so only the
  daemon's own user (root, for the daemons as installed) can connect; grpc
  does not hand SO_PEERCRED to Python, and the file mode is the stronger
  check anyway (it is enforced by the kernel before a byte is exchanged);
* over plaintext TCP (a daemon without TLS: loopback, or ``--insecure``):
  ``peer:ADDRESS``; over TLS without a client certificate
  (``--tls-no-client-auth``): ``anonymous:ADDRESS``.

**Roles**: ``admin`` may call everything; ``reader`` may call the List, Get
and Watch methods; ``agent`` may only ``Sync`` (on the controller, as the host
its certificate names: :mod:`controller.access`); ``none`` may call nothing
but health and reflection. ``local``, plaintext and anonymous peers are
admins: a daemon without client certificates has nothing to authorize on,
and the access rule (:mod:`serving.server`) keeps such listeners local or
explicitly insecure. Who holds which role otherwise is the resolver's
business: the agent takes the role its certificate names
(:func:`certificate_roles`), the controller looks in etcd first.

**Enforcement**: :class:`Authorization` is a server interceptor. grpc's
interceptors do not see the peer, so it wraps each method's handler: the
wrapper reads the peer's identity from the call's auth context, resolves its
role, refuses with PERMISSION_DENIED naming the identity and the method (and
trailers ``vrc-reason``, ``vrc-identity``, ``vrc-method``), takes a token
from the caller's write budget for writes (RESOURCE_EXHAUSTED with
``vrc-retry-after`` when it is empty), and runs the method with the identity
in :func:`current_identity` — the audit trail and the stream budgets read it
there. A stream is re-authorized at most every ``recheck`` seconds as it
sends, so a revoked identity's open stream ends too. Which methods read,
write or sync is a table built from the service descriptor
(:func:`method_table`): a method not named as a read is a write, so a new
RPC is admin-only until someone decides otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from serving.limits import WriteLimiter
from serving.pki import CertRole, parse_spiffe_id
from serving.server import client_of

LOCAL = "local"
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                 "/grpc.reflection.v1.ServerReflection/")
REASON_KEY = "vrc-reason"
IDENTITY_KEY = "vrc-identity"
METHOD_KEY = "vrc-method"
RETRY_KEY = "vrc-retry-after"
RECHECK_SECONDS = 10.0


class Transport(enum.Enum):
    UNIX = "unix"  # a Unix socket: the file mode authenticated the peer
    TLS = "tls"  # mutual TLS: a verified client certificate
    ANONYMOUS_TLS = "anonymous-tls"  # TLS without a client certificate
    PLAINTEXT = "plaintext"  # TCP without TLS (loopback, or --insecure)


class Role(enum.Enum):
    ADMIN = "admin"
    READER = "reader"
    AGENT = "agent"
    NONE = "none"


class Access(enum.Enum):
    """What a method does, for authorization."""

    OPEN = "open"  # health, reflection
    READ = "read"
    WRITE = "write"
    SYNC = "sync"  # the agent's Sync stream


ALLOWED: dict[Access, frozenset[Role]] = {
    Access.OPEN: frozenset(Role),
    Access.READ: frozenset({Role.ADMIN, Role.READER}),
    Access.WRITE: frozenset({Role.ADMIN}),
    Access.SYNC: frozenset({Role.ADMIN, Role.AGENT}),
}
NEEDS = {Access.READ: "the reader or admin role", Access.WRITE: "the admin role",
         Access.SYNC: "an agent certificate (or the admin role)"}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a peer is: ``name`` is what grants, history and budgets are keyed by."""

    name: str
    transport: Transport

    @property
    def trusted_by_transport(self) -> bool:
        """No client certificate to judge: the listener's own rule let it in (admin)."""
        return self.transport is not Transport.TLS

    @property
    def local(self) -> bool:
        return self.transport is Transport.UNIX

    @property
    def certificate(self) -> tuple[CertRole, str] | None:
        """(role, name) of a vrc SPIFFE ID presented over TLS; None otherwise."""
        return parse_spiffe_id(self.name) if self.transport is Transport.TLS else None


@dataclass(frozen=True, slots=True)
class Grant:
    """The role an identity has now, and why (for messages and ``vrc whoami``)."""

    role: Role
    source: str


class AuthUnavailable(Exception):
    """The role could not be resolved (the store is unreachable): UNAVAILABLE, retry."""


def _first(auth: Mapping[str, Any], key: str) -> str | None:
    """The first value of an auth-context property (grpc gives a list of bytes)."""
    values = auth.get(key) or []
    if isinstance(values, bytes):
        values = [values]
    return bytes(values[0]).decode("utf-8", "replace") if values else None


def peer_identity(context: grpc.ServicerContext) -> Identity:
    """The identity of the call's peer (module docstring)."""
    peer = context.peer() or ""
    auth = context.auth_context() or {}
    if _first(auth, "transport_security_type") == "ssl":
        name = (_first(auth, "peer_spiffe_id") or _first(auth, "peer_uri")
                or (f"cn:{cn}" if (cn := _first(auth, "x509_common_name")) else None))
        if name is not None:
            return Identity(name, Transport.TLS)
        return Identity(f"anonymous:{client_of(peer)}", Transport.ANONYMOUS_TLS)
    if peer.startswith("unix"):
        return Identity(LOCAL, Transport.UNIX)
    return Identity(f"peer:{client_of(peer)}", Transport.PLAINTEXT)


def transport_grant(identity: Identity) -> Grant | None:
    """Admin for peers the listener alone let in; None for certificate holders."""
    if identity.transport is Transport.UNIX:
        return Grant(Role.ADMIN, "unix socket (mode 0600)")
    if identity.transport is Transport.PLAINTEXT:
        return Grant(Role.ADMIN, "no TLS on this listener")
    if identity.transport is Transport.ANONYMOUS_TLS:
        return Grant(Role.ADMIN, "--tls-no-client-auth")
    return None


CERTIFICATE_ROLES = {CertRole.ADMIN: Role.ADMIN, CertRole.READER: Role.READER,
                     CertRole.AGENT: Role.AGENT}


def certificate_grant(identity: Identity) -> Grant:
    """The role the certificate's SPIFFE path names (a controller's: none)."""
    cert = identity.certificate
    role = CERTIFICATE_ROLES.get(cert[0], Role.NONE) if cert else Role.NONE
    return Grant(role, "certificate")


def certificate_roles(identity: Identity) -> Grant:
    """The agent's rule (it has no etcd): the transport's, else the certificate's."""
    return transport_grant(identity) or certificate_grant(identity)


Resolver = Callable[[Identity], Grant]

_current: contextvars.ContextVar[tuple[Identity, Grant] | None] = contextvars.ContextVar(
    "vrc_identity", default=None)


def current_identity() -> Identity | None:
    """The identity of the call this thread serves (None outside an authorized call)."""
    found = _current.get()
    return found[0] if found else None


def current_grant() -> Grant | None:
    found = _current.get()
    return found[1] if found else None


@contextlib.contextmanager
def acting_as(identity: Identity, grant: Grant) -> Iterator[None]:
    """Run a block as ``identity`` (what the interceptor does around a call): for work
    a daemon does on someone's behalf outside a call, and for tests."""
    token = _current.set((identity, grant))
    try:
        yield
    finally:
        _restore(token)


def method_table(service: Any, *, reads: Collection[str], syncs: Collection[str] = (),
                 opens: Collection[str] = ()) -> dict[str, Access]:
    """``/pkg.Service/Method`` → Access for every method of ``service`` (a protobuf
    ServiceDescriptor): the ones named in ``reads`` read, in ``syncs`` sync, in
    ``opens`` are open to every caller, every other one writes. A name that is not a
    method of the service is a ValueError (a typo would otherwise silently make a read
    a write, or the reverse)."""
    names = {method.name for method in service.methods}
    unknown = (set(reads) | set(syncs) | set(opens)) - names
    if unknown:
        raise ValueError(f"{service.full_name} has no method {', '.join(sorted(unknown))}")
    table = {}
    for method in service.methods:
        access = (Access.READ if method.name in reads
                  else Access.SYNC if method.name in syncs
                  else Access.OPEN if method.name in opens else Access.WRITE)
        table[f"/{service.full_name}/{method.name}"] = access
    return table


def short_method(method: str) -> str:
    """``/vrc.v1.Controller/PutAlias`` → ``vrc.v1.Controller/PutAlias``."""
    return method.lstrip("/")


def denial_text(identity: Identity, grant: Grant, method: str, access: Access) -> str:
    return (f"{identity.name} (role {grant.role.value}, from {grant.source}) may not call "
            f"{short_method(method)}: it {'reads' if access is Access.READ else access.value + 's'}"
            f", which needs {NEEDS.get(access, 'nothing')}")


def deny(context: grpc.ServicerContext, identity: Identity, method: str, text: str) -> None:
    """End the call with PERMISSION_DENIED and the trailers that name who and what."""
    context.set_trailing_metadata(((REASON_KEY, "permission-denied"),
                                   (IDENTITY_KEY, _header(identity.name)),
                                   (METHOD_KEY, short_method(method))))
    context.abort(grpc.StatusCode.PERMISSION_DENIED, text)


def _header(text: str) -> str:
    """Any identity as valid header text (printable ASCII, bounded)."""
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if c.isprintable() else "?" for c in escaped)[:256]


class Authorization(grpc.ServerInterceptor):
    """The interceptor of the module docstring, for one daemon's services."""

    def __init__(self, methods: Mapping[str, Access], resolve: Resolver, *,
                 limiter: WriteLimiter | None = None, recheck: float = RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 on_denied: Callable[[str, str], None] | None = None) -> None:
        self.methods = dict(methods)
        self.resolve = resolve
        self.limiter = limiter
        self.recheck = recheck
        self.clock = clock
        self.on_denied = on_denied

    def intercept_service(self, continuation: Callable[[Any], Any],
                          handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        # A method missing from the table (a service registered without one) writes.
        access = self.methods.get(method, Access.WRITE)
        return _wrap(handler, _Call(self, method, access))

    def admit(self, context: grpc.ServicerContext, method: str,
              access: Access) -> tuple[Identity, Grant]:
        """Resolve and check the caller; aborts the call when it may not go on."""
        identity = peer_identity(context)
        grant = self._grant(context, identity)
        if grant.role not in ALLOWED[access]:
            self._denied(identity, method)
            deny(context, identity, method, denial_text(identity, grant, method, access))
        if access is Access.WRITE and self.limiter is not None and not identity.local:
            wait = self.limiter.take(identity.name)
            if wait > 0:
                context.set_trailing_metadata(((REASON_KEY, "resource-exhausted"),
                                               (IDENTITY_KEY, _header(identity.name)),
                                               (RETRY_KEY, f"{wait:.3f}")))
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{identity.name}: {self.limiter.describe()} reached; retry in "
                              f"{wait:.2f} s")
        return identity, grant

    def still_allowed(self, context: grpc.ServicerContext, identity: Identity, method: str,
                      access: Access) -> None:
        """Re-resolve an open stream's caller; PERMISSION_DENIED once it lost the right."""
        grant = self._grant(context, identity)
        if grant.role not in ALLOWED[access]:
            self._denied(identity, method)
            deny(context, identity, method,
                 denial_text(identity, grant, method, access) + " (access changed while the "
                 "stream was open)")

    def _grant(self, context: grpc.ServicerContext, identity: Identity) -> Grant:
        try:
            return self.resolve(identity)
        except AuthUnavailable as error:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot check access: {error}")
            raise AssertionError("grpc's abort returned") from None

    def _denied(self, identity: Identity, method: str) -> None:
        if self.on_denied is not None:
            self.on_denied(identity.name, short_method(method))


@dataclass(slots=True)
class _Call:
    auth: Authorization
    method: str
    access: Access

    def admit(self, context: grpc.ServicerContext) -> contextvars.Token[Any]:
        identity, grant = self.auth.admit(context, self.method, self.access)
        return _current.set((identity, grant))

    def stream(self, responses: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        """Pass ``responses`` on, re-authorizing at most every ``recheck`` seconds."""
        auth = self.auth
        found = _current.get()
        assert found is not None
        checked = auth.clock()
        for response in responses:
            yield response
            now = auth.clock()
            if now - checked >= auth.recheck:
                auth.still_allowed(context, found[0], self.method, self.access)
                checked = now


def _restore(token: contextvars.Token[Any]) -> None:
    """Undo :meth:`_Call.admit`; a stream closed from another context (grpc cancelling it,
    the garbage collector) cannot reset the token there and need not."""
    try:
        _current.reset(token)
    except ValueError:
        _current.set(None)


def _wrap(handler: Any, call: _Call) -> Any:
    """The same handler with :meth:`_Call.admit` first and the identity set while it runs."""
    options = {"request_deserializer": handler.request_deserializer,
               "response_serializer": handler.response_serializer}
    if not handler.request_streaming and not handler.response_streaming:
        inner = handler.unary_unary

        def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
            token = call.admit(context)
            try:
                return inner(request, context)
            finally:
                _restore(token)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **options)
    if not handler.request_streaming:
        inner = handler.unary_stream

        def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            token = call.admit(context)
            try:
                yield from call.stream(inner(request, context), context)
            finally:
                _restore(token)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **options)
    if not handler.response_streaming:
        inner = handler.stream_unary

        def stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            token = call.admit(context)
            try:
                return inner(requests, context)
            finally:
                _restore(token)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **options)
    inner = handler.stream_stream

    def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        token = call.admit(context)
        try:
            yield from call.stream(inner(requests, context), context)
        finally:
            _restore(token)

    return grpc.stream_stream_rpc_method_handler(stream_stream, **options)

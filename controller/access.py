"""Who may do what on the controller: roles from etcd, the bootstrap admins, Sync's host rule.

A caller's role (:meth:`AccessControl.resolve`), first match wins:

1. a peer the listener alone let in — a Unix-socket peer (``local``), a
   plaintext one (no TLS configured), an anonymous TLS one
   (``--tls-no-client-auth``) — is an admin (:func:`serving.auth.transport_grant`);
2. an identity named by ``--bootstrap-admin`` is an admin (the way in for the
   first admin; not changeable through the API, so nobody can lock it out);
3. its record ``access/{identity}`` in etcd, if it has one: ``admin``,
   ``reader`` or ``none`` (denied) — ``vrc access grant|revoke``;
4. else the role its certificate's SPIFFE ID names (``spiffe://vrc/admin/…``,
   ``reader/…``, ``agent/…``); any other certificate has none.

Revoking (:meth:`AccessControl.revoke`) removes the record; for an identity
whose certificate names a role it writes ``none`` instead, so the
certificate's role no longer applies. The role is resolved at every call (one
etcd read), so a grant or revoke applies to the next call, and open streams
are re-checked as they send (:class:`serving.auth.Authorization`).

Sync: the interceptor lets agents (and admins) open the stream; the Sync
servicer calls :func:`authorize_sync` with the host id of the agent's hello,
which refuses an agent certificate naming another host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from controller.store import (
    AccessRecord,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    Store,
    Stored,
    StoreError,
)
from serving.auth import (
    LOCAL,
    Access,
    AuthUnavailable,
    Grant,
    Identity,
    Role,
    Transport,
    certificate_grant,
    current_grant,
    current_identity,
    method_table,
    peer_identity,
    transport_grant,
)
from serving.pki import CertRole, parse_spiffe_id
from vrc.v1 import controller_pb2

CONTROLLER = controller_pb2.DESCRIPTOR.services_by_name["Controller"]
READS = ("ListHosts", "GetHost", "ListAliases", "ListPrefixes", "GetPolicy", "WatchConfig",
         "GetHostStatus", "GetFleetStatus", "ListAccess", "ListHistory", "WatchHistory")
METHODS = method_table(CONTROLLER, reads=READS, syncs=("Sync",), opens=("WhoAmI",))
SYNC_METHOD = f"{CONTROLLER.full_name}/Sync"
GRANTABLE = {"admin": Role.ADMIN, "reader": Role.READER, "none": Role.NONE}
MAX_IDENTITY = 512
BOOTSTRAP = "--bootstrap-admin"
RECORD = "access record"


def identity_text(field: str, value: str) -> str:
    """An identity as grants name it: printable ASCII without spaces, at most 512
    characters, not ``local`` (always an admin) and not empty."""
    if not value:
        raise InvalidArgument(field, value, "an identity is required (vrc whoami shows yours)")
    if len(value) > MAX_IDENTITY:
        raise InvalidArgument(field, value, f"longer than {MAX_IDENTITY} characters")
    if not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidArgument(field, value, "printable ASCII without spaces "
                                            "(e.g. spiffe://vrc/reader/bob)")
    if value == LOCAL or value.startswith(("peer:", "anonymous:")):
        raise InvalidArgument(field, value, "peers without a certificate are admins by the "
                                            "listener's rule; grants are for certificate "
                                            "identities")
    return value


@dataclass(frozen=True, slots=True)
class AccessEntry:
    identity: str
    grant: Grant
    record: Stored[AccessRecord] | None = None


class AccessControl:
    """Roles for the controller's callers, over one store (module docstring)."""

    def __init__(self, store: Store, bootstrap_admins: Iterable[str] = ()) -> None:
        self.store = store
        self.bootstrap = frozenset(bootstrap_admins)

    def resolve(self, identity: Identity) -> Grant:
        found = transport_grant(identity)
        if found is not None:
            return found
        if identity.name in self.bootstrap:
            return Grant(Role.ADMIN, BOOTSTRAP)
        try:
            stored = self.store.get_access(identity.name)
        except StoreError as error:
            raise AuthUnavailable(str(error)) from None
        if stored is not None:
            return Grant(GRANTABLE[stored.record.role], RECORD)
        return certificate_grant(identity)

    def entries(self) -> tuple[list[AccessEntry], int]:
        """The bootstrap admins, then every record; and the revision read at."""
        listing = self.store.list_access()
        bootstrap = [AccessEntry(name, Grant(Role.ADMIN, BOOTSTRAP)) for name in
                     sorted(self.bootstrap)]
        records = [AccessEntry(s.record.identity, Grant(GRANTABLE[s.record.role], RECORD), s)
                   for s in listing.items]
        return bootstrap + records, listing.revision

    def grant(self, identity: str, role: str, *, expected_revision: int | None = None) -> int:
        name = identity_text("identity", identity)
        if role not in GRANTABLE:
            raise InvalidArgument("role", role, "grant admin, reader or none (agents are "
                                                "agents by their certificate)")
        self._not_bootstrap(name)
        return self.store.put_access(name, role, granted_by=caller_name(),
                                     expected_revision=expected_revision)

    def revoke(self, identity: str, *, expected_revision: int | None = None) -> int:
        """Remove the identity's grant; deny it when its certificate would give it a role."""
        name = identity_text("identity", identity)
        self._not_bootstrap(name)
        certificate = parse_spiffe_id(name)
        if certificate is not None and certificate[0] is not CertRole.CONTROLLER:
            return self.store.put_access(name, "none", granted_by=caller_name(),
                                         expected_revision=expected_revision,
                                         operation="revoke_access")
        return self.store.delete_access(name, expected_revision=expected_revision)

    def _not_bootstrap(self, name: str) -> None:
        if name in self.bootstrap:
            raise FailedPrecondition("identity", name, f"is a {BOOTSTRAP} of this controller: "
                                                       "always an admin (change the flag)")


def caller_name() -> str:
    identity = current_identity()
    return identity.name if identity is not None else ""


def authorize_sync(context: grpc.ServicerContext, host: str) -> Identity:
    """Refuse (PERMISSION_DENIED) an agent certificate that names another host than the
    hello's ``host``; admins and peers without certificates may Sync as any host.

    The Sync servicer calls this once, with the validated ``hello.host_id``,
    before it registers anything. Returns the caller's identity.
    """
    identity = current_identity() or peer_identity(context)
    if identity.transport is not Transport.TLS:
        return identity
    certificate = identity.certificate
    if certificate is not None and certificate[0] is CertRole.AGENT:
        if certificate[1] == host:
            return identity
        raise PermissionDenied("hello.host_id", host, (
            f"{identity.name} may not call {SYNC_METHOD} as host {host}: its certificate "
            f"names host {certificate[1]}"))
    grant = current_grant()
    if grant is not None and grant.role is Role.ADMIN:
        return identity
    raise PermissionDenied("hello.host_id", host, (
        f"{identity.name} may not call {SYNC_METHOD}: only an agent certificate "
        f"(spiffe://vrc/agent/{host}) or an admin may"))


__all__ = ["METHODS", "READS", "SYNC_METHOD", "Access", "AccessControl", "AccessEntry",
           "authorize_sync", "identity_text"]

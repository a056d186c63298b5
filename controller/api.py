"""The Controller gRPC servicer: request → validation → store → reply.

Handlers stay thin: :mod:`controller.validate` checks every field before the
store is asked, the store does the guarded write, :mod:`controller.errors`
(applied to every RPC by :func:`~controller.errors.map_errors_of`) turns a
refusal into its status. ``WatchConfig`` and ``WatchHistory`` hold a slot of
a bounded stream budget for as long as they run, so streams never starve
unary calls. Who may call what is decided before a handler runs
(:mod:`controller.access`, through :class:`serving.auth.Authorization`); the
access and history calls answer from :class:`~controller.access.AccessControl`
and the audit trail. ``Sync`` and the real content of the status calls arrive
with issue 13.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc

from controller import validate
from controller.access import AccessControl
from controller.audit import HistoryWatcher
from controller.convert import (
    GRANT_ROLE_NAMES,
    access_pb,
    change_pb,
    claim_pb,
    history_pb,
    host_pb,
    policy_pb,
    stored_alias_pb,
)
from controller.errors import map_errors_of
from controller.etcd import Change, ChangeKind, EtcdCompacted, Snapshot, Watcher, snapshot
from controller.store import (
    HistoryRecord,
    InvalidArgument,
    OutOfRange,
    ResourceExhausted,
    Store,
    Unavailable,
    decode,
)
from controller.store.core import etcd_errors
from controller.store.history import DEFAULT_LIMIT, MAX_LIMIT
from controller.sync import SyncService
from serving.auth import current_grant, current_identity, peer_identity
from serving.streams import BudgetExceeded, StreamBudget
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

CHANGES_PER_BATCH = 1000  # a ConfigBatch stays far below grpc's 4 MB message limit


def expected(request: Any) -> int | None:
    return int(request.expected_revision) if request.HasField("expected_revision") else None


@map_errors_of
class ControllerService(controller_pb2_grpc.ControllerServicer):
    """The vrc.v1.Controller service over one store."""

    def __init__(self, store: Store, *, watch_budget: StreamBudget | None = None,
                 sync: SyncService | None = None,
                 access: AccessControl | None = None) -> None:
        self.store = store
        self.sync = sync
        self.watch_budget = watch_budget or StreamBudget(32, 8, what="WatchConfig streams")
        self.access = access or AccessControl(store)

    # --- hosts -----------------------------------------------------------------------

    def ListHosts(self, request: pb.ListHostsRequest,
                  context: grpc.ServicerContext) -> pb.ListHostsResponse:
        listing = self.store.list_hosts()
        return pb.ListHostsResponse(hosts=[host_pb(h) for h in listing.items],
                                    revision=listing.revision)

    def GetHost(self, request: pb.GetHostRequest, context: grpc.ServicerContext) -> pb.Host:
        return host_pb(self.store.get_host(validate.host_id("id", request.id)))

    def AddHost(self, request: pb.AddHostRequest,
                context: grpc.ServicerContext) -> pb.WriteResponse:
        host = validate.host_id("id", request.id)
        return pb.WriteResponse(revision=self.store.add_host(
            host, expected_revision=expected(request)))

    def RemoveHost(self, request: pb.RemoveHostRequest,
                   context: grpc.ServicerContext) -> pb.WriteResponse:
        host = validate.host_id("id", request.id)
        return pb.WriteResponse(revision=self.store.remove_host(
            host, cascade=request.cascade, expected_revision=expected(request)))

    # --- aliases ---------------------------------------------------------------------

    def PutAlias(self, request: pb.PutAliasRequest,
                 context: grpc.ServicerContext) -> pb.WriteResponse:
        alias = request.alias
        spec = validate.alias(alias.host, alias.ifname, alias.address, alias.broadcast,
                              alias.destination)
        return pb.WriteResponse(revision=self.store.put_alias(
            spec, expected_revision=expected(request)))

    def DeleteAlias(self, request: pb.DeleteClusterAliasRequest,
                    context: grpc.ServicerContext) -> pb.WriteResponse:
        host = validate.host_id("host", request.host)
        ifname = validate.ifname("ifname", request.ifname)
        address, plen = validate.alias_address("address", request.address)
        return pb.WriteResponse(revision=self.store.delete_alias(
            host, ifname, address, plen, expected_revision=expected(request)))

    def ListAliases(self, request: pb.ListAliasesRequest,
                    context: grpc.ServicerContext) -> pb.ListAliasesResponse:
        host = validate.host_id("host", request.host) if request.host else ""
        listing = self.store.list_aliases(host)
        return pb.ListAliasesResponse(aliases=[stored_alias_pb(a) for a in listing.items],
                                      revision=listing.revision)

    # --- prefix claims ---------------------------------------------------------------

    def PutPrefix(self, request: pb.PutPrefixRequest,
                  context: grpc.ServicerContext) -> pb.WriteResponse:
        prefix = validate.prefix_text(*validate.cluster_prefix("prefix", request.prefix))
        host = validate.host_id("host", request.host)
        ifname = validate.ifname("ifname", request.ifname)
        return pb.WriteResponse(revision=self.store.put_claim(
            prefix, host, ifname, expected_revision=expected(request)))

    def DeletePrefix(self, request: pb.DeletePrefixRequest,
                     context: grpc.ServicerContext) -> pb.WriteResponse:
        prefix = validate.prefix_text(*validate.cluster_prefix("prefix", request.prefix))
        host = validate.host_id("host", request.host) if request.host else ""
        ifname = validate.ifname("ifname", request.ifname) if request.ifname else ""
        if ifname and not host:
            raise InvalidArgument("ifname", ifname, "an interface needs its host")
        return pb.WriteResponse(revision=self.store.delete_claims(
            prefix, host, ifname, expected_revision=expected(request)))

    def ListPrefixes(self, request: pb.ListPrefixesRequest,
                     context: grpc.ServicerContext) -> pb.ListPrefixesResponse:
        prefix = (validate.prefix_text(*validate.cluster_prefix("prefix", request.prefix))
                  if request.prefix else "")
        listing = self.store.list_claims(prefix)
        return pb.ListPrefixesResponse(claims=[claim_pb(c) for c in listing.items],
                                       revision=listing.revision)

    # --- policy ----------------------------------------------------------------------

    def GetPolicy(self, request: pb.GetClusterPolicyRequest,
                  context: grpc.ServicerContext) -> pb.ClusterPolicy:
        host = validate.host_id("host", request.host) if request.host else ""
        return policy_pb(self.store.get_policy(host))

    def SetPolicy(self, request: pb.SetClusterPolicyRequest,
                  context: grpc.ServicerContext) -> pb.WriteResponse:
        host = validate.host_id("host", request.host) if request.host else ""
        if request.clear:
            if request.same_prefix:
                raise InvalidArgument("same_prefix", request.same_prefix,
                                      "give a mode or clear, not both")
            mode = None
        else:
            mode = validate.mode("same_prefix", request.same_prefix)
        return pb.WriteResponse(revision=self.store.set_policy(
            mode, host, clear=request.clear, expected_revision=expected(request)))

    # --- watch -----------------------------------------------------------------------

    def WatchConfig(self, request: pb.WatchConfigRequest,
                    context: grpc.ServicerContext) -> Iterator[pb.ConfigBatch]:
        try:
            release = self.watch_budget.acquire(context.peer())
        except BudgetExceeded as error:
            raise ResourceExhausted("", "", str(error)) from None
        try:
            yield from self._watch(request.after_revision, context)
        finally:
            release()

    def _watch(self, after: int, context: grpc.ServicerContext) -> Iterator[pb.ConfigBatch]:
        root = self.store.keys.root
        etcd = self.store.etcd
        with etcd_errors():
            start = snapshot(etcd, root) if after == 0 else self._start_after(after)
        if after == 0:
            yield from self._snapshot_batches(start)
        else:  # at once, so the client knows it is subscribed
            yield pb.ConfigBatch(revision=after)
        watcher = Watcher(etcd, root, start)
        context.add_callback(watcher.close)
        if not context.is_active():
            watcher.close()
        for batch in watcher:
            changes = [c for c in (change_pb(self.store.keys, ch) for ch in batch.changes)
                       if c is not None]
            if changes or batch.resync:
                yield from _chunked(changes, batch.revision, resync=batch.resync)

    def _start_after(self, after: int) -> Snapshot:
        current = self.store.etcd.revision()
        if after > current:
            raise OutOfRange("after_revision", after,
                             f"is ahead of the store (current revision {current})")
        try:
            return snapshot(self.store.etcd, self.store.keys.root, after)
        except EtcdCompacted:
            raise OutOfRange("after_revision", after,
                             "has been compacted: list again (or watch from 0 for a "
                             f"snapshot; the current revision is {current})") from None

    def _snapshot_batches(self, start: Snapshot) -> Iterator[pb.ConfigBatch]:
        changes = [c for c in (change_pb(self.store.keys, Change(
            ChangeKind.PUT, kv.key, kv.value, kv.mod_revision, kv.create_revision))
            for kv in sorted(start.kvs.values(), key=lambda kv: (kv.mod_revision, kv.key)))
            if c is not None]
        yield from _chunked(changes, start.revision, snapshot=True)

    # --- status (issue 13 fills them) ------------------------------------------------

    def GetHostStatus(self, request: pb.GetHostStatusRequest,
                      context: grpc.ServicerContext) -> pb.HostStatus:
        return self._sync().host_status(request.host)

    def GetFleetStatus(self, request: pb.GetFleetStatusRequest,
                       context: grpc.ServicerContext) -> pb.FleetStatus:
        return self._sync().fleet_status()

    # --- access ----------------------------------------------------------------------

    def ListAccess(self, request: pb.ListAccessRequest,
                   context: grpc.ServicerContext) -> pb.ListAccessResponse:
        entries, revision = self.access.entries()
        return pb.ListAccessResponse(
            entries=[access_pb(e.identity, e.grant, e.record) for e in entries],
            revision=revision)

    def GrantAccess(self, request: pb.GrantAccessRequest,
                    context: grpc.ServicerContext) -> pb.WriteResponse:
        role = GRANT_ROLE_NAMES.get(request.role)
        if role is None:
            raise InvalidArgument("role", pb.AccessRole.Name(request.role)
                                  if request.role in pb.AccessRole.values() else request.role,
                                  "grant ACCESS_ROLE_ADMIN, ACCESS_ROLE_READER or "
                                  "ACCESS_ROLE_NONE")
        return pb.WriteResponse(revision=self.access.grant(
            request.identity, role, expected_revision=expected(request)))

    def RevokeAccess(self, request: pb.RevokeAccessRequest,
                     context: grpc.ServicerContext) -> pb.WriteResponse:
        return pb.WriteResponse(revision=self.access.revoke(
            request.identity, expected_revision=expected(request)))

    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext
               ) -> pb.AccessEntry:
        identity = current_identity() or peer_identity(context)
        grant = current_grant() or self.access.resolve(identity)
        return access_pb(identity.name, grant)

    # --- history ---------------------------------------------------------------------

    def ListHistory(self, request: pb.ListHistoryRequest,
                    context: grpc.ServicerContext) -> pb.ListHistoryResponse:
        host, since = _history_filter(request.host, request.since)
        if request.limit > MAX_LIMIT:
            raise InvalidArgument("limit", request.limit, f"at most {MAX_LIMIT}")
        listing = self.store.list_history(host=host, since=since,
                                          limit=request.limit or DEFAULT_LIMIT)
        return pb.ListHistoryResponse(
            entries=[history_pb(s.record, s.mod_revision) for s in listing.items],
            revision=listing.revision)

    def WatchHistory(self, request: pb.WatchHistoryRequest,
                     context: grpc.ServicerContext) -> Iterator[pb.HistoryBatch]:
        host, since = _history_filter(request.host, request.since)
        try:
            release = self.watch_budget.acquire(context.peer())
        except BudgetExceeded as error:
            raise ResourceExhausted("", "", str(error)) from None
        try:
            yield from self._watch_history(host, since, request.after_revision, context)
        finally:
            release()

    def _watch_history(self, host: str, since: float, after: int,
                       context: grpc.ServicerContext) -> Iterator[pb.HistoryBatch]:
        if after:
            current = self.store.revision()
            if after > current:
                raise OutOfRange("after_revision", after,
                                 f"is ahead of the store (current revision {current})")
            start = after
            yield pb.HistoryBatch(revision=after)
        else:
            listing = (self.store.list_history(host=host, since=since, limit=MAX_LIMIT)
                       if since > 0 else None)
            start = listing.revision if listing is not None else self.store.revision()
            entries = [history_pb(s.record, s.mod_revision)
                       for s in (listing.items if listing is not None else [])]
            for index in range(0, max(len(entries), 1), CHANGES_PER_BATCH):
                yield pb.HistoryBatch(entries=entries[index:index + CHANGES_PER_BATCH],
                                      revision=start, snapshot=True)
        watcher = HistoryWatcher(self.store.etcd, self.store.keys, start)
        context.add_callback(watcher.close)
        if not context.is_active():
            watcher.close()
        for batch in watcher:
            entries = []
            for key, value, revision in watcher.new_entries(batch):
                record = decode(HistoryRecord, key, value)
                if not host or host in record.hosts:
                    entries.append(history_pb(record, revision))
            if entries:
                yield pb.HistoryBatch(entries=entries, revision=batch.revision)

    def Sync(self, request_iterator: Iterator[pb.SyncRequest],
             context: grpc.ServicerContext) -> Iterator[pb.SyncResponse]:
        yield from self._sync().sync(request_iterator, context)

    def _sync(self) -> SyncService:
        if self.sync is None:
            raise Unavailable("", "", "this controller was started without its Sync service")
        return self.sync


def _history_filter(host: str, since: float) -> tuple[str, float]:
    checked = validate.host_id("host", host) if host else ""
    if not math.isfinite(since) or since < 0:
        raise InvalidArgument("since", since, "a unix time, 0 or more")
    return checked, since


def _chunked(changes: list[pb.ConfigChange], revision: int, *, snapshot: bool = False,
             resync: bool = False) -> Iterator[pb.ConfigBatch]:
    """One ConfigBatch per CHANGES_PER_BATCH changes; all but the last say ``more``."""
    chunks = [changes[i:i + CHANGES_PER_BATCH]
              for i in range(0, len(changes), CHANGES_PER_BATCH)] or [[]]
    for index, chunk in enumerate(chunks):
        yield pb.ConfigBatch(changes=chunk, revision=revision, snapshot=snapshot,
                             resync=resync, more=index < len(chunks) - 1)

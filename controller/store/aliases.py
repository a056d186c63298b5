"""Alias writes (SIOCAIFADDR / SIOCDIFADDR lifted to the cluster) and the same-prefix guard.

``aliases/{host}/{address}``: the key makes "one alias per address on a host"
hold by itself. ``guards/same-prefix/{host}/{route}`` lists every alias of the
host on one prefix route key — the subnet, or for a point-to-point interface
the destination as a /32, exactly as the agent's engine keys its prefix routes
(in.c ``in_addprefix``). It is kept whatever the policy, so:

* under ``refuse`` a second alias on a route key the host already routes is
  ALREADY_EXISTS naming the first (whatever the interface: the engine refuses
  it too, so nothing that passes here is NACKed for it);
* a later switch to ``refuse`` can see every violation (see policy writes).

Every alias write compares the host record, the alias key, the guard(s) it
changes and both policy keys it depended on (cluster-wide and the host's
override), so it cannot pass against a policy change or a competing alias.
"""

from __future__ import annotations

from controller.etcd import Txn
from controller.store.core import ReadSet, Unchanged
from controller.store.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from controller.store.hosts import HostWrites
from controller.store.logic import effective_mode, interface_on_host, route_key
from controller.store.reads import check_expected
from controller.store.records import (
    AliasRecord,
    HostRecord,
    Member,
    Mode,
    PolicyRecord,
    SamePrefixGuard,
    encode,
)
from controller.store.spec import AliasSpec, ntoa

MAX_ALIASES_PER_ROUTE = 1024  # members of one same-prefix guard (its value stays small)


def alias_record(spec: AliasSpec, route: str) -> AliasRecord:
    return AliasRecord(
        spec.host, spec.ifname, f"{ntoa(spec.address)}/{spec.plen}",
        ntoa(spec.broadcast) if spec.broadcast is not None else "",
        ntoa(spec.destination) if spec.destination is not None else "", route)


class AliasWrites(HostWrites):
    def _host_mode(self, reads: ReadSet, host: str) -> Mode:
        cluster = reads.record(PolicyRecord, self.keys.policy())
        override = reads.record(PolicyRecord, self.keys.override(host))
        overrides = {host: override.record.mode} if override else {}
        return effective_mode(cluster.record.mode if cluster else None, overrides, host)

    def put_alias(self, spec: AliasSpec, *, expected_revision: int | None = None) -> int:
        """Add or replace the alias ``spec`` (validated by :func:`controller.validate.alias`)."""
        address = ntoa(spec.address)
        subject = f"alias {address}/{spec.plen} on {spec.host}/{spec.ifname}"
        return self.write("put_alias", subject,
                          lambda: self._put_alias_attempt(spec, address, expected_revision))

    def _put_alias_attempt(self, spec: AliasSpec, address: str,
                           expected: int | None) -> tuple[ReadSet, Txn | Unchanged]:
        host_key = self.keys.host(spec.host)
        key = self.keys.alias(spec.host, address)
        reads = self.read(keys=[host_key, key, self.keys.policy(),
                                self.keys.override(spec.host)])
        host = reads.record(HostRecord, host_key)
        if host is None:
            raise NotFound("alias.host", spec.host, "no such host (vrc host add adds one)")
        route = route_key(spec, self._point_to_point(host.record, spec))
        record = alias_record(spec, route)
        old = reads.record(AliasRecord, key)
        check_expected(expected, old.mod_revision if old else 0, f"alias {address} on {spec.host}")
        if old is not None and old.record.ifname != spec.ifname:
            raise AlreadyExists("alias.address", record.address,
                                f"{address} is already an alias of {old.record.ifname} on host "
                                f"{spec.host}: delete it there first")
        if old is not None and old.record == record:
            return reads, Unchanged(old.mod_revision)
        txn = Txn().put(key, encode(record))
        old_route = old.record.route if old is not None else ""
        if old_route and old_route != route:
            self._leave_guard(reads, txn, spec.host, old_route, address)
        self._join_guard(reads, txn, record, self._host_mode(reads, spec.host))
        return reads, txn

    @staticmethod
    def _point_to_point(host: HostRecord, spec: AliasSpec) -> bool:
        """Known from the agent's NIC report, else from whether a destination was given."""
        nic = interface_on_host(host, spec.ifname, "alias.ifname")
        if nic is None:
            return spec.destination is not None
        if nic.point_to_point and spec.destination is None:
            raise InvalidArgument("alias.destination", "",
                                  f"{spec.ifname} of host {host.id} is point-to-point: give the "
                                  "peer's address (EDESTADDRREQ)")
        if not nic.point_to_point and spec.destination is not None:
            raise InvalidArgument("alias.destination", ntoa(spec.destination),
                                  f"{spec.ifname} of host {host.id} is not point-to-point")
        return nic.point_to_point

    def _guard_members(self, reads: ReadSet, host: str, route: str) -> tuple[Member, ...]:
        key = self.keys.same_prefix_guard(host, route)
        if key not in reads.keys:
            self.read(reads, keys=[key])
        stored = reads.record(SamePrefixGuard, key)
        return stored.record.members if stored is not None else ()

    def _join_guard(self, reads: ReadSet, txn: Txn, record: AliasRecord, mode: Mode) -> None:
        members = self._guard_members(reads, record.host, record.route)
        others = tuple(m for m in members if m.address != record.ip)
        if mode is Mode.REFUSE and others:
            first = others[0]
            raise AlreadyExists(
                "alias.address", record.address,
                f"prefix {record.route} on host {record.host} is already routed by "
                f"{first.address} on {first.ifname} (same-prefix policy: refuse)")
        if len(others) >= MAX_ALIASES_PER_ROUTE:
            raise ResourceExhausted("alias.address", record.address,
                                    f"host {record.host} already has {len(others)} aliases on "
                                    f"prefix {record.route} (limit {MAX_ALIASES_PER_ROUTE})")
        kept = tuple(m if m.address != record.ip else Member(record.ip, record.ifname)
                     for m in members)
        if len(kept) == len(others):
            kept = (*kept, Member(record.ip, record.ifname))
        txn.put(self.keys.same_prefix_guard(record.host, record.route),
                encode(SamePrefixGuard(record.host, record.route, kept)))

    def _leave_guard(self, reads: ReadSet, txn: Txn, host: str, route: str,
                     address: str) -> None:
        members = self._guard_members(reads, host, route)
        kept = tuple(m for m in members if m.address != address)
        key = self.keys.same_prefix_guard(host, route)
        if kept:
            txn.put(key, encode(SamePrefixGuard(host, route, kept)))
        else:
            txn.delete(key)

    def delete_alias(self, host: str, ifname: str, address: int, plen: int | None = None, *,
                     expected_revision: int | None = None) -> int:
        """Delete the alias ``address`` of ``host`` on ``ifname`` (``plen``, if given, must
        match). NOT_FOUND names what is there instead."""
        text = ntoa(address)
        subject = f"alias {text} on {host}/{ifname}"

        def attempt() -> tuple[ReadSet, Txn | Unchanged]:
            host_key = self.keys.host(host)
            key = self.keys.alias(host, text)
            reads = self.read(keys=[host_key, key])
            if reads.kv(host_key) is None:
                raise NotFound("host", host, "no such host")
            old = reads.record(AliasRecord, key)
            if old is None:
                raise NotFound("address", text, f"host {host} has no such alias")
            if old.record.ifname != ifname:
                raise NotFound("ifname", ifname, f"alias {text} of host {host} is on "
                                                 f"{old.record.ifname}")
            if plen is not None and plen != old.record.plen:
                raise NotFound("address", f"{text}/{plen}",
                               f"host {host} has {old.record.address}, not this prefix length")
            check_expected(expected_revision, old.mod_revision, f"alias {text} on {host}")
            txn = Txn().delete(key)
            if old.record.route:
                self._leave_guard(reads, txn, host, old.record.route, text)
            return reads, txn

        return self.write("delete_alias", subject, attempt)

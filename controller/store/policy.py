"""The same-prefix policy: cluster-wide (``policy``) and per-host overrides
(``policy/hosts/{host}``).

A change that makes ``refuse`` the mode of hosts that already break it is
FAILED_PRECONDITION naming the conflicts: two aliases of one host on one
prefix route key (read from the same-prefix guards) and, for the cluster-wide
mode, a prefix with several claimants. The change compares the guards it
checked ("nothing under them changed since read"), and every alias or claim
write compares the policy keys it depended on, so a policy change and a
conflicting write can never both pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.etcd import Txn
from controller.store.claims import ClaimWrites
from controller.store.core import ReadSet, Unchanged
from controller.store.errors import FailedPrecondition, InvalidArgument, NotFound
from controller.store.logic import effective_mode
from controller.store.reads import check_expected
from controller.store.records import Mode, PolicyRecord, PrefixGuard, SamePrefixGuard, encode

CONFLICTS_SHOWN = 5


class PolicyWrites(ClaimWrites):
    def set_policy(self, mode: Mode | None, host: str = "", *, clear: bool = False,
                   expected_revision: int | None = None) -> int:
        """Set the cluster-wide mode (``host`` empty) or a host's override; ``clear`` with a
        host removes its override. ``expected_revision`` is compared with the record set."""
        if clear and not host:
            raise InvalidArgument("clear", "true", "clearing needs a host (an override)")
        if mode is None and not clear:
            raise InvalidArgument("same_prefix", "", "is required")
        if host:
            return self.write("set_policy", f"same-prefix policy of host {host}",
                              lambda: self._host_attempt(mode, host, clear, expected_revision))
        assert mode is not None
        return self.write("set_policy", "cluster same-prefix policy",
                          lambda: self._cluster_attempt(mode, expected_revision))

    def _cluster_attempt(self, mode: Mode, expected: int | None
                         ) -> tuple[ReadSet, Txn | Unchanged]:
        key = self.keys.policy()
        guarded = [self.keys.overrides()]
        if mode is Mode.REFUSE:
            guarded += [self.keys.same_prefix_guards(), self.keys.prefix_guards()]
        reads = self.read(keys=[key], ranges=guarded)
        check_expected(expected, reads.mod_revision(key), "the cluster same-prefix policy")
        current = reads.record(PolicyRecord, key)
        if current is not None and current.record.mode is mode:
            return reads, Unchanged(current.mod_revision)
        if mode is Mode.REFUSE:
            overridden = {s.record.host for s in reads.records(PolicyRecord,
                                                               self.keys.overrides())}
            conflicts = self._alias_conflicts(reads, self.keys.same_prefix_guards(), overridden)
            conflicts += [
                f"prefix {g.record.prefix} is claimed by "
                f"{_listed([f'{c.host}/{c.ifname}' for c in g.record.claims])}"
                for g in reads.records(PrefixGuard, self.keys.prefix_guards())
                if len(g.record.claims) > 1]
            _refuse_if(conflicts)
        return reads, Txn().put(key, encode(PolicyRecord(mode)))

    def _host_attempt(self, mode: Mode | None, host: str, clear: bool,
                      expected: int | None) -> tuple[ReadSet, Txn | Unchanged]:
        key = self.keys.override(host)
        guards = self.keys.same_prefix_guards(host)
        reads = self.read(keys=[self.keys.host(host), key, self.keys.policy()], ranges=[guards])
        if reads.kv(self.keys.host(host)) is None:
            raise NotFound("host", host, "no such host")
        check_expected(expected, reads.mod_revision(key), f"the override of host {host}")
        current = reads.record(PolicyRecord, key)
        if clear and current is None:
            return reads, Unchanged(reads.revision)
        if not clear and current is not None and current.record.mode is mode:
            return reads, Unchanged(current.mod_revision)
        cluster = reads.record(PolicyRecord, self.keys.policy())
        after = effective_mode(cluster.record.mode if cluster else None,
                               {} if clear or mode is None else {host: mode}, host)
        if after is Mode.REFUSE:
            _refuse_if(self._alias_conflicts(reads, guards, set()))
        if clear:
            return reads, Txn().delete(key)
        assert mode is not None
        return reads, Txn().put(key, encode(PolicyRecord(mode, host)))

    @staticmethod
    def _alias_conflicts(reads: ReadSet, prefix: str, skip_hosts: Iterable[str]) -> list[str]:
        skipped = set(skip_hosts)
        return [
            f"host {g.record.host} has "
            f"{_listed([f'{m.address} ({m.ifname})' for m in g.record.members])}"
            f" on prefix {g.record.route}"
            for g in reads.records(SamePrefixGuard, prefix)
            if len(g.record.members) > 1 and g.record.host not in skipped]


def _listed(names: list[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return " and ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def _refuse_if(conflicts: list[str]) -> None:
    if not conflicts:
        return
    shown = "; ".join(conflicts[:CONFLICTS_SHOWN])
    more = f"; and {len(conflicts) - CONFLICTS_SHOWN} more" if len(conflicts) > CONFLICTS_SHOWN \
        else ""
    raise FailedPrecondition("same_prefix", "refuse",
                             f"{len(conflicts)} conflict(s) with refuse: {shown}{more}; "
                             "remove them first")

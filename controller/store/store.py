"""The store: every read and write of the cluster's desired state (docs/store.md)."""

from __future__ import annotations

from controller.store.access import AccessWrites
from controller.store.history import HistoryStore
from controller.store.policy import PolicyWrites


class Store(PolicyWrites, AccessWrites, HistoryStore):
    """Hosts, aliases, prefix claims, the same-prefix policy, access records and the audit
    trail in etcd.

    Reads: ``list_hosts``, ``get_host``, ``list_aliases``, ``list_claims``,
    ``get_policy``, ``host_status``, ``get_access``, ``list_access``,
    ``list_history``. Writes (each returns the revision it created):
    ``add_host``, ``report_host``, ``remove_host``, ``put_alias``,
    ``delete_alias``, ``put_claim``, ``delete_claims``, ``set_policy``,
    ``put_access``, ``delete_access``; ``prune_history`` bounds the trail.
    Failures are :mod:`controller.store.errors` types.
    """

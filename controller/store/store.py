"""The store: every read and write of the cluster's desired state (docs/store.md)."""

from __future__ import annotations

from controller.store.policy import PolicyWrites


class Store(PolicyWrites):
    """Hosts, aliases, prefix claims and the same-prefix policy in etcd.

    Reads: ``list_hosts``, ``get_host``, ``list_aliases``, ``list_claims``,
    ``get_policy``, ``host_status``. Writes (each returns the revision it
    created): ``add_host``, ``report_host``, ``remove_host``, ``put_alias``,
    ``delete_alias``, ``put_claim``, ``delete_claims``, ``set_policy``.
    Failures are :mod:`controller.store.errors` types.
    """

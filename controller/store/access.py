"""Access records: ``access/{identity}`` holds the role an identity has in this cluster.

Written through the store's write loop like every record, so each grant and
revoke is audited in its own transaction (docs/security.md). Which role
*applies* to a caller — records, bootstrap admins, certificate roles — is
:mod:`controller.access`; the store only keeps the records.
"""

from __future__ import annotations

import time

from controller.etcd import Txn
from controller.store.core import ReadSet, StoreCore, Unchanged
from controller.store.errors import NotFound
from controller.store.reads import Listing, check_expected
from controller.store.records import AccessRecord, Stored, encode


class AccessWrites(StoreCore):
    def get_access(self, identity: str) -> Stored[AccessRecord] | None:
        key = self.keys.access(identity)
        return self.read(keys=[key]).record(AccessRecord, key)

    def list_access(self) -> Listing[Stored[AccessRecord]]:
        prefix = self.keys.access_records()
        reads = self.read(unguarded=[prefix])
        records = sorted(reads.records(AccessRecord, prefix), key=lambda s: s.record.identity)
        return Listing(records, reads.revision)

    def put_access(self, identity: str, role: str, *, granted_by: str,
                   expected_revision: int | None = None,
                   operation: str = "grant_access") -> int:
        """Give ``identity`` ``role`` (replacing its record); the same role is a no-op.
        ``operation`` names it in the audit trail (a revoke that denies is one)."""
        key = self.keys.access(identity)

        def attempt() -> tuple[ReadSet, Txn | Unchanged]:
            reads = self.read(keys=[key])
            check_expected(expected_revision, reads.mod_revision(key), f"access of {identity}")
            stored = reads.record(AccessRecord, key)
            if stored is not None and stored.record.role == role:
                return reads, Unchanged(stored.mod_revision)
            record = AccessRecord(identity, role, granted_by, time.time())
            return reads, Txn().put(key, encode(record))

        return self.write(operation, f"access of {identity}: {role}", attempt)

    def delete_access(self, identity: str, *, expected_revision: int | None = None) -> int:
        """Remove ``identity``'s record; NOT_FOUND if it has none."""
        key = self.keys.access(identity)

        def attempt() -> tuple[ReadSet, Txn | Unchanged]:
            reads = self.read(keys=[key])
            current = reads.mod_revision(key)
            check_expected(expected_revision, current, f"access of {identity}")
            if not current:
                raise NotFound("identity", identity, "has no access record (vrc access ls)")
            return reads, Txn().delete(key)

        return self.write("revoke_access", f"access of {identity}: removed", attempt)

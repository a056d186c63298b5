"""The cluster's desired state in etcd: key layout, records, and the guarded writes."""

from controller.store.core import ReadSet, Unchanged, WriteContext, WriteHook
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
from controller.store.history import Pruned
from controller.store.keys import DEFAULT_ROOT, Keys
from controller.store.logic import RankedClaim, claim_roles, effective_mode, route_key
from controller.store.reads import ClaimView, HostView, Listing, PolicyView, StatusView
from controller.store.records import (
    ACCESS_ROLES,
    DEFAULT_MODE,
    AccessRecord,
    AliasRecord,
    ClaimRecord,
    HistoryChange,
    HistoryRecord,
    HostRecord,
    LiveRecord,
    Mode,
    Nic,
    PolicyRecord,
    Role,
    Stored,
    decode,
    encode,
)
from controller.store.store import Store

__all__ = [
    "ACCESS_ROLES", "DEFAULT_MODE", "DEFAULT_ROOT", "Aborted", "AccessRecord", "AliasRecord",
    "AlreadyExists", "ClaimRecord", "ClaimView", "Corrupt", "FailedPrecondition",
    "HistoryChange", "HistoryRecord", "HostRecord", "HostView", "InvalidArgument", "Keys",
    "Listing", "LiveRecord", "Mode", "Nic", "NotFound", "OutOfRange", "PermissionDenied",
    "PolicyRecord", "PolicyView", "Pruned", "RankedClaim", "ReadSet", "ResourceExhausted",
    "Role", "StatusView", "Store", "StoreError", "Stored", "Unavailable", "Unchanged",
    "WriteContext", "WriteHook", "claim_roles", "decode", "effective_mode", "encode",
    "route_key",
]

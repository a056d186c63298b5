"""vrc's own layer around pyetcd: health-checked, rebuilt clients, transactions with
revision compares, watches that survive compaction, and a private etcd for one machine.

The public names are re-exported here; see each module for the why.
"""

from controller.etcd.backoff import Backoff
from controller.etcd.client import EtcdClient, KeyValue, RangeResult, Read, Status, TxnResult
from controller.etcd.config import Endpoint, EtcdConfig, parse_endpoints
from controller.etcd.embedded import EmbeddedEtcd, EmbeddedEtcdError, find_binary
from controller.etcd.errors import (
    EtcdCompacted,
    EtcdError,
    EtcdRefused,
    EtcdRequestTooLarge,
    EtcdUnavailable,
)
from controller.etcd.txn import MAX_REQUEST_BYTES, MAX_TXN_OPS, Txn, prefix_end
from controller.etcd.watch import Batch, Change, ChangeKind, Snapshot, Watcher, snapshot, sweep

__all__ = [
    "MAX_REQUEST_BYTES", "MAX_TXN_OPS", "Backoff", "Batch", "Change", "ChangeKind",
    "EmbeddedEtcd", "EmbeddedEtcdError", "Endpoint", "EtcdClient", "EtcdCompacted",
    "EtcdConfig", "EtcdError", "EtcdRefused", "EtcdRequestTooLarge", "EtcdUnavailable",
    "KeyValue", "RangeResult", "Read", "Snapshot", "Status", "Txn", "TxnResult", "Watcher",
    "find_binary", "parse_endpoints", "prefix_end", "snapshot", "sweep",
]

"""The controller's side of the Sync stream (docs/controller.md, "Sync").

The pipeline, one step per module: :mod:`.desired` (the etcd layer's changes
into the desired state in memory), :mod:`.items` and :mod:`.slices` (each
host's slice and the per-host deltas of a batch, routes from
``controller.topology``), :mod:`.fanout` (one bounded queue per stream),
:mod:`.status` and :mod:`.status_writer` (ACKs, the fleet watermark, coalesced
status records), :mod:`.liveness` (leases), and :mod:`.service` (the threads
and the RPC handlers).
"""

from controller.sync.service import SyncService, SyncSettings, server_options

__all__ = ["SyncService", "SyncSettings", "server_options"]

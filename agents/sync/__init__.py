"""The agent's side of the Sync stream: reconcile the engine to the controller's slice.

Pieces, each its own module: the item vocabulary (:mod:`.items`), messages to
items (:mod:`.wire`), the pure reconciler (:mod:`.reconcile`), the client's
bookkeeping (:mod:`.state`), the engine port (:mod:`.engine_port`), running
plans through the gate (:mod:`.applier`), ``--state-dir`` (:mod:`.statefile`),
dialling (:mod:`.dial`) and the client with its threads (:mod:`.client`).
"""

from agents.sync.client import NicInfo, SyncClient, SyncConfig
from serving.tls import TlsConfig

__all__ = ["NicInfo", "SyncClient", "SyncConfig", "TlsConfig"]

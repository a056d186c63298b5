"""A host's slice as the Sync server ships it: keyed items with fingerprints.

The keys are the protocol's (``proto/vrc/v1/controller.proto`` ``SyncItem``,
the agent reads them in ``agents/sync/items.py``): ``alias/IFNAME/A``,
``route/P/LEN``, ``policy``. A fingerprint is a short digest of everything
the item says, so "did this item change" is one string comparison, and the
agent's NACK names the content that failed.

Each item is built as a message once, when it changes, and the same message
object goes into every Sync message that carries it.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from controller.store import AliasRecord, Mode
from controller.topology import HostRoute
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import types_pb2 as tpb

POLICY_KEY = "policy"
MODE_PB = {Mode.ALLOW: tpb.POLICY_ALLOW, Mode.REFUSE: tpb.POLICY_REFUSE,
           Mode.MULTIPATH: tpb.POLICY_MULTIPATH}


class SliceItem(NamedTuple):
    """One item: its key, fingerprint, the revision its content last changed at, the
    message."""

    key: str
    fingerprint: str
    version: int
    message: pb.SyncItem


def alias_key(ifname: str, address: str) -> str:
    """``alias/IFNAME/A`` for ``A`` or ``A/LEN``."""
    return f"alias/{ifname}/{address.partition('/')[0]}"


def route_key(prefix: str) -> str:
    return f"route/{prefix}"


def _digest(message: pb.SyncItem) -> str:
    data = message.SerializeToString(deterministic=True)
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _finish(message: pb.SyncItem, version: int) -> SliceItem:
    message.fingerprint = _digest(message)
    return SliceItem(message.key, message.fingerprint, version, message)


def alias_item(record: AliasRecord, version: int) -> SliceItem:
    message = pb.SyncItem(
        key=alias_key(record.ifname, record.address),
        alias=pb.Alias(host=record.host, ifname=record.ifname, address=record.address,
                       broadcast=record.broadcast, destination=record.destination))
    return _finish(message, version)


def policy_item(mode: Mode, version: int) -> SliceItem:
    return _finish(pb.SyncItem(key=POLICY_KEY, policy=MODE_PB[mode]), version)


def route_item(route: HostRoute, version: int) -> SliceItem:
    """A computed route; its fingerprint is the route computation's own (it already
    digests the next hops, the distance and the owner)."""
    prefix = str(route.prefix)
    message = pb.SyncItem(
        key=route_key(prefix), fingerprint=f"r{route.fingerprint}",
        route=pb.SyncRoute(prefix=prefix, hops=route.hops, owner=route.owner, next_hops=[
            pb.NextHop(gateway=str(hop.gateway), ifname=hop.ifname, via_host=hop.via_host)
            for hop in route.next_hops]))
    return SliceItem(message.key, message.fingerprint, version, message)

"""Sync messages to items and back.

A ``SyncItem`` that cannot be understood (no payload, a malformed address, a
key that does not match its payload) is not a reason to drop the stream: it
becomes an :class:`~agents.sync.items.ItemError` (``EINVAL`` naming the field
and the value) that the agent reports in its NACK, and the rest of the
version is applied.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from agents.sync.items import (
    AliasSpec,
    Item,
    ItemError,
    NextHopSpec,
    PolicySpec,
    RouteSpec,
    Spec,
    canonical_alias,
    canonical_prefix,
)
from vrc.v1 import controller_pb2, types_pb2

_POLICY_BY_PB = {
    types_pb2.POLICY_ALLOW: "allow",
    types_pb2.POLICY_REFUSE: "refuse",
    types_pb2.POLICY_MULTIPATH: "multipath",
}
_PB_BY_POLICY = {name: number for number, name in _POLICY_BY_PB.items()}


class BadItem(ValueError):
    """An item the agent cannot read: ``field`` and ``value`` say what is wrong."""

    def __init__(self, field: str, value: object, detail: str) -> None:
        super().__init__(f"{field} {value!r}: {detail} (EINVAL)")
        self.field = field
        self.value = value


def item_from_pb(msg: controller_pb2.SyncItem) -> Item:
    """The item of a message; :class:`BadItem` naming the field if it is malformed."""
    which = msg.WhichOneof("item")
    spec: Spec
    if which == "alias":
        spec = _alias_spec(msg.alias)
    elif which == "route":
        spec = _route_spec(msg.route)
    elif which == "policy":
        mode = _POLICY_BY_PB.get(msg.policy)
        if mode is None:
            raise BadItem("policy", msg.policy, "expected ALLOW, REFUSE or MULTIPATH")
        spec = PolicySpec(mode)
    else:
        raise BadItem("item", "", "no alias, route or policy in the item")
    if msg.key != spec.key:
        raise BadItem("key", msg.key, f"does not match its content (expected {spec.key!r})")
    return Item(msg.key, spec, msg.fingerprint)


def parse_item(msg: controller_pb2.SyncItem) -> Item | ItemError:
    """:func:`item_from_pb`, with a malformed item as its error instead of an exception."""
    try:
        return item_from_pb(msg)
    except BadItem as error:
        return ItemError(msg.key, "EINVAL", f"{msg.key or 'item'}: {error}", msg.fingerprint)


def _ipv4(field: str, text: str, *, required: bool) -> str:
    if not text:
        if required:
            raise BadItem(field, text, "required")
        return ""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise BadItem(field, text, "not an IPv4 address") from None


def _alias_spec(alias: controller_pb2.Alias) -> AliasSpec:
    if not alias.ifname:
        raise BadItem("alias.ifname", alias.ifname, "required")
    try:
        address = canonical_alias(alias.address)
    except ValueError:
        raise BadItem("alias.address", alias.address, "expected A/LEN") from None
    return AliasSpec(alias.ifname, address,
                     _ipv4("alias.broadcast", alias.broadcast, required=False),
                     _ipv4("alias.destination", alias.destination, required=False))


def _route_spec(route: controller_pb2.SyncRoute) -> RouteSpec:
    try:
        prefix = canonical_prefix(route.prefix)
    except ValueError:
        raise BadItem("route.prefix", route.prefix, "expected P/LEN with host bits clear"
                      ) from None
    if not route.next_hops:
        raise BadItem("route.next_hops", "", "a route needs at least one next hop")
    hops = tuple(NextHopSpec(_ipv4("route.next_hops.gateway", hop.gateway, required=True),
                             hop.ifname) for hop in route.next_hops)
    return RouteSpec(prefix, hops, hops=route.hops, owner=route.owner)


def item_to_pb(key: str, spec: Spec, fingerprint: str = "") -> controller_pb2.SyncItem:
    """The message of an item (the state file, local items in a hello or an ACK)."""
    if isinstance(spec, AliasSpec):
        return controller_pb2.SyncItem(key=key, fingerprint=fingerprint, alias=controller_pb2.Alias(
            ifname=spec.ifname, address=spec.address, broadcast=spec.broadcast,
            destination=spec.destination))
    if isinstance(spec, RouteSpec):
        return controller_pb2.SyncItem(key=key, fingerprint=fingerprint,
                                       route=controller_pb2.SyncRoute(
            prefix=spec.prefix, hops=spec.hops, owner=spec.owner,
            next_hops=[controller_pb2.NextHop(gateway=hop.gateway, ifname=hop.ifname)
                       for hop in spec.next_hops]))
    return controller_pb2.SyncItem(key=key, fingerprint=fingerprint,
                                   policy=_PB_BY_POLICY[spec.mode])


def error_to_pb(error: ItemError) -> controller_pb2.SyncItemError:
    return controller_pb2.SyncItemError(key=error.key, code=error.code, message=error.message,
                                        fingerprint=error.fingerprint)



#: What an agent's Sync message may weigh: the controller takes up to 4 MiB
#: (``controller.daemon.MAX_SYNC_MESSAGE_BYTES``); this leaves room for the rest.
MAX_REPORT_BYTES = 3 * 1024 * 1024


def fit_lists(message: Any, fields: tuple[str, ...], limit: int = MAX_REPORT_BYTES) -> int:
    """Cut the repeated ``fields`` of ``message`` (in that order: the first goes first)
    until it weighs at most ``limit`` bytes; how many entries were left out.

    A hello or an ACK that the controller refuses for its size would be refused at
    every redial: better a report that names the first tens of thousands of items
    than none (the agent logs what it left out).
    """
    dropped = 0
    for name in fields:
        entries = getattr(message, name)
        excess = message.ByteSize() - limit
        if excess <= 0:
            break
        keep = len(entries)
        while keep and excess > 0:
            size = entries[keep - 1].ByteSize()
            excess -= size + 1 + _varint_len(size)  # the field's tag (one byte) and length
            keep -= 1
        dropped += len(entries) - keep
        del entries[keep:]
    return dropped


def _varint_len(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)

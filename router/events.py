"""Events the engine emits: interface, protocol, address, route and ARP news.

Every event goes through the data link layer's event path (filters, then
protocols, then the interface, then subscribers) when it concerns one
interface; the engine stamps each with a sequence number so a subscriber (the
gRPC event stream) can resume from a point.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class EventKind(enum.Enum):
    # data link layer (dlil.c)
    IF_ATTACHED = "IF_ATTACHED"
    IF_DETACHING = "IF_DETACHING"
    IF_DETACHED = "IF_DETACHED"
    PROTO_ATTACHED = "PROTO_ATTACHED"
    PROTO_DETACHED = "PROTO_DETACHED"
    LINK_UP = "LINK_UP"
    LINK_DOWN = "LINK_DOWN"
    IF_FLAGS_CHANGED = "IF_FLAGS_CHANGED"
    # routing messages (in.c, route table)
    RTM_ADD = "RTM_ADD"
    RTM_DELETE = "RTM_DELETE"
    RTM_CHANGE = "RTM_CHANGE"
    RTM_NEWADDR = "RTM_NEWADDR"
    RTM_DELADDR = "RTM_DELADDR"
    # ARP (lltable and the ARP protocol)
    ARP_ADDED = "ARP_ADDED"
    ARP_CHANGED = "ARP_CHANGED"
    ARP_DELETED = "ARP_DELETED"
    ARP_CONFLICT = "ARP_CONFLICT"
    MULTICAST_JOIN = "MULTICAST_JOIN"
    MULTICAST_LEAVE = "MULTICAST_LEAVE"


@dataclass(slots=True)
class Event:
    """One piece of news. ``data`` holds kind-specific plain values (str/int)."""

    kind: EventKind
    ifname: str = ""
    ifindex: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.data.items())
        where = f" {self.ifname}" if self.ifname else ""
        return f"#{self.seq} {self.kind.value}{where} {extra}".rstrip()

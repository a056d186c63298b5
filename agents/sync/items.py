"""The items of a host's slice, as the agent reasons about them.

A slice is a set of items, each named by a key that is unique within the
host (the same keys the controller uses, ``proto/vrc/v1/controller.proto``
``SyncItem.key``):

* ``alias/IFNAME/A`` — an address alias (the address without its length, so a
  new length is a replacement of the same item, as SIOCAIFADDR treats it);
* ``route/P/LEN`` — a route to a cluster prefix (host bits clear);
* ``policy`` — the host's effective same-prefix mode.

Specs are frozen values compared by what the engine holds: a route's
``hops`` and ``owner`` are for display and do not make two routes differ.
Everything here is pure: no engine, no gRPC (:mod:`agents.sync.wire`
converts to and from messages).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

POLICY_KEY = "policy"
POLICIES = ("allow", "refuse", "multipath")
DEFAULT_POLICY = "allow"  # the engine's own default (EngineConfig.policy)


@dataclass(frozen=True, slots=True)
class AliasSpec:
    """An address alias; ``broadcast`` empty: the engine derives it."""

    ifname: str
    address: str  # "A/LEN"
    broadcast: str = ""
    destination: str = ""

    @property
    def key(self) -> str:
        return alias_key(self.ifname, self.address)


@dataclass(frozen=True, slots=True, order=True)
class NextHopSpec:
    gateway: str
    ifname: str = ""


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route to ``prefix``: one next hop, or several (equal-cost multipath)."""

    prefix: str  # "P/LEN", host bits clear
    next_hops: tuple[NextHopSpec, ...]
    hops: int = field(default=0, compare=False)
    owner: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # the order of next hops means nothing: keep one canonical order
        object.__setattr__(self, "next_hops", tuple(sorted(set(self.next_hops))))

    @property
    def key(self) -> str:
        return route_key(self.prefix)

    @property
    def multipath(self) -> bool:
        return len(self.next_hops) > 1


@dataclass(frozen=True, slots=True)
class PolicySpec:
    mode: str  # one of POLICIES

    @property
    def key(self) -> str:
        return POLICY_KEY


Spec = AliasSpec | RouteSpec | PolicySpec


@dataclass(frozen=True, slots=True)
class Item:
    """One item of the controller's slice: its key, what it asks for, and the
    controller's fingerprint of it (changes whenever its content does)."""

    key: str
    spec: Spec
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why an item is not applied: an errno name and a message naming the field."""

    key: str
    code: str  # "EEXIST", "EINVAL", ...
    message: str
    fingerprint: str = ""


def alias_key(ifname: str, address: str) -> str:
    """``alias/IFNAME/A`` for ``A`` or ``A/LEN``."""
    return f"alias/{ifname}/{address.split('/', 1)[0]}"


def route_key(prefix: str) -> str:
    return f"route/{prefix}"


def kind_of(key: str) -> str:
    """``alias``, ``route`` or ``policy``."""
    return key.split("/", 1)[0]


def canonical_alias(address: str) -> str:
    """``A/LEN`` as the engine reports it (ValueError if it is not one)."""
    iface = ipaddress.IPv4Interface(address)
    if "/" not in address:
        raise ValueError(f"{address!r}: expected A/LEN")
    return f"{iface.ip}/{iface.network.prefixlen}"


def canonical_prefix(prefix: str) -> str:
    """``P/LEN`` with host bits clear (ValueError if they are set or it is no prefix)."""
    net = ipaddress.IPv4Network(prefix, strict=True)
    return f"{net.network_address}/{net.prefixlen}"


def satisfies(want: Spec, have: Spec) -> bool:
    """Whether what the engine holds (``have``) already is what ``want`` asks for.

    An alias that leaves its broadcast (or destination) empty is satisfied by
    any the engine derived; everything else must be equal.
    """
    if isinstance(want, AliasSpec) and isinstance(have, AliasSpec):
        return (want.ifname == have.ifname and want.address == have.address
                and want.broadcast in ("", have.broadcast)
                and want.destination in ("", have.destination))
    return want == have


def describe(spec: Spec) -> str:
    """The item in a few words, for messages and logs."""
    if isinstance(spec, AliasSpec):
        return f"alias {spec.address} on {spec.ifname}"
    if isinstance(spec, RouteSpec):
        legs = ", ".join(f"{hop.gateway}" + (f" dev {hop.ifname}" if hop.ifname else "")
                         for hop in spec.next_hops)
        return f"route {spec.prefix} via {legs}"
    return f"same-prefix policy {spec.mode}"

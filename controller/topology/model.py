"""What the cluster route computation reads and what it answers.

Inputs are the desired state as the store holds it (hosts with their
liveness, address aliases, prefix claims, the cluster-wide same-prefix mode),
as small frozen records that know nothing of etcd or protobuf: the store and
the Sync server convert at their edges. Outputs are per-host routes (each
with a stable fingerprint, so successive results diff cheaply), per-host
unreachable prefixes, and every claim's role.

Addresses are ``ipaddress`` objects here; the computation turns them into
ints once. The ``parse`` constructors take the text the API carries
(``"10.0.0.1/24"``) and raise ``ValueError`` naming the field and value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple


class SamePrefix(enum.StrEnum):
    """The cluster-wide same-prefix mode; it decides the roles of a prefix's claims."""

    ALLOW = "allow"  # one owner (the earliest live claim), the others standby
    REFUSE = "refuse"  # one claim only (the store enforces it)
    MULTIPATH = "multipath"  # every live claim is an owner


class ClaimRole(enum.Enum):
    """A claim's role (the proto's ``ClaimRole``)."""

    OWNER = "owner"  # routed to
    STANDBY = "standby"  # takes over when the owner goes (allow)
    DOWN = "down"  # its host is down: not routed to


class NoRouteReason(enum.Enum):
    """Why a live host has no route for a claimed prefix."""

    NO_OWNER = "no live owner"  # every claim of the prefix is on a down host
    NO_PATH = "no path"  # the owners are up but not reachable over live hosts


def _fail(field: str, value: object, why: str) -> ValueError:
    return ValueError(f"{field} {value!r}: {why}")


def _address(field: str, text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise _fail(field, text, "not an IPv4 address") from None


@dataclass(frozen=True, slots=True)
class Host:
    """A host of the cluster; ``up`` is its liveness (a live registration)."""

    id: str
    up: bool


@dataclass(frozen=True, slots=True)
class Alias:
    """An IPv4 address of a host's interface; ``destination`` makes it point-to-point."""

    host: str
    ifname: str
    address: IPv4Address
    prefix_len: int
    destination: IPv4Address | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.prefix_len <= 32:
            raise _fail("prefix_len", self.prefix_len, "not in 0..32")

    @classmethod
    def parse(cls, host: str, ifname: str, address: str, destination: str = "") -> Alias:
        """From the API's text: ``address`` is ``"A/LEN"`` (or ``"A"``, a /32)."""
        addr_text, _, plen_text = address.partition("/")
        if plen_text and not plen_text.isdecimal():
            raise _fail("address", address, "prefix length is not a number")
        plen = int(plen_text) if plen_text else 32
        dest = _address("destination", destination) if destination else None
        return cls(host, ifname, _address("address", addr_text), plen, dest)

    @property
    def network(self) -> IPv4Network:
        """The subnet the address is in."""
        return IPv4Network((self.address, self.prefix_len), strict=False)


@dataclass(frozen=True, slots=True)
class Claim:
    """A cluster prefix claimed by (host, interface); ``revision`` is its creation revision."""

    prefix: IPv4Network
    host: str
    ifname: str
    revision: int

    def __post_init__(self) -> None:
        if self.revision < 0:
            raise _fail("revision", self.revision, "negative")

    @classmethod
    def parse(cls, prefix: str, host: str, ifname: str, revision: int) -> Claim:
        """From the API's text; host bits set in ``prefix`` are an error."""
        try:
            network = IPv4Network(prefix, strict=True)
        except ValueError as exc:
            raise _fail("prefix", prefix, str(exc)) from None
        return cls(network, host, ifname, revision)

    @property
    def order(self) -> tuple[int, str, str]:
        """Earliest first: creation revision, then host, then interface."""
        return (self.revision, self.host, self.ifname)


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The desired state and liveness the routes are computed from (any order)."""

    hosts: tuple[Host, ...]
    aliases: tuple[Alias, ...]
    claims: tuple[Claim, ...]
    policy: SamePrefix = SamePrefix.ALLOW


@dataclass(frozen=True, slots=True)
class NextHop:
    """One leg of a route: the neighbour's address on a shared segment, the local
    interface on that segment, and the neighbour's host id."""

    gateway: IPv4Address
    ifname: str
    via_host: str

    @property
    def order(self) -> tuple[str, str, int]:
        """Next hops are listed, and the single one is chosen, in this order."""
        return (self.via_host, self.ifname, int(self.gateway))


class HostRoute(NamedTuple):
    """A route computed for one host toward the owner(s) of a cluster prefix.

    A named tuple rather than a dataclass: a large cluster makes millions of
    them, and a tuple is made three times faster.

    ``hops`` counts the hosts on the path after this one, the owner included
    (1: the owner is a neighbour). ``owner`` is the owner reached (under
    multipath the nearest, the lowest id among the equally near).
    ``fingerprint`` is a short stable hash of what the route says beyond its
    key, the prefix: next hops, hops and owner. Equal fingerprints for one
    prefix mean nothing to re-apply.
    """

    prefix: IPv4Network
    next_hops: tuple[NextHop, ...]
    hops: int
    owner: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A claimed prefix a live host has no route for, and why."""

    prefix: IPv4Network
    reason: NoRouteReason


@dataclass(frozen=True, slots=True)
class ClaimStatus:
    """A claim with its computed role."""

    claim: Claim
    role: ClaimRole

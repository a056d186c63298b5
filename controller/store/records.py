"""The typed records kept in etcd and their JSON form.

Each value is one JSON object with a ``schema`` field naming its type and
version (``vrc.v1.alias``...), keys sorted, so ``etcdctl get --prefix /vrc/v1/``
reads like the configuration it is. Decoding checks the schema and every
field's type and raises :class:`~controller.store.errors.Corrupt` naming the key
for anything vrc would not have written.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from controller.store.errors import Corrupt

R = TypeVar("R")


class Mode(enum.Enum):
    """The same-prefix policy (in.c ``no_same_prefix``)."""

    ALLOW = "allow"
    REFUSE = "refuse"
    MULTIPATH = "multipath"


DEFAULT_MODE = Mode.ALLOW  # the engine's default; the cluster's until SetPolicy


class Role(enum.Enum):
    """A prefix claim's part, computed from the claims, the policy and liveness."""

    OWNER = "owner"
    STANDBY = "standby"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Nic:
    name: str
    mac: str = ""
    mtu: int = 0
    point_to_point: bool = False


@dataclass(frozen=True, slots=True)
class HostRecord:
    """``hosts/{id}``: a host, added ahead of its agent or by its first registration."""

    id: str
    nics: tuple[Nic, ...] = ()  # as last reported by its agent; () before it registered
    agent_endpoint: str = ""
    software_version: str = ""

    @property
    def registered(self) -> bool:
        """Its agent has reported its NICs at least once."""
        return bool(self.nics)

    def nic(self, name: str) -> Nic | None:
        return next((nic for nic in self.nics if nic.name == name), None)


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """``aliases/{host}/{address}``: an address alias of one of a host's interfaces."""

    host: str
    ifname: str
    address: str  # "A/LEN", canonical
    broadcast: str = ""  # empty: the agent derives it
    destination: str = ""  # the peer of a point-to-point interface
    route: str = ""  # the prefix route key it counts under ("A/LEN"; p2p: "DEST/32")

    @property
    def ip(self) -> str:
        return self.address.partition("/")[0]

    @property
    def plen(self) -> int:
        return int(self.address.partition("/")[2])


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """``prefixes/{prefix}/{host}/{ifname}``: a cluster prefix claimed by an interface."""

    prefix: str
    host: str
    ifname: str


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """``policy`` (cluster-wide, ``host`` empty) or ``policy/hosts/{host}`` (an override)."""

    mode: Mode
    host: str = ""


@dataclass(frozen=True, slots=True)
class Member:
    """One alias counted in a same-prefix guard."""

    address: str  # bare dotted quad
    ifname: str


@dataclass(frozen=True, slots=True)
class SamePrefixGuard:
    """``guards/same-prefix/{host}/{route}``: every alias of a host on one prefix route
    key, in the order they were added (the first routes it, as in the engine)."""

    host: str
    route: str
    members: tuple[Member, ...] = ()


@dataclass(frozen=True, slots=True)
class Claimant:
    host: str
    ifname: str


@dataclass(frozen=True, slots=True)
class PrefixGuard:
    """``guards/prefix/{prefix}``: every claim of one cluster prefix, oldest first."""

    prefix: str
    claims: tuple[Claimant, ...] = ()


@dataclass(frozen=True, slots=True)
class HostClaim:
    prefix: str
    ifname: str


@dataclass(frozen=True, slots=True)
class ClaimsOfGuard:
    """``guards/claims-of/{host}``: a host's claims, so removing the host finds them all."""

    host: str
    claims: tuple[HostClaim, ...] = ()


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """``live/{host}`` (on an etcd lease, written by the Sync server): the agent is connected."""

    host: str
    controller: str = ""
    agent_endpoint: str = ""
    registered_at: float = 0.0


ACCESS_ROLES = ("admin", "reader", "none")


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """``access/{identity}``: the role an identity has, whatever its certificate says
    (``none``: denied)."""

    identity: str
    role: str  # one of ACCESS_ROLES
    granted_by: str = ""
    granted_at: float = 0.0


@dataclass(frozen=True, slots=True)
class HistoryChange:
    """One key a write changed: its value before and after (parsed JSON; None: absent)."""

    key: str  # relative to the store root ("aliases/h1/10.0.0.1")
    previous: Any = None
    value: Any = None


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """An entry of the audit trail: who wrote what, when, and what it replaced."""

    at: float  # unix time on the replica that wrote it
    identity: str
    operation: str  # "put_alias", "grant_access", ...
    subject: str  # for people: "alias 10.0.0.1/24 on h1/eth1"
    hosts: tuple[str, ...] = ()  # the hosts the changed keys are about
    replica: str = ""
    changes: tuple[HistoryChange, ...] = ()
    omitted: int = 0  # changes left out to keep the record bounded


@dataclass(frozen=True, slots=True)
class Stored(Generic[R]):
    """A record with its etcd revisions."""

    record: R
    key: str
    create_revision: int
    mod_revision: int


# --- JSON -----------------------------------------------------------------------------------

SCHEMAS: dict[type, str] = {
    HostRecord: "vrc.v1.host",
    AliasRecord: "vrc.v1.alias",
    ClaimRecord: "vrc.v1.claim",
    PolicyRecord: "vrc.v1.policy",
    SamePrefixGuard: "vrc.v1.guard.same-prefix",
    PrefixGuard: "vrc.v1.guard.prefix",
    ClaimsOfGuard: "vrc.v1.guard.claims-of",
    LiveRecord: "vrc.v1.live",
    AccessRecord: "vrc.v1.access",
    HistoryRecord: "vrc.v1.history",
}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def encode(record: object) -> bytes:
    """The record as one line of sorted JSON with its schema."""
    data = _plain(record)
    data["schema"] = SCHEMAS[type(record)]
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


@dataclass(slots=True)
class _Reader:
    """Typed access to a decoded object; every mistake is Corrupt naming the key."""

    key: str
    data: Mapping[str, Any]
    used: set[str] = field(default_factory=set)

    def _get(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise Corrupt("", "", f"record at {self.key}: field {name!r} missing")
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Corrupt("", "", f"record at {self.key}: field {name!r} has the wrong type")
        return value

    def text(self, name: str, default: Any = "") -> str:
        return str(self._get(name, str, default))

    def number(self, name: str, default: Any = 0) -> int:
        return int(self._get(name, int, default))

    def real(self, name: str, default: Any = 0.0) -> float:
        return float(self._get(name, (int, float), default))

    def flag(self, name: str, default: Any = False) -> bool:
        return bool(self._get(name, bool, default))

    def items(self, name: str) -> list[_Reader]:
        values = self._get(name, list, [])
        readers = []
        for value in values:
            if not isinstance(value, dict):
                raise Corrupt("", "", f"record at {self.key}: {name!r} holds a non-object")
            readers.append(_Reader(self.key, value))
        return readers

    def any(self, name: str) -> Any:
        """A JSON value of any type (the values a history record quotes)."""
        self.used.add(name)
        return self.data.get(name)

    def texts(self, name: str) -> tuple[str, ...]:
        values = self._get(name, list, [])
        if not all(isinstance(v, str) for v in values):
            raise Corrupt("", "", f"record at {self.key}: {name!r} holds a non-string")
        return tuple(values)

    def mode(self, name: str) -> Mode:
        text = self.text(name, _REQUIRED)
        try:
            return Mode(text)
        except ValueError:
            raise Corrupt("", "", f"record at {self.key}: unknown mode {text!r}") from None


_REQUIRED = object()


def _open(key: str, raw: bytes, cls: type) -> _Reader:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Corrupt("", "", f"record at {key}: not JSON") from None
    if not isinstance(data, dict):
        raise Corrupt("", "", f"record at {key}: not a JSON object")
    schema = data.get("schema")
    if schema != SCHEMAS[cls]:
        raise Corrupt("", "", f"record at {key}: schema {schema!r}, expected {SCHEMAS[cls]!r}")
    return _Reader(key, data)


def _host(r: _Reader) -> HostRecord:
    nics = tuple(Nic(n.text("name", _REQUIRED), n.text("mac"), n.number("mtu"),
                     n.flag("point_to_point")) for n in r.items("nics"))
    return HostRecord(r.text("id", _REQUIRED), nics, r.text("agent_endpoint"),
                      r.text("software_version"))


def _alias(r: _Reader) -> AliasRecord:
    return AliasRecord(r.text("host", _REQUIRED), r.text("ifname", _REQUIRED),
                       r.text("address", _REQUIRED), r.text("broadcast"), r.text("destination"),
                       r.text("route"))


def _claim(r: _Reader) -> ClaimRecord:
    return ClaimRecord(r.text("prefix", _REQUIRED), r.text("host", _REQUIRED),
                       r.text("ifname", _REQUIRED))


def _policy(r: _Reader) -> PolicyRecord:
    return PolicyRecord(r.mode("mode"), r.text("host"))


def _same_prefix(r: _Reader) -> SamePrefixGuard:
    return SamePrefixGuard(r.text("host", _REQUIRED), r.text("route", _REQUIRED), tuple(
        Member(m.text("address", _REQUIRED), m.text("ifname", _REQUIRED))
        for m in r.items("members")))


def _prefix_guard(r: _Reader) -> PrefixGuard:
    return PrefixGuard(r.text("prefix", _REQUIRED), tuple(
        Claimant(c.text("host", _REQUIRED), c.text("ifname", _REQUIRED))
        for c in r.items("claims")))


def _claims_of(r: _Reader) -> ClaimsOfGuard:
    return ClaimsOfGuard(r.text("host", _REQUIRED), tuple(
        HostClaim(c.text("prefix", _REQUIRED), c.text("ifname", _REQUIRED))
        for c in r.items("claims")))


def _live(r: _Reader) -> LiveRecord:
    return LiveRecord(r.text("host", _REQUIRED), r.text("controller"), r.text("agent_endpoint"),
                      r.real("registered_at"))


def _access(r: _Reader) -> AccessRecord:
    role = r.text("role", _REQUIRED)
    if role not in ACCESS_ROLES:
        raise Corrupt("", "", f"record at {r.key}: unknown role {role!r}")
    return AccessRecord(r.text("identity", _REQUIRED), role, r.text("granted_by"),
                        r.real("granted_at"))


def _history(r: _Reader) -> HistoryRecord:
    changes = tuple(HistoryChange(c.text("key", _REQUIRED), c.any("previous"), c.any("value"))
                    for c in r.items("changes"))
    return HistoryRecord(r.real("at", _REQUIRED), r.text("identity", _REQUIRED),
                         r.text("operation", _REQUIRED), r.text("subject"), r.texts("hosts"),
                         r.text("replica"), changes, r.number("omitted"))


_DECODERS: dict[type, Callable[[_Reader], Any]] = {
    HostRecord: _host,
    AliasRecord: _alias,
    ClaimRecord: _claim,
    PolicyRecord: _policy,
    SamePrefixGuard: _same_prefix,
    PrefixGuard: _prefix_guard,
    ClaimsOfGuard: _claims_of,
    LiveRecord: _live,
    AccessRecord: _access,
    HistoryRecord: _history,
}


def decode(cls: type[R], key: str, raw: bytes) -> R:
    """The record of type ``cls`` stored at ``key``; Corrupt if it is not one."""
    result: R = _DECODERS[cls](_open(key, raw, cls))
    return result

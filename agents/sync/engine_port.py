"""The Sync client's one way into the engine: observe items, run steps.

Everything the reconciler needs from the engine is here, so the rest of
``agents/sync`` is pure and a change of the engine's API touches one module.
Every function runs with the engine in hand, that is inside ``Gate.call``
(the caller holds the gate's lock); none of them takes a lock itself.

Each step either does all it says or leaves the engine as it found it: a
replacement whose new content the engine refuses puts the previous content
back (the engine's own SIOCAIFADDR replacement deletes the old address
first, as the seed does).

Routes go through a :class:`RouteInstaller`: one next hop is a plain
gateway route (``Engine.add_route``); several next hops (equal-cost
multipath) need the engine's ECMP (``Engine.set_route(prefix, gateways)``,
docs/ecmp.md, which also replaces a route's next hops in one table
operation). :func:`route_installer_for` picks what the engine in hand
supports; without ECMP a multipath route fails with ``EOPNOTSUPP`` and a
message that says so (the agent NACKs it and the route is not pretended).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Protocol

from agents.sync.items import (
    DEFAULT_POLICY,
    POLICY_KEY,
    AliasSpec,
    ItemError,
    NextHopSpec,
    PolicySpec,
    RouteSpec,
    Spec,
    canonical_prefix,
    describe,
    kind_of,
)
from agents.sync.reconcile import Step, StepKind, StepResult
from router.engine.edge import parse_address, parse_prefix
from router.errors import EADDRNOTAVAIL, EINVAL, ENXIO, EOPNOTSUPP, ESRCH, RouterError
from router.events import EventKind
from router.inet.route import ntoa
from router.link.ifnet import IfFlags

# Events that may change an item: anything else (ARP, links) cannot.
ITEM_EVENTS = frozenset({EventKind.RTM_NEWADDR, EventKind.RTM_DELADDR, EventKind.RTM_ADD,
                         EventKind.RTM_DELETE, EventKind.RTM_CHANGE, EventKind.IF_DETACHED})


# --- observing --------------------------------------------------------------------------


def observe(engine: Any, keys: Iterable[str] | None = None) -> dict[str, Spec]:
    """What the engine holds, as items: every item when ``keys`` is None, else those keys.

    The policy is an item only when it is not the engine's default (a default
    policy was configured by nobody). Routes are the configured ones (neither
    an address's prefix route nor a local route).
    """
    if keys is None:
        found = _all_aliases(engine)
        found.update(_all_routes(engine))
    else:
        found = {}
        for key in keys:
            spec = _observe_key(engine, key)
            if spec is not None:
                found[key] = spec
        return found
    policy = _policy(engine)
    if policy is not None:
        found[POLICY_KEY] = policy
    return found


def _alias_of(ifp: Any, ia: Any) -> AliasSpec:
    flags = int(ifp.flags)
    peer = ntoa(ia.peer) if ia.peer else ""
    if flags & IfFlags.POINTOPOINT:
        return AliasSpec(ifp.name, f"{ntoa(ia.addr)}/{ia.plen}", destination=peer)
    if flags & IfFlags.BROADCAST:
        return AliasSpec(ifp.name, f"{ntoa(ia.addr)}/{ia.plen}", broadcast=peer)
    return AliasSpec(ifp.name, f"{ntoa(ia.addr)}/{ia.plen}")


def _all_aliases(engine: Any) -> dict[str, Spec]:
    found: dict[str, Spec] = {}
    for ifp in engine.interfaces():
        for ia in engine.inet.addresses(ifp):
            spec = _alias_of(ifp, ia)
            found[spec.key] = spec
    return found


def _route_spec(prefix: str, legs: Iterable[Any]) -> RouteSpec | None:
    """The item of a prefix's configured routes: one route per leg, or one multipath
    route whose ``nexthops`` are its legs (the engine's ECMP)."""
    hops: list[NextHopSpec] = []
    for route in legs:
        if not route.is_configured:
            continue
        several = getattr(route, "nexthops", ())
        if several:
            hops.extend(NextHopSpec(ntoa(h.gateway), h.ifname) for h in several)
        else:
            hops.append(NextHopSpec(ntoa(route.gateway) if route.gateway else "", route.ifname))
    return RouteSpec(prefix, tuple(hops)) if hops else None


def _all_routes(engine: Any) -> dict[str, Spec]:
    legs: dict[str, list[Any]] = {}
    for route in engine.routes():
        if route.is_configured:
            legs.setdefault(f"{ntoa(route.prefix)}/{route.plen}", []).append(route)
    found: dict[str, Spec] = {}
    for prefix, routes in legs.items():
        spec = _route_spec(prefix, routes)
        if spec is not None:
            found[spec.key] = spec
    return found


def _policy(engine: Any) -> PolicySpec | None:
    mode = str(engine.get_policy())
    return None if mode == DEFAULT_POLICY else PolicySpec(mode)


def _observe_key(engine: Any, key: str) -> Spec | None:
    kind = kind_of(key)
    if kind == "policy":
        return _policy(engine)
    if kind == "alias":
        _, ifname, address = key.split("/", 2)
        ifp = engine.interface(ifname)
        if ifp is None:
            return None
        try:
            value = parse_address("address", address)
        except RouterError:
            return None
        ia = engine.inet.address(ifp, value) if value else None
        return _alias_of(ifp, ia) if ia is not None else None
    if kind == "route":
        prefix = key.split("/", 1)[1]
        try:
            network, plen = parse_prefix("prefix", canonical_prefix(prefix))
        except (ValueError, RouterError):
            return None
        return _route_spec(prefix, engine.route_table.get(network, plen))
    return None


def event_seq(engine: Any) -> int:
    """The sequence number of the engine's newest event."""
    return int(engine.events.last_seq)


def changed_since(engine: Any, seq: int) -> bool:
    """Whether something may have changed an item since event ``seq`` (or events were lost)."""
    events, lost = engine.events_after(seq)
    return lost or any(event.kind in ITEM_EVENTS for event in events)


# --- routes -----------------------------------------------------------------------------


class RouteInstaller(Protocol):
    """How routes reach the engine; the engine's ECMP work plugs in here."""

    def install(self, engine: Any, spec: RouteSpec) -> None:
        """Install every next hop of ``spec`` (nothing of ``spec.prefix`` is there)."""

    def replace(self, engine: Any, old: RouteSpec, new: RouteSpec) -> None:
        """Put ``new`` in place of ``old``; on a refusal leave ``old`` (and raise)."""

    def remove(self, engine: Any, prefix: str) -> None:
        """Remove every configured route of exactly ``prefix``."""


class GatewayRoutes:
    """One next hop per prefix through ``Engine.add_route``; multipath is refused."""

    def install(self, engine: Any, spec: RouteSpec) -> None:
        if spec.multipath:
            raise RouterError(
                EOPNOTSUPP, "next_hops", len(spec.next_hops), f"route {spec.prefix}",
                "multipath routes need the engine's ECMP, which this build lacks; "
                "the route is not installed")
        hop = spec.next_hops[0]
        engine.add_route(spec.prefix, gateway=hop.gateway or None, ifname=hop.ifname or None)

    def replace(self, engine: Any, old: RouteSpec, new: RouteSpec) -> None:
        """Delete and add in one gate call (the data plane never sees the gap); the old
        route is put back when the new one is refused."""
        self.remove(engine, old.prefix)
        try:
            self.install(engine, new)
        except RouterError:
            with contextlib.suppress(RouterError):
                self.install(engine, old)
            raise

    def remove(self, engine: Any, prefix: str) -> None:
        _remove_configured(engine, prefix)


class NextHopSetRoutes:
    """Routes through the engine's ECMP call (docs/ecmp.md): ``set_route(prefix,
    [(gateway, ifname), ...])`` creates or replaces a prefix's next-hop set in one table
    operation, one next hop or several (flows spread by a hash of the addresses and
    ports), and does nothing when the set is already there."""

    def install(self, engine: Any, spec: RouteSpec) -> None:
        engine.set_route(spec.prefix, [(h.gateway, h.ifname) for h in spec.next_hops])

    def replace(self, engine: Any, old: RouteSpec, new: RouteSpec) -> None:
        self.install(engine, new)  # atomic in the engine; a refusal writes nothing

    def remove(self, engine: Any, prefix: str) -> None:
        _remove_configured(engine, prefix)


def _remove_configured(engine: Any, prefix: str) -> None:
    network, plen = parse_prefix("prefix", prefix)
    table = engine.route_table
    for route in [r for r in table.get(network, plen) if r.is_configured]:
        table.remove(route)


def route_installer_for(engine: Any) -> RouteInstaller:
    """The installer for what ``engine`` supports: its ECMP call when it has one."""
    if callable(getattr(engine, "set_route", None)):
        return NextHopSetRoutes()
    return GatewayRoutes()


# --- steps ------------------------------------------------------------------------------


def run_step(engine: Any, step: Step, routes: RouteInstaller) -> StepResult:
    """Run one step; its key's engine state afterwards and the error, if any."""
    try:
        if step.kind is StepKind.DELETE:
            _delete(engine, step.spec, routes)
        elif step.kind is StepKind.ADD:
            _install(engine, step.spec, routes)
        else:
            _replace(engine, step, routes)
    except RouterError as error:
        return StepResult(step, _observe_key(engine, step.key), _error(step, error))
    return StepResult(step, _observe_key(engine, step.key))


def _error(step: Step, error: RouterError) -> ItemError:
    doing = "removing" if step.kind is StepKind.DELETE else "applying"
    return ItemError(step.key, error.name, f"{doing} {describe(step.spec)}: {error}",
                     step.fingerprint)


def _install(engine: Any, spec: Spec, routes: RouteInstaller) -> None:
    if isinstance(spec, AliasSpec):
        if engine.interface(spec.ifname) is None:
            raise RouterError(ENXIO, "ifname", spec.ifname, f"alias {spec.address}",
                              "no such interface on this host")
        engine.add_alias(spec.ifname, spec.address, broadcast=spec.broadcast or None,
                         dest=spec.destination or None)
    elif isinstance(spec, RouteSpec):
        _check_interfaces(engine, spec)
        routes.install(engine, spec)
    elif isinstance(spec, PolicySpec):
        engine.set_policy(spec.mode)
    else:  # pragma: no cover - the Spec union is closed
        raise RouterError(EINVAL, "item", spec)


def _check_interfaces(engine: Any, spec: RouteSpec) -> None:
    for hop in spec.next_hops:
        if hop.ifname and engine.interface(hop.ifname) is None:
            raise RouterError(ENXIO, "next_hops.ifname", hop.ifname, f"route {spec.prefix}",
                              "no such interface on this host")


def _delete(engine: Any, spec: Spec, routes: RouteInstaller) -> None:
    try:
        if isinstance(spec, AliasSpec):
            if engine.interface(spec.ifname) is not None:
                engine.delete_alias(spec.ifname, spec.address.split("/")[0])
        elif isinstance(spec, RouteSpec):
            routes.remove(engine, spec.prefix)
        else:
            engine.set_policy(DEFAULT_POLICY)
    except RouterError as error:
        if error.errno not in (EADDRNOTAVAIL, ESRCH):
            raise  # already gone is what a deletion wants


def _replace(engine: Any, step: Step, routes: RouteInstaller) -> None:
    """Install ``step.spec`` over ``step.previous``; on a refusal put ``previous`` back."""
    new, old = step.spec, step.previous
    if isinstance(new, PolicySpec):
        engine.set_policy(new.mode)
        return
    if isinstance(new, RouteSpec) and isinstance(old, RouteSpec):
        _check_interfaces(engine, new)
        routes.replace(engine, old, new)
        return
    if old is not None:
        _delete(engine, old, routes)
    try:
        _install(engine, new, routes)
    except RouterError:
        if old is not None:
            with contextlib.suppress(RouterError):  # the result reports what is left
                _install(engine, old, routes)
        raise

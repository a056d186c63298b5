"""The Sync client against a real engine: the engine port, the applier and whole rounds.

No gRPC here: versions are folded into a SyncState and reconciled through a
real Gate over a real Engine, as the client's apply thread does.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.gate import Gate
from agents.sync import engine_port
from agents.sync.applier import Applier, reconcile_round
from agents.sync.items import AliasSpec, Item, NextHopSpec, PolicySpec, RouteSpec, Spec
from agents.sync.reconcile import Step, StepKind
from agents.sync.state import SyncState, VersionUpdate
from router import ArpConfig, Engine, EngineConfig


def new_engine() -> Engine:
    engine = Engine(EngineConfig(arp=ArpConfig(probe_num=0)))
    engine.add_ethernet("eth0", mac="02:00:00:00:00:01", up=True)
    engine.add_ethernet("eth1", mac="02:00:00:00:00:02", up=True)
    return engine


class CountingGate(Gate):
    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.calls = 0

    def call(self, fn: Any) -> Any:
        self.calls += 1
        return super().call(fn)


def items(*specs: Spec) -> tuple[Item, ...]:
    return tuple(Item(spec.key, spec, f"fp-{hash(spec) & 0xffffff:x}") for spec in specs)


def snapshot(version: int, *specs: Spec) -> VersionUpdate:
    return VersionUpdate(version, True, items(*specs))


def alias(ifname: str, address: str) -> AliasSpec:
    return AliasSpec(ifname, address)


def route(prefix: str, gateway: str, ifname: str = "eth0") -> RouteSpec:
    return RouteSpec(prefix, (NextHopSpec(gateway, ifname),))


class Agent:
    """A SyncState, an Applier and an engine: one round per version."""

    def __init__(self, engine: Engine | None = None, steps_per_call: int = 256) -> None:
        self.engine = engine or new_engine()
        self.gate = CountingGate(self.engine)
        self.applier = Applier(self.gate, steps_per_call=steps_per_call)
        self.state = SyncState()

    def take(self, update: VersionUpdate) -> Any:
        touched = self.state.fold(update)
        return reconcile_round(self.applier, self.state, touched)

    def observed(self) -> dict[str, Spec]:
        return engine_port.observe(self.engine)


# --- observing ---------------------------------------------------------------------------


def test_observe_sees_aliases_configured_routes_and_a_non_default_policy_only() -> None:
    engine = new_engine()
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_route("10.9.0.0/16", gateway="10.0.0.2", ifname="eth0")
    seen = engine_port.observe(engine)
    assert seen == {
        "alias/eth0/10.0.0.1": AliasSpec("eth0", "10.0.0.1/24", broadcast="10.0.0.255"),
        "route/10.9.0.0/16": route("10.9.0.0/16", "10.0.0.2"),
    }  # neither the prefix route 10.0.0.0/24 nor the local 10.0.0.1/32, no default policy
    engine.set_policy("refuse")
    assert engine_port.observe(engine)["policy"] == PolicySpec("refuse")
    keys = ["alias/eth0/10.0.0.1", "route/10.9.0.0/16", "policy", "alias/eth9/10.0.0.1"]
    assert engine_port.observe(engine, keys) == {k: v for k, v in
                                                 engine_port.observe(engine).items()}


# --- steps -------------------------------------------------------------------------------


def test_a_refused_alias_replacement_puts_the_previous_alias_back() -> None:
    engine = new_engine()
    engine.set_policy("refuse")
    engine.add_alias("eth1", "10.0.0.77/24")
    engine.add_alias("eth0", "10.0.0.1/16")
    old = engine_port.observe(engine, ["alias/eth0/10.0.0.1"])["alias/eth0/10.0.0.1"]
    step = Step(StepKind.REPLACE, "alias/eth0/10.0.0.1", alias("eth0", "10.0.0.1/24"),
                previous=old)
    result = engine_port.run_step(engine, step, engine_port.GatewayRoutes())
    assert result.error is not None and result.error.code == "EEXIST"
    assert result.observed == old
    assert engine.get_address("eth0", "10.0.0.1")["plen"] == 16


def test_a_refused_route_replacement_puts_the_previous_route_back() -> None:
    engine = new_engine()
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_route("10.9.0.0/16", gateway="10.0.0.2", ifname="eth0")
    old = route("10.9.0.0/16", "10.0.0.2")
    step = Step(StepKind.REPLACE, old.key, route("10.9.0.0/16", "10.0.0.3", "eth7"),
                previous=old)
    result = engine_port.run_step(engine, step, engine_port.GatewayRoutes())
    assert result.error is not None and result.error.code == "ENXIO"
    assert "eth7" in result.error.message
    assert result.observed == old


def test_a_multipath_route_without_engine_ecmp_fails_clearly_and_installs_nothing() -> None:
    engine = new_engine()
    engine.add_alias("eth0", "10.0.0.1/24")
    spec = RouteSpec("10.9.0.0/16", (NextHopSpec("10.0.0.2", "eth0"),
                                     NextHopSpec("10.0.0.3", "eth0")))
    result = engine_port.run_step(engine, Step(StepKind.ADD, spec.key, spec),
                                  engine_port.GatewayRoutes())
    assert result.error is not None and result.error.code == "EOPNOTSUPP"
    assert "ECMP" in result.error.message
    assert result.observed is None
    assert not [r for r in engine.routes() if r.plen == 16]


def test_deleting_what_is_already_gone_succeeds() -> None:
    engine = new_engine()
    spec = alias("eth0", "10.0.0.1/24")
    result = engine_port.run_step(engine, Step(StepKind.DELETE, spec.key, spec),
                                  engine_port.GatewayRoutes())
    assert result.ok and result.observed is None


# --- rounds ------------------------------------------------------------------------------


def test_a_snapshot_then_updates_converge_and_unchanged_items_are_not_touched() -> None:
    agent = Agent()
    agent.take(snapshot(10, alias("eth0", "10.0.0.1/24"), alias("eth1", "10.1.0.1/24"),
                        route("10.9.0.0/16", "10.0.0.2"), PolicySpec("multipath")))
    events_before = agent.engine.events.last_seq
    steps, outcome = agent.take(VersionUpdate(11, False, items(alias("eth0", "10.0.0.1/16")),
                                              removals=("alias/eth1/10.1.0.1",)))
    assert not outcome.errors()
    # re-adding 10.0.0.1 took the route through it (in_ifadown): the round puts it back
    assert sorted((s.kind.value, s.key) for s in steps.steps) == [
        ("add", "route/10.9.0.0/16"), ("delete", "alias/eth1/10.1.0.1"),
        ("replace", "alias/eth0/10.0.0.1")]
    assert agent.observed() == {
        "alias/eth0/10.0.0.1": AliasSpec("eth0", "10.0.0.1/16", broadcast="10.0.255.255"),
        "route/10.9.0.0/16": route("10.9.0.0/16", "10.0.0.2"),
        "policy": PolicySpec("multipath")}
    assert agent.engine.events.last_seq > events_before
    # the same update again: nothing to do
    steps, _ = agent.take(VersionUpdate(11, False, items(alias("eth0", "10.0.0.1/16"))))
    assert steps.steps == ()


def test_a_partly_failing_version_applies_its_valid_items_and_reports_the_rest() -> None:
    agent = Agent()
    agent.engine.add_alias("eth1", "10.1.0.1/24")  # local, through the Agent API
    agent.take(snapshot(5, alias("eth0", "10.0.0.1/24"), alias("eth9", "10.2.0.1/24"),
                        AliasSpec("eth1", "10.1.0.1/16"), route("10.9.0.0/16", "10.0.0.2")))
    errors = {e.key: e.code for e in agent.state.errors()}
    assert errors == {"alias/eth9/10.2.0.1": "ENXIO", "alias/eth1/10.1.0.1": "EEXIST"}
    seen = agent.observed()
    assert seen["alias/eth0/10.0.0.1"].address == "10.0.0.1/24"  # type: ignore[union-attr]
    assert seen["alias/eth1/10.1.0.1"].address == "10.1.0.1/24"  # type: ignore[union-attr]
    assert "route/10.9.0.0/16" in seen
    assert set(agent.state.local) == {"alias/eth1/10.1.0.1"}


def test_a_failed_item_is_retried_and_applied_once_the_local_conflict_is_gone() -> None:
    agent = Agent()
    agent.engine.add_alias("eth1", "10.1.0.1/24")
    agent.take(snapshot(5, AliasSpec("eth1", "10.1.0.1/16")))
    assert [e.code for e in agent.state.errors()] == ["EEXIST"]
    agent.engine.delete_alias("eth1", "10.1.0.1")  # the operator removes the local one
    agent.take(VersionUpdate(6, False, items(alias("eth0", "10.0.0.1/24"))))
    assert agent.state.errors() == []
    assert agent.observed()["alias/eth1/10.1.0.1"].address == "10.1.0.1/16"  # type: ignore


def test_a_big_snapshot_is_applied_in_bounded_lock_holds() -> None:
    agent = Agent(steps_per_call=100)
    specs = [alias("eth0", f"10.{n // 250}.{n % 250}.1/32") for n in range(1000)]
    calls = agent.gate.calls
    agent.take(snapshot(1, *specs))
    assert agent.gate.calls - calls >= 10  # 1000 steps, at most 100 per lock hold
    assert len(agent.observed()) == 1000


def test_a_change_behind_the_applier_makes_the_next_look_full() -> None:
    agent = Agent()
    agent.take(snapshot(1, alias("eth0", "10.0.0.1/24")))
    assert not agent.applier.changed_behind()
    agent.gate.call(lambda e: e.add_alias("eth1", "10.1.0.1/24"))
    assert agent.applier.changed_behind()
    observed, full = agent.applier.look(["alias/eth0/10.0.0.1"])
    assert full and "alias/eth1/10.1.0.1" in observed


# --- the property, on the real engine ----------------------------------------------------

POOL: list[Spec] = [
    *[alias("eth0", f"10.0.0.{h}/{plen}") for h in (1, 2, 3) for plen in (24, 25)],
    *[alias("eth1", f"10.1.0.{h}/24") for h in (1, 2)],
    *[route(f"10.9.{n}.0/24", gw, ifname) for n in range(3)
      for gw, ifname in (("10.0.0.9", "eth0"), ("10.1.0.9", "eth1"))],
    PolicySpec("multipath"),
]


def _slice(specs: list[Spec]) -> tuple[Spec, ...]:
    """A slice as the controller makes them: a route's gateway is on a subnet of an alias
    the slice gives the route's interface (the controller routes via neighbours on
    shared segments)."""
    import ipaddress

    unique = {spec.key: spec for spec in specs}
    nets = [(a.ifname, ipaddress.IPv4Interface(a.address).network)
            for a in unique.values() if isinstance(a, AliasSpec)]
    return tuple(spec for spec in unique.values() if not isinstance(spec, RouteSpec) or all(
        any(ifname == hop.ifname and ipaddress.IPv4Address(hop.gateway) in net
            for ifname, net in nets) for hop in spec.next_hops))


@settings(max_examples=60)
@given(history=st.lists(st.lists(st.sampled_from(POOL), max_size=8).map(_slice), min_size=1,
                        max_size=5),
       as_updates=st.booleans())
def test_on_the_engine_any_history_ends_where_the_last_slice_alone_would(
        history: list[tuple[Spec, ...]], as_updates: bool) -> None:
    agent = Agent()
    previous: dict[str, Spec] = {}
    for version, specs in enumerate(history, start=1):
        wanted = {spec.key: spec for spec in specs}
        if as_updates and version > 1:  # the same change as an update (upserts, removals)
            changed = [s for k, s in wanted.items() if previous.get(k) != s]
            gone = tuple(k for k in previous if k not in wanted)
            agent.take(VersionUpdate(version, False, items(*changed), removals=gone))
        else:
            agent.take(snapshot(version, *specs))
        previous = wanted
    fresh = Agent()
    fresh.take(snapshot(1, *history[-1]))
    assert agent.observed() == fresh.observed()
    assert agent.state.errors() == fresh.state.errors() == []


def test_the_engines_ecmp_takes_a_multipath_route_and_replaces_it_without_a_gap() -> None:
    engine = new_engine()
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    routes = engine_port.route_installer_for(engine)
    assert isinstance(routes, engine_port.NextHopSetRoutes)
    two = RouteSpec("10.9.0.0/16", (NextHopSpec("10.0.0.2", "eth0"),
                                    NextHopSpec("10.1.0.2", "eth1")))
    assert engine_port.run_step(engine, Step(StepKind.ADD, two.key, two), routes).observed == two
    one = route("10.9.0.0/16", "10.1.0.3", "eth1")
    seq = engine.events.last_seq
    result = engine_port.run_step(engine, Step(StepKind.REPLACE, two.key, one, previous=two),
                                  routes)
    assert result.ok and result.observed == one
    events, _ = engine.events_after(seq)
    assert [e.kind.value for e in events] == ["RTM_CHANGE"]  # never deleted in between
    off_link = route("10.9.0.0/16", "10.7.0.1", "eth1")
    refused = engine_port.run_step(
        engine, Step(StepKind.REPLACE, two.key, off_link, previous=one), routes)
    assert refused.error is not None and refused.error.code == "ENETUNREACH"
    assert refused.observed == one  # nothing changed

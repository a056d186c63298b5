"""The reconciler (agents/sync/reconcile.py): pure plans for every transition.

The "engine" here is a dict of key -> spec that the plan's steps are run
against (:func:`run`), so each rule is checked on plans alone and the
property tests can run thousands of sequences.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.sync.items import AliasSpec, Item, NextHopSpec, PolicySpec, RouteSpec, Spec
from agents.sync.reconcile import (
    Applied,
    Outcome,
    StepKind,
    StepResult,
    commit,
    plan,
)


def alias(ifname: str, address: str, broadcast: str = "") -> AliasSpec:
    return AliasSpec(ifname, address, broadcast)


def route(prefix: str, *gateways: str) -> RouteSpec:
    return RouteSpec(prefix, tuple(NextHopSpec(gw, "eth0") for gw in gateways))


def item(spec: Spec, fingerprint: str = "f1") -> Item:
    return Item(spec.key, spec, fingerprint)


def desired_of(*specs: Spec, fingerprint: str = "f1") -> dict[str, Item]:
    return {spec.key: item(spec, fingerprint) for spec in specs}


def run(engine: dict[str, Spec], steps: object, fail: frozenset[str] = frozenset()) -> Outcome:
    """Run a plan's steps on a dict engine; keys in ``fail`` refuse ADD/REPLACE."""
    from agents.sync.items import ItemError

    outcome = Outcome()
    for step in steps.steps:  # type: ignore[attr-defined]
        if step.kind is StepKind.DELETE:
            engine.pop(step.key, None)
        elif step.key in fail:
            error = ItemError(step.key, "EINVAL", "refused")
            outcome.results.append(StepResult(step, engine.get(step.key), error))
            continue
        else:
            engine[step.key] = step.spec
        outcome.results.append(StepResult(step, engine.get(step.key)))
    return outcome


def converge(desired: dict[str, Item], ledger: dict[str, Applied], engine: dict[str, Spec]
             ) -> dict[str, Applied]:
    steps = plan(desired, ledger, dict(engine))
    return commit(ledger, steps, run(engine, steps))


# --- transitions -------------------------------------------------------------------------


def test_a_first_snapshot_adds_every_item_policy_first_routes_last() -> None:
    desired = desired_of(route("10.9.0.0/16", "10.0.0.2"), alias("eth0", "10.0.0.1/24"),
                         PolicySpec("multipath"))
    steps = plan(desired, {}, {})
    assert [(s.kind, s.key) for s in steps.steps] == [
        (StepKind.ADD, "policy"), (StepKind.ADD, "alias/eth0/10.0.0.1"),
        (StepKind.ADD, "route/10.9.0.0/16")]


def test_applying_the_same_slice_again_plans_nothing() -> None:
    desired = desired_of(alias("eth0", "10.0.0.1/24"), route("10.9.0.0/16", "10.0.0.2"))
    engine: dict[str, Spec] = {}
    ledger = converge(desired, {}, engine)
    again = plan(desired, ledger, dict(engine))
    assert again.empty and not again.conflicts
    assert set(ledger) == set(desired)


def test_a_changed_item_is_replaced_with_the_previous_content_kept_for_undo() -> None:
    old = alias("eth0", "10.0.0.1/24")
    new = alias("eth0", "10.0.0.1/16")
    engine: dict[str, Spec] = {}
    ledger = converge(desired_of(old), {}, engine)
    steps = plan(desired_of(new, fingerprint="f2"), ledger, dict(engine))
    assert [(s.kind, s.spec, s.previous) for s in steps.steps] == [(StepKind.REPLACE, new, old)]


def test_an_item_no_longer_desired_is_deleted_and_forgotten_if_already_gone() -> None:
    a, b = alias("eth0", "10.0.0.1/24"), alias("eth0", "10.0.0.2/24")
    engine: dict[str, Spec] = {}
    ledger = converge(desired_of(a, b), {}, engine)
    del engine[b.key]  # removed behind the agent's back
    steps = plan({}, ledger, dict(engine))
    assert [(s.kind, s.key) for s in steps.steps] == [(StepKind.DELETE, a.key)]
    assert steps.forget == {b.key}
    assert commit(ledger, steps, run(engine, steps)) == {}


def test_deletions_come_before_additions_routes_before_aliases() -> None:
    old_alias, old_route = alias("eth0", "10.0.0.1/24"), route("10.9.0.0/16", "10.0.0.2")
    new_alias = alias("eth1", "10.0.0.1/24")  # the same address moves to eth1
    engine: dict[str, Spec] = {}
    ledger = converge(desired_of(old_alias, old_route), {}, engine)
    steps = plan(desired_of(new_alias, PolicySpec("refuse")), ledger, dict(engine))
    assert [(s.kind, s.key) for s in steps.steps] == [
        (StepKind.DELETE, old_route.key), (StepKind.DELETE, old_alias.key),
        (StepKind.ADD, "policy"), (StepKind.ADD, new_alias.key)]


def test_a_local_item_with_the_same_key_but_other_content_is_a_conflict_and_kept() -> None:
    local = alias("eth0", "10.0.0.1/16")
    engine: dict[str, Spec] = {local.key: local}
    wanted = alias("eth0", "10.0.0.1/24")
    steps = plan(desired_of(wanted), {}, dict(engine))
    assert steps.steps == ()
    assert [(c.key, c.code) for c in steps.conflicts] == [(wanted.key, "EEXIST")]
    assert "configured locally" in steps.conflicts[0].message
    assert "10.0.0.1/16" in steps.conflicts[0].message


def test_a_local_item_that_already_is_what_the_controller_wants_is_adopted_not_taken() -> None:
    local = alias("eth0", "10.0.0.1/24", "10.0.0.255")
    steps = plan(desired_of(alias("eth0", "10.0.0.1/24")), {}, {local.key: local})
    assert steps.steps == () and steps.conflicts == ()
    assert steps.adopted == {local.key}
    # adopted stays local: when the controller drops it, nothing is deleted
    assert commit({}, steps, Outcome()) == {}
    assert plan({}, {}, {local.key: local}).empty


def test_local_items_are_never_deleted_or_replaced() -> None:
    local = {"alias/eth1/10.5.0.1": alias("eth1", "10.5.0.1/24"),
             "route/10.7.0.0/16": route("10.7.0.0/16", "10.5.0.2")}
    steps = plan(desired_of(alias("eth0", "10.0.0.1/24")), {}, local)
    assert all(s.key not in local for s in steps.steps)


def test_a_managed_item_changed_on_the_host_is_drift_and_is_put_back() -> None:
    managed = alias("eth0", "10.0.0.1/24")
    engine: dict[str, Spec] = {}
    desired = desired_of(managed)
    ledger = converge(desired, {}, engine)
    engine[managed.key] = alias("eth0", "10.0.0.1/24", "10.0.0.7")  # changed via the API
    steps = plan(desired, ledger, dict(engine))
    assert steps.drifted == (managed.key,)
    assert [(s.kind, s.spec) for s in steps.steps] == [(StepKind.REPLACE, managed)]
    del engine[managed.key]  # removed via the API
    steps = plan(desired, ledger, dict(engine))
    assert [(s.kind, s.spec) for s in steps.steps] == [(StepKind.ADD, managed)]


def test_a_new_fingerprint_or_display_field_only_relabels_without_touching_the_engine() -> None:
    first = RouteSpec("10.9.0.0/16", (NextHopSpec("10.0.0.2", "eth0"),), hops=2, owner="h3")
    engine: dict[str, Spec] = {}
    ledger = converge(desired_of(first), {}, engine)
    moved = RouteSpec("10.9.0.0/16", (NextHopSpec("10.0.0.2", "eth0"),), hops=3, owner="h4")
    steps = plan(desired_of(moved, fingerprint="f2"), ledger, dict(engine))
    assert steps.steps == ()
    assert [i.spec.owner for i in steps.relabel] == ["h4"]  # type: ignore[union-attr]
    after = commit(ledger, steps, Outcome())
    assert after[first.key].fingerprint == "f2"


def test_next_hop_order_does_not_make_a_route_differ() -> None:
    assert route("10.9.0.0/16", "10.0.0.2", "10.0.0.3") == route("10.9.0.0/16", "10.0.0.3",
                                                                 "10.0.0.2")


def test_a_scoped_plan_looks_only_at_its_keys() -> None:
    a, b = alias("eth0", "10.0.0.1/24"), alias("eth0", "10.0.0.2/24")
    steps = plan(desired_of(a, b), {}, {}, scope={a.key})
    assert [s.key for s in steps.steps] == [a.key]


def test_commit_keeps_the_old_record_when_a_replacement_failed_and_was_undone() -> None:
    old, new = alias("eth0", "10.0.0.1/24"), alias("eth0", "10.0.0.1/16")
    engine: dict[str, Spec] = {}
    ledger = converge(desired_of(old), {}, engine)
    steps = plan(desired_of(new, fingerprint="f2"), ledger, dict(engine))
    after = commit(ledger, steps, run(engine, steps, fail=frozenset({new.key})))
    assert after[new.key].spec == old and engine[new.key] == old
    # a failed add leaves nothing in the ledger
    other = alias("eth0", "10.0.0.9/24")
    steps = plan(desired_of(new, other, fingerprint="f2"), after, dict(engine))
    after2 = commit(after, steps, run(engine, steps, fail=frozenset({other.key})))
    assert other.key not in after2


# --- properties --------------------------------------------------------------------------

IFNAMES = ("eth0", "eth1")
ALIASES = [alias(ifname, f"10.{i}.0.{host}/{plen}")
           for i, ifname in enumerate(IFNAMES) for host in (1, 2, 3) for plen in (16, 24)]
ROUTES = [route(f"10.9.{n}.0/24", gw) for n in range(3) for gw in ("10.0.0.5", "10.1.0.5")]
POLICIES = [PolicySpec(mode) for mode in ("refuse", "multipath")]


def _distinct_keys(specs: list[Spec]) -> dict[str, Item]:
    out: dict[str, Item] = {}
    for spec in specs:
        out[spec.key] = Item(spec.key, spec, f"fp-{hash(spec) & 0xffff}")
    return out


slices = st.lists(st.sampled_from([*ALIASES, *ROUTES, *POLICIES]), max_size=10).map(
    _distinct_keys)
local_items = st.lists(st.sampled_from(
    [alias("eth1", "10.5.0.1/24"), route("10.7.0.0/16", "10.1.0.9"), *ALIASES[:2]]),
    max_size=3).map(lambda specs: {s.key: s for s in specs})


@given(history=st.lists(slices, min_size=1, max_size=6), local=local_items,
       drift=st.lists(st.booleans(), max_size=6))
def test_any_sequence_of_slices_ends_in_the_state_of_the_last_one(
        history: list[dict[str, Item]], local: dict[str, Spec], drift: list[bool]) -> None:
    engine: dict[str, Spec] = dict(local)
    ledger: dict[str, Applied] = {}
    for n, desired in enumerate(history):
        ledger = converge(desired, ledger, engine)
        last_round = n == len(history) - 1
        if not last_round and n < len(drift) and drift[n] and ledger:
            # someone removes a managed item through the Agent API
            engine.pop(sorted(ledger)[0], None)
    last = history[-1]
    for key, spec in local.items():  # local items are untouched, whatever happened
        assert engine[key] == spec
    for key, wanted in last.items():
        if key in local:
            continue  # adopted or a conflict: the local item stays
        assert engine[key] == wanted.spec
        assert ledger[key].spec == wanted.spec
    assert set(engine) == set(local) | set(last)
    # and it is a fixed point: one more round does nothing
    assert plan(last, ledger, dict(engine)).empty


@given(desired=slices, local=local_items)
def test_a_repeated_round_is_a_no_op(desired: dict[str, Item], local: dict[str, Spec]) -> None:
    engine = dict(local)
    ledger = converge(desired, {}, engine)
    before = dict(engine)
    ledger2 = converge(desired, ledger, engine)
    assert engine == before and ledger2 == ledger

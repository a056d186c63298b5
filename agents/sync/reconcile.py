"""The reconciler: desired slice + what the agent applied + what the engine holds -> a plan.

Level-triggered, as controller-runtime's controllers are: the plan depends
only on the three states, never on which messages brought them, so a missed
or repeated message does no harm and applying a plan twice is a no-op the
second time. Pure: no engine, no locks, no clock.

* ``desired`` — the controller's slice (key -> :class:`Item`).
* ``ledger`` — what the agent applied from the controller (key ->
  :class:`Applied`: the spec it applied and what the engine held right
  after). Only ledger items are ever replaced or deleted: anything else in
  the engine was configured locally (through the Agent API) and is left
  alone. A desired item that a local item already satisfies is *adopted*
  (reported applied, still local); one that a different local item holds is
  a conflict (``EEXIST``), and the local item is not overwritten.
* ``observed`` — what the engine holds now (key -> spec), for every key of
  the scope (all keys when the scope is None).

A ledger item whose engine state differs from what was recorded after it was
applied has *drifted* (changed through the Agent API); the plan re-applies it.

Step order: route deletions, alias deletions, the policy, alias additions and
replacements, route additions and replacements — so a same-prefix alias
moving between interfaces leaves before it arrives, the policy is in force
before the aliases it governs, and routes follow the aliases their gateways
sit on.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from agents.sync.items import (
    AliasSpec,
    Item,
    ItemError,
    PolicySpec,
    RouteSpec,
    Spec,
    describe,
    satisfies,
)


class StepKind(enum.Enum):
    ADD = "add"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Step:
    """One idempotent change: install ``spec`` (ADD/REPLACE) or remove it (DELETE).

    ``previous`` (REPLACE) is what the engine holds now, to put back if the
    new content fails, so a failed step leaves the engine as it found it.
    """

    kind: StepKind
    key: str
    spec: Spec
    previous: Spec | None = None
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Applied:
    """A ledger record: what the agent applied for a key, and what the engine held then."""

    spec: Spec
    observed: Spec
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...] = ()
    conflicts: tuple[ItemError, ...] = ()  # desired items held by a different local item
    adopted: frozenset[str] = frozenset()  # desired items a local item already satisfies
    forget: frozenset[str] = frozenset()   # ledger items no longer desired and already gone
    relabel: tuple[Item, ...] = ()         # same engine content, new fingerprint or display
    drifted: tuple[str, ...] = ()          # ledger items the engine no longer holds as applied

    @property
    def empty(self) -> bool:
        return not (self.steps or self.forget or self.relabel)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What running a step did: the engine's state of its key afterwards, and the error."""

    step: Step
    observed: Spec | None
    error: ItemError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class Outcome:
    results: list[StepResult] = field(default_factory=list)

    def errors(self) -> list[ItemError]:
        return [r.error for r in self.results if r.error is not None]


def plan(
    desired: Mapping[str, Item],
    ledger: Mapping[str, Applied],
    observed: Mapping[str, Spec],
    scope: Collection[str] | None = None,
) -> Plan:
    """The steps that bring the engine from ``observed`` to ``desired`` (see the module doc)."""
    keys = set(desired) | set(ledger) if scope is None else set(scope)
    steps: list[Step] = []
    conflicts: list[ItemError] = []
    adopted: set[str] = set()
    forget: set[str] = set()
    relabel: list[Item] = []
    drifted: list[str] = []
    for key in keys:
        want = desired.get(key)
        record = ledger.get(key)
        have = observed.get(key)
        if record is not None and have != record.observed:
            drifted.append(key)
        if want is None:
            if record is None:
                continue
            if have is None:
                forget.add(key)
            else:
                steps.append(Step(StepKind.DELETE, key, have))
            continue
        if record is None:
            if have is None:
                steps.append(Step(StepKind.ADD, key, want.spec, fingerprint=want.fingerprint))
            elif satisfies(want.spec, have):
                adopted.add(key)
            else:
                conflicts.append(local_conflict(want, have))
            continue
        if have is None:
            steps.append(Step(StepKind.ADD, key, want.spec, fingerprint=want.fingerprint))
        elif want.spec != record.spec or have != record.observed:
            steps.append(Step(StepKind.REPLACE, key, want.spec, previous=have,
                              fingerprint=want.fingerprint))
        elif want.fingerprint != record.fingerprint or not _same_display(want.spec,
                                                                          record.spec):
            relabel.append(want)
    steps.sort(key=_step_order)
    conflicts.sort(key=lambda error: error.key)
    return Plan(tuple(steps), tuple(conflicts), frozenset(adopted), frozenset(forget),
                tuple(sorted(relabel, key=lambda item: item.key)), tuple(sorted(drifted)))


def local_conflict(want: Item, have: Spec) -> ItemError:
    return ItemError(
        want.key, "EEXIST",
        f"{describe(want.spec)}: configured locally through the Agent API as "
        f"{describe(have)}; the local item is kept (delete it there to let the "
        "controller apply this one) (EEXIST)",
        want.fingerprint)


def commit(ledger: Mapping[str, Applied], plan: Plan, outcome: Outcome) -> dict[str, Applied]:
    """The ledger after ``outcome``: what the engine now holds from the controller.

    A failed replacement whose previous content was put back keeps its old
    record; one that left nothing behind drops it (the next round adds it
    again).
    """
    after = dict(ledger)
    for key in plan.forget:
        after.pop(key, None)
    for item in plan.relabel:
        record = after.get(item.key)
        if record is not None:
            after[item.key] = replace(record, spec=item.spec, fingerprint=item.fingerprint)
    for result in outcome.results:
        step = result.step
        if result.ok and step.kind is not StepKind.DELETE and result.observed is not None:
            after[step.key] = Applied(step.spec, result.observed, step.fingerprint)
        elif result.ok and step.kind is StepKind.DELETE:
            after.pop(step.key, None)
        elif step.key in after:  # a failed replacement or deletion of a ledger item
            if result.observed is None:
                del after[step.key]
            else:
                after[step.key] = replace(after[step.key], observed=result.observed)
    return after


_PHASES = {
    (StepKind.DELETE, RouteSpec): 0,
    (StepKind.DELETE, AliasSpec): 1,
}


def _step_order(step: Step) -> tuple[int, str]:
    kind = type(step.spec)
    if kind is PolicySpec:
        return 2, step.key
    phase = _PHASES.get((step.kind, kind))
    if phase is None:
        phase = 3 if kind is AliasSpec else 4
    return phase, step.key


def _same_display(a: Spec, b: Spec) -> bool:
    """Equal including the fields that do not reach the engine (a route's owner and hops)."""
    if isinstance(a, RouteSpec) and isinstance(b, RouteSpec):
        return (a.hops, a.owner) == (b.hops, b.owner)
    return True

"""Running observations and plans through the agent's gate.

The gate (:class:`agents.gate.Gate`) is the agent's one locked entry into
the engine; the data-plane loop takes the same lock once per batch. A plan
runs a bounded number of steps per lock hold (:data:`STEPS_PER_CALL`), so a
10,000-item snapshot never stops forwarding for longer than a few hundred
steps take, and each step is whole (a replacement never shows a half state
to the data plane).

The applier also notices changes it did not make: it remembers the engine's
event sequence number after each of its calls, and an address or route event
after that number came from someone else (the Agent API). Then the next look
at the engine is a full one (drift, new local items) rather than one limited
to the keys a version touched.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection
from typing import Any

from agents.sync import engine_port
from agents.sync.engine_port import RouteInstaller
from agents.sync.items import Spec
from agents.sync.reconcile import Outcome, Plan, plan
from agents.sync.state import SyncState

STEPS_PER_CALL = 256
PASSES = 3  # rounds of one reconcile, for steps whose side effects remove other items


class Applier:
    """Observes the engine and runs plans, through ``gate``; one thread uses it."""

    def __init__(self, gate: Any, *, routes: RouteInstaller | None = None,
                 steps_per_call: int = STEPS_PER_CALL) -> None:
        self._gate = gate
        self._routes = routes
        self._steps_per_call = steps_per_call
        self._seen = -1  # engine event seq after our last call; -1: never looked
        self._foreign = False  # someone else changed items between our calls

    def look(self, keys: Collection[str] | None) -> tuple[dict[str, Spec], bool]:
        """The engine's items for ``keys`` (None: all), and whether the look was full.

        It is full whenever ``keys`` is None or the engine changed behind the
        applier's back since its last call.
        """
        def read(engine: Any) -> tuple[dict[str, Spec], bool]:
            full = keys is None or self._stale(engine)
            observed = engine_port.observe(engine, None if full else keys)
            self._seen = engine_port.event_seq(engine)
            self._foreign = False
            return observed, full

        result: tuple[dict[str, Spec], bool] = self._gate.call(read)
        return result

    def changed_behind(self) -> bool:
        """Whether someone else changed items since the applier's last call (cheap)."""
        return bool(self._foreign) or bool(self._gate.call(self._peek))

    def _peek(self, engine: Any) -> bool:
        return self._seen < 0 or engine_port.changed_since(engine, self._seen)

    def _stale(self, engine: Any) -> bool:
        return self._foreign or self._peek(engine)

    def apply(self, plan: Plan) -> Outcome:
        outcome = Outcome()
        steps = plan.steps
        for start in range(0, len(steps), self._steps_per_call):
            chunk = steps[start:start + self._steps_per_call]
            outcome.results.extend(self._gate.call(lambda e, c=chunk: self._run(e, c)))
            if start + self._steps_per_call < len(steps):
                time.sleep(0)  # let the data-plane loop take the lock between chunks
        return outcome

    def _run(self, engine: Any, steps: Any) -> list[Any]:
        if self._seen >= 0 and engine_port.changed_since(engine, self._seen):
            self._foreign = True
        routes = self._routes or engine_port.route_installer_for(engine)
        results = [engine_port.run_step(engine, step, routes) for step in steps]
        self._seen = engine_port.event_seq(engine)
        return results


def reconcile_round(applier: Applier, state: SyncState, touched: Collection[str] | None,
                    *, full: bool = False) -> tuple[Plan, Outcome]:
    """One round: look at the engine, plan against ``state``, apply, record.

    ``touched`` are the keys the folded versions changed (None: all); the
    round also looks at every failed item (retried each round) and at
    everything when ``full`` or when the engine changed behind the applier.

    A step can take more than its own item with it: re-adding or deleting an
    address removes the configured routes through it (in.c, in_ifadown). So a
    round whose plan touched an alias looks again at every route of the slice
    and puts back what went, up to :data:`PASSES` passes; the plan returned is
    all the passes' steps.
    """
    scope = None if full else state.scope(touched)
    passes: list[tuple[Plan, Outcome]] = []
    for _ in range(PASSES):
        observed, looked_at_all = applier.look(scope)
        if looked_at_all:
            scope = None
        steps = plan(state.desired, state.ledger, observed, scope)
        outcome = applier.apply(steps)
        state.record(steps, outcome, observed, scope)
        passes.append((steps, outcome))
        if not any(step.key.startswith("alias/") for step in steps.steps):
            break
        if scope is not None:
            scope = {key for key in (*state.desired, *state.ledger) if key.startswith("route/")}
    return _joined(passes)


def _joined(passes: list[tuple[Plan, Outcome]]) -> tuple[Plan, Outcome]:
    first, _ = passes[0]
    if len(passes) == 1:
        return passes[0]
    steps = tuple(step for each, _ in passes for step in each.steps)
    results = [result for _, outcome in passes for result in outcome.results]
    return dataclasses.replace(first, steps=steps), Outcome(results)

"""What the Sync client knows: the controller's slice, what it applied, what failed.

Pure bookkeeping, no I/O:

* :class:`Assembler` turns the stream's messages into whole versions (a
  snapshot may be chunked: ``more`` set on every message but the last);
* :class:`SyncState` folds versions into the desired slice and records each
  reconcile round (the ledger, the failures, the local items). The client
  drives it: fold -> observe -> :func:`~agents.sync.reconcile.plan` ->
  apply -> :meth:`SyncState.record`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from agents.sync.items import Item, ItemError, Spec
from agents.sync.reconcile import Applied, Outcome, Plan, commit
from agents.sync.wire import parse_item
from vrc.v1 import controller_pb2


class ProtocolError(Exception):
    """The controller broke the Sync protocol; the stream is dropped and redialled."""


@dataclass(frozen=True, slots=True)
class VersionUpdate:
    """One whole version: a snapshot (the entire slice) or an update."""

    version: int
    snapshot: bool
    items: tuple[Item, ...] = ()
    invalid: tuple[ItemError, ...] = ()  # items of the version the agent cannot read
    removals: tuple[str, ...] = ()
    controller: str = ""


class Assembler:
    """Collects the messages of one version until the last (``more`` unset) arrives."""

    def __init__(self) -> None:
        self._head: controller_pb2.SyncResponse | None = None
        self._items: list[Item] = []
        self._invalid: list[ItemError] = []
        self._removals: list[str] = []

    def reset(self) -> None:
        """Forget a partial version (its stream broke)."""
        self._head = None
        self._items, self._invalid, self._removals = [], [], []

    @property
    def partial(self) -> bool:
        return self._head is not None

    def add(self, msg: controller_pb2.SyncResponse) -> VersionUpdate | None:
        head = self._head
        if head is None:
            self._head = head = msg
        elif (msg.version, msg.snapshot) != (head.version, head.snapshot):
            kind = "snapshot" if head.snapshot else "update"
            raise ProtocolError(f"version {msg.version} arrived inside the chunked {kind} "
                                f"of version {head.version}")
        for raw in msg.upserts:
            parsed = parse_item(raw)
            if isinstance(parsed, Item):
                self._items.append(parsed)
            else:
                self._invalid.append(parsed)
        self._removals.extend(msg.removals)
        if msg.more:
            return None
        update = VersionUpdate(head.version, head.snapshot, tuple(self._items),
                               tuple(self._invalid), tuple(self._removals), head.controller)
        self.reset()
        return update


@dataclass(slots=True)
class SyncState:
    """The client's view; see the module docstring."""

    version: int = 0
    controller: str = ""
    desired: dict[str, Item] = field(default_factory=dict)
    invalid: dict[str, ItemError] = field(default_factory=dict)
    ledger: dict[str, Applied] = field(default_factory=dict)
    failures: dict[str, ItemError] = field(default_factory=dict)
    local: dict[str, Spec] = field(default_factory=dict)

    def fold(self, update: VersionUpdate) -> set[str] | None:
        """Take in a version; the keys it touched (None: all of them, a snapshot)."""
        self.version = update.version
        self.controller = update.controller or self.controller
        if update.snapshot:
            self.desired = {item.key: item for item in update.items}
            self.invalid = {error.key: error for error in update.invalid}
            for error in update.invalid:
                self.desired.pop(error.key, None)
            return None
        touched: set[str] = set()
        for key in update.removals:
            self.desired.pop(key, None)
            self.invalid.pop(key, None)
            touched.add(key)
        for item in update.items:
            self.desired[item.key] = item
            self.invalid.pop(item.key, None)
            touched.add(item.key)
        for error in update.invalid:
            self.desired.pop(error.key, None)
            self.invalid[error.key] = error
            touched.add(error.key)
        return touched

    def scope(self, touched: Collection[str] | None) -> set[str] | None:
        """The keys a round must look at: those touched, plus every failed item (they are
        retried at each version: the local item or the missing interface may be gone)."""
        if touched is None:
            return None
        return set(touched) | set(self.failures)

    def record(self, plan: Plan, outcome: Outcome, observed: Mapping[str, Spec],
               scope: Collection[str] | None) -> None:
        """Take in a finished round over ``scope`` (None: everything); ``observed`` is what
        the engine held before the round's steps."""
        self.ledger = commit(self.ledger, plan, outcome)
        after = dict(observed)
        for result in outcome.results:
            if result.observed is None:
                after.pop(result.step.key, None)
            else:
                after[result.step.key] = result.observed
        keys = set(self.desired) | set(self.ledger) | set(self.failures) | set(self.local) \
            if scope is None else set(scope)
        if scope is None:
            keys |= set(after)
        for key in keys:
            self.failures.pop(key, None)
            have = after.get(key)
            if have is not None and key not in self.ledger:
                self.local[key] = have
            else:
                self.local.pop(key, None)
        for error in (*plan.conflicts, *outcome.errors()):
            self.failures[error.key] = error
        for key in [k for k in self.failures if k not in self.desired and k not in self.ledger]:
            del self.failures[key]

    def errors(self) -> list[ItemError]:
        """Every item of the slice not applied, by key."""
        merged = {**self.failures, **self.invalid}
        return [merged[key] for key in sorted(merged)]

    def drift(self, observed: Mapping[str, Spec]) -> list[ItemError]:
        """Ledger items the engine no longer holds as they were applied."""
        found: list[ItemError] = []
        for key in sorted(self.ledger):
            record = self.ledger[key]
            have = observed.get(key)
            if have == record.observed:
                continue
            what = "removed" if have is None else "changed"
            found.append(ItemError(
                key, what.upper(),
                f"{key}: {what} on the host through the Agent API since it was applied; "
                "re-applied with the next version",
                record.fingerprint))
        return found

    def note_local(self, observed: Mapping[str, Spec]) -> None:
        """Refresh the local items from a full observation."""
        self.local = {k: v for k, v in observed.items() if k not in self.ledger}

    def restore(self, version: int, items: Mapping[str, Item], controller: str = "") -> None:
        """Start from a saved snapshot: it is desired, and nothing of it is applied yet
        (the engine of a new agent process is empty)."""
        self.version = version
        self.controller = controller
        self.desired = dict(items)
        self.ledger = {}

    def applied_items(self) -> list[tuple[str, Spec, str]]:
        """What the ledger holds, as ``(key, spec, fingerprint)``, by key (the state file)."""
        return [(key, rec.spec, rec.fingerprint)
                for key, rec in sorted(self.ledger.items())]

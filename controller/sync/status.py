"""What each host's agent has applied, and the fleet watermark.

The record ``status/{host}`` (JSON, schema ``vrc.v1.status``, written by the
replica holding the host's stream) keeps only what cannot be derived: the
version the agent last acknowledged and when, the items it could not apply
(errno name, message, the fingerprint of the content that failed), drift,
and its local items. Every other item of the slice is APPLIED when its
version is at most the acknowledged one and PENDING otherwise — so a
10,000-item slice costs a few hundred bytes of status, not 10,000 entries.

The fleet watermark (OVN's ``nb_cfg``/``hv_cfg``) is the lowest version every
live host has applied, where a host whose slice has not changed since the
version it acknowledged counts as having applied every later one.

Pure functions and values; :mod:`controller.sync.status_writer` does the
coalesced writes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from controller.store import Corrupt
from controller.sync.items import SliceItem
from vrc.v1 import controller_pb2 as pb

SCHEMA = "vrc.v1.status"
MAX_PROBLEMS = 1000  # failed or drifted items kept per host (the rest are counted)


@dataclass(frozen=True, slots=True)
class Problem:
    """An item the agent did not apply (or that drifted): errno name, message, content."""

    key: str
    code: str
    message: str
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class StatusRecord:
    host: str
    controller: str = ""
    applied_version: int = 0
    applied_at: float = 0.0
    failed: tuple[Problem, ...] = ()
    drift: tuple[Problem, ...] = ()
    local_items: tuple[pb.SyncItem, ...] = ()
    problems_dropped: int = 0  # beyond MAX_PROBLEMS

    def failed_by_key(self) -> dict[str, Problem]:
        return {p.key: p for p in self.failed}


def _problems(errors: Iterable[pb.SyncItemError]) -> list[Problem]:
    return [Problem(e.key, e.code, e.message, e.fingerprint) for e in errors]


def from_ack(host: str, controller: str, ack: pb.SyncAck, previous: StatusRecord | None,
             now: float) -> StatusRecord:
    """The record after ``ack``. A report (``ack.report``) says what changed on the host
    for a version already acknowledged: it keeps the applied version and its time."""
    failed, drift = _problems(ack.errors), _problems(ack.drift)
    dropped = max(0, len(failed) - MAX_PROBLEMS) + max(0, len(drift) - MAX_PROBLEMS)
    applied_version, applied_at = ack.version, now
    if ack.report and previous is not None:
        applied_version, applied_at = previous.applied_version, previous.applied_at
    return StatusRecord(host, controller, applied_version, applied_at,
                        tuple(failed[:MAX_PROBLEMS]), tuple(drift[:MAX_PROBLEMS]),
                        tuple(ack.local_items), dropped)


# --- the JSON record -------------------------------------------------------------------------


def _problem_json(problem: Problem) -> dict[str, str]:
    return {"key": problem.key, "code": problem.code, "message": problem.message,
            "fingerprint": problem.fingerprint}


def encode(record: StatusRecord) -> bytes:
    data: dict[str, Any] = {
        "schema": SCHEMA, "host": record.host, "controller": record.controller,
        "applied_version": record.applied_version, "applied_at": record.applied_at,
        "failed": [_problem_json(p) for p in record.failed],
        "drift": [_problem_json(p) for p in record.drift],
        "local_items": [json_format.MessageToDict(i) for i in record.local_items],
        "problems_dropped": record.problems_dropped,
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def decode(key: str, raw: bytes) -> StatusRecord:
    """The record at ``key``; Corrupt naming the key if it is not one vrc writes."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError("not a vrc.v1.status record")
        problems = [tuple(Problem(str(p["key"]), str(p["code"]), str(p["message"]),
                                  str(p.get("fingerprint", ""))) for p in data[name])
                    for name in ("failed", "drift")]
        local = tuple(json_format.ParseDict(item, pb.SyncItem())
                      for item in data.get("local_items", []))
        return StatusRecord(str(data["host"]), str(data.get("controller", "")),
                            int(data["applied_version"]), float(data["applied_at"]),
                            problems[0], problems[1], local,
                            int(data.get("problems_dropped", 0)))
    except (ValueError, KeyError, TypeError, json_format.ParseError) as error:
        raise Corrupt("", "", f"record at {key}: {error}") from None


# --- answers ---------------------------------------------------------------------------------


def item_states(items: Mapping[str, SliceItem], record: StatusRecord | None
                ) -> list[pb.ItemStatus]:
    """Every item of the slice with its state, then failed removals, by key."""
    applied = record.applied_version if record is not None else 0
    failed = record.failed_by_key() if record is not None else {}
    drift = {p.key: p for p in record.drift} if record is not None else {}
    out: list[pb.ItemStatus] = []
    for key in sorted(items):
        item = items[key]
        problem = failed.get(key)
        if problem is not None and problem.fingerprint in ("", item.fingerprint) and (
                item.version <= applied):
            out.append(pb.ItemStatus(key=key, state=pb.ITEM_STATE_FAILED, error=problem.message,
                                     code=problem.code, version=item.version))
        elif item.version > applied:
            out.append(pb.ItemStatus(key=key, state=pb.ITEM_STATE_PENDING, version=item.version))
        elif key in drift:
            out.append(pb.ItemStatus(key=key, state=pb.ITEM_STATE_DRIFT,
                                     error=drift[key].message, code=drift[key].code,
                                     version=item.version))
        else:
            out.append(pb.ItemStatus(key=key, state=pb.ITEM_STATE_APPLIED, version=item.version))
    for key in sorted(set(failed) - set(items)):  # a removal the agent could not do
        problem = failed[key]
        out.append(pb.ItemStatus(key=key, state=pb.ITEM_STATE_FAILED, error=problem.message,
                                 code=problem.code))
    return out


def effective_version(record: StatusRecord | None, changed_at: int, revision: int) -> int:
    """What a host has applied, counting an unchanged slice as caught up to ``revision``."""
    applied = record.applied_version if record is not None else 0
    if record is not None and applied >= changed_at:
        return revision
    return applied


@dataclass(frozen=True, slots=True)
class Fleet:
    watermark: int
    watermark_at: float
    revision: int
    up: tuple[str, ...]
    down: tuple[str, ...]
    lagging: tuple[str, ...]  # live hosts below the revision, slowest first

    def to_pb(self) -> pb.FleetStatus:
        return pb.FleetStatus(watermark=self.watermark, watermark_at=self.watermark_at,
                              revision=self.revision, hosts_up=len(self.up),
                              hosts_down=len(self.down), lagging=list(self.lagging))


def fleet(hosts: Collection[str], live: Collection[str], records: Mapping[str, StatusRecord],
          changed_at: Mapping[str, int], revision: int) -> Fleet:
    """The watermark over the live hosts (the revision itself when none is live).

    ``watermark_at`` is when the slowest hosts acknowledged the version that
    brought them to the watermark (the latest of their ACK times).
    """
    up = tuple(sorted(h for h in hosts if h in live))
    down = tuple(sorted(h for h in hosts if h not in live))
    effective = {h: effective_version(records.get(h), changed_at.get(h, 0), revision)
                 for h in up}
    watermark = min(effective.values(), default=revision)
    slowest = [records[h].applied_at for h in up
               if effective[h] == watermark and h in records]
    lagging = tuple(sorted((h for h in up if effective[h] < revision),
                           key=lambda h: (effective[h], h)))
    return Fleet(watermark, max(slowest, default=0.0), revision, up, down, lagging)


def host_status(host: str, *, up: bool, record: StatusRecord | None,
                items: Mapping[str, SliceItem], desired_version: int, controller: str,
                agent_endpoint: str) -> pb.HostStatus:
    return pb.HostStatus(
        host=host, up=up, applied_version=record.applied_version if record else 0,
        desired_version=desired_version, items=item_states(items, record),
        local_items=list(record.local_items) if record else [], controller=controller,
        agent_endpoint=agent_endpoint, applied_at=record.applied_at if record else 0.0)


def newer(a: StatusRecord | None, b: StatusRecord | None) -> StatusRecord | None:
    """Of two records of one host, the one that says more recent things."""
    if a is None or b is None:
        return a or b
    return a if (a.applied_at, a.applied_version) >= (b.applied_at, b.applied_version) else b



"""Status bookkeeping (controller/sync/status.py): item states, the record, the watermark."""

from __future__ import annotations

import pytest

from controller.store import Corrupt
from controller.sync import status as st
from controller.sync.items import SliceItem
from vrc.v1 import controller_pb2 as pb


def item(key: str, fingerprint: str, version: int) -> SliceItem:
    return SliceItem(key, fingerprint, version, pb.SyncItem(key=key, fingerprint=fingerprint))


SLICE = {
    "alias/eth1/10.0.0.1": item("alias/eth1/10.0.0.1", "a1", 10),
    "alias/eth9/10.9.0.1": item("alias/eth9/10.9.0.1", "b1", 12),
    "route/10.99.0.0/24": item("route/10.99.0.0/24", "r2", 20),
    "policy": item("policy", "p1", 5),
}


def ack(version: int, *errors: tuple[str, str, str], report: bool = False,
        drift: tuple[str, ...] = ()) -> pb.SyncAck:
    return pb.SyncAck(version=version, report=report, errors=[
        pb.SyncItemError(key=k, code=c, message=f"{k}: failed ({c})", fingerprint=f)
        for k, c, f in errors], drift=[pb.SyncItemError(key=k, code="REMOVED", message="gone")
                                        for k in drift])


def states(record: st.StatusRecord | None) -> dict[str, str]:
    return {i.key: pb.ItemState.Name(i.state) for i in st.item_states(SLICE, record)}


def test_an_ack_marks_everything_up_to_its_version_applied_and_later_items_pending() -> None:
    record = st.from_ack("h1", "c1", ack(15), None, now=100.0)
    assert states(record) == {
        "alias/eth1/10.0.0.1": "ITEM_STATE_APPLIED", "alias/eth9/10.9.0.1": "ITEM_STATE_APPLIED",
        "policy": "ITEM_STATE_APPLIED", "route/10.99.0.0/24": "ITEM_STATE_PENDING"}
    assert states(None) == dict.fromkeys(SLICE, "ITEM_STATE_PENDING")


def test_a_nack_marks_the_failed_item_with_its_error_and_the_rest_applied() -> None:
    record = st.from_ack("h1", "c1", ack(20, ("alias/eth9/10.9.0.1", "ENXIO", "b1")), None, 1.0)
    found = {i.key: i for i in st.item_states(SLICE, record)}
    failed = found["alias/eth9/10.9.0.1"]
    assert failed.state == pb.ITEM_STATE_FAILED and failed.code == "ENXIO"
    assert "failed (ENXIO)" in failed.error and failed.version == 12
    assert {k: i.state for k, i in found.items() if k != failed.key} == dict.fromkeys(
        ["alias/eth1/10.0.0.1", "policy", "route/10.99.0.0/24"], pb.ITEM_STATE_APPLIED)


def test_a_failed_item_whose_content_changed_since_is_pending_not_failed() -> None:
    record = st.from_ack("h1", "c1", ack(20, ("alias/eth9/10.9.0.1", "ENXIO", "b0")), None, 1.0)
    newer = dict(SLICE, **{"alias/eth9/10.9.0.1": item("alias/eth9/10.9.0.1", "b2", 25)})
    assert {i.key: i.state for i in st.item_states(newer, record)}[
        "alias/eth9/10.9.0.1"] == pb.ITEM_STATE_PENDING


def test_drift_shows_until_the_next_ack_without_it() -> None:
    first = st.from_ack("h1", "c1", ack(20), None, 1.0)
    report = st.from_ack("h1", "c1", ack(20, report=True, drift=("alias/eth1/10.0.0.1",)),
                         first, 2.0)
    assert states(report)["alias/eth1/10.0.0.1"] == "ITEM_STATE_DRIFT"
    assert (report.applied_version, report.applied_at) == (20, 1.0)  # a report is no new ACK
    repaired = st.from_ack("h1", "c1", ack(21), report, 3.0)
    assert states(repaired)["alias/eth1/10.0.0.1"] == "ITEM_STATE_APPLIED"


def test_a_failed_removal_is_listed_too() -> None:
    record = st.from_ack("h1", "c1", ack(20, ("route/10.7.0.0/16", "EBUSY", "x")), None, 1.0)
    found = {i.key: i for i in st.item_states(SLICE, record)}
    assert found["route/10.7.0.0/16"].state == pb.ITEM_STATE_FAILED


def test_the_record_round_trips_through_its_json_and_refuses_garbage() -> None:
    local = pb.SyncItem(key="alias/eth3/10.5.0.1",
                        alias=pb.Alias(ifname="eth3", address="10.5.0.1/24"))
    record = st.from_ack("h1", "c1", pb.SyncAck(
        version=9, errors=[pb.SyncItemError(key="k", code="EEXIST", message="m",
                                            fingerprint="f")],
        local_items=[local]), None, 12.5)
    assert st.decode("/vrc/v1/status/h1", st.encode(record)) == record
    assert b'"schema":"vrc.v1.status"' in st.encode(record)
    with pytest.raises(Corrupt, match="/vrc/v1/status/h1"):
        st.decode("/vrc/v1/status/h1", b'{"schema":"vrc.v1.status"}')
    with pytest.raises(Corrupt, match="/vrc/v1/status/h1"):
        st.decode("/vrc/v1/status/h1", b"\xff")


def test_too_many_problems_are_counted_not_kept() -> None:
    errors = [(f"k{n}", "EINVAL", "f") for n in range(st.MAX_PROBLEMS + 5)]
    record = st.from_ack("h1", "c1", ack(3, *errors), None, 1.0)
    assert len(record.failed) == st.MAX_PROBLEMS and record.problems_dropped == 5


# --- the fleet watermark ---------------------------------------------------------------------


def rec(host: str, version: int, at: float) -> st.StatusRecord:
    return st.StatusRecord(host, "c1", version, at)


def test_the_watermark_is_the_lowest_version_the_live_hosts_applied() -> None:
    records = {"h1": rec("h1", 50, 1.0), "h2": rec("h2", 40, 2.0), "h3": rec("h3", 10, 9.0)}
    changed = {"h1": 50, "h2": 45, "h3": 30}
    fleet = st.fleet(["h1", "h2", "h3"], {"h1", "h2"}, records, changed, revision=60)
    # h1 is caught up (its slice last changed at 50): it counts as 60; h3 is down
    assert (fleet.watermark, fleet.watermark_at) == (40, 2.0)
    assert fleet.lagging == ("h2",) and fleet.down == ("h3",)
    pb_fleet = fleet.to_pb()
    assert (pb_fleet.hosts_up, pb_fleet.hosts_down, pb_fleet.revision) == (2, 1, 60)


def test_a_fleet_that_has_applied_everything_is_at_the_revision() -> None:
    records = {"h1": rec("h1", 50, 1.0), "h2": rec("h2", 45, 3.0)}
    fleet = st.fleet(["h1", "h2"], {"h1", "h2"}, records, {"h1": 50, "h2": 45}, 70)
    assert (fleet.watermark, fleet.watermark_at, fleet.lagging) == (70, 3.0, ())


def test_a_live_host_that_never_acknowledged_holds_the_watermark_at_zero() -> None:
    fleet = st.fleet(["h1", "h2"], {"h1", "h2"}, {"h1": rec("h1", 50, 1.0)},
                     {"h1": 50, "h2": 44}, 70)
    assert fleet.watermark == 0 and fleet.lagging == ("h2",)

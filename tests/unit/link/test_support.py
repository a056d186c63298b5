"""The data link layer test harness itself."""

from __future__ import annotations

from router.events import EventKind
from tests.unit.link.support import Harness


def test_harness_attaches_an_ethernet_interface_with_index_one() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    assert ifp.index == 1
    assert h.kinds() == [EventKind.IF_ATTACHED]
    assert driver.events[0].kind is EventKind.IF_ATTACHED

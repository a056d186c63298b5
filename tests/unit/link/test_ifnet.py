"""Interface objects: defaults, flags, counters, lifecycle states."""

from __future__ import annotations

import dataclasses

from router.link.ifnet import (
    IfCounters,
    IfFlags,
    IfState,
    Interface,
    LinkAddress,
    LinkState,
)


def test_new_interface_is_embryonic_in_use_without_index() -> None:
    ifp = Interface("eth0", unit=0)
    assert ifp.state is IfState.EMBRYONIC and ifp.in_use and not ifp.reused
    assert ifp.index == 0 and ifp.ioref == 0 and ifp.link_state is LinkState.UNKNOWN
    assert ifp.addresses == [] and ifp.filters == () and ifp.protocols == {}
    assert ifp.demux_table == {}


def test_only_attached_interface_accepts_io() -> None:
    ifp = Interface("eth0")
    for state in IfState:
        ifp.state = state
        assert ifp.attached is (state is IfState.ATTACHED)


def test_lifecycle_has_a_released_state() -> None:
    assert IfState.RELEASED.value == "released"
    assert {s.name for s in IfState} == {"EMBRYONIC", "ATTACHED", "DETACHING", "DETACHED",
                                         "RELEASED"}


def test_is_up_follows_the_up_flag() -> None:
    ifp = Interface("eth0", flags=IfFlags.BROADCAST)
    assert not ifp.is_up
    ifp.flags |= IfFlags.UP
    assert ifp.is_up


def test_counters_reset_clears_every_counter() -> None:
    counters = IfCounters()
    for f in dataclasses.fields(counters):
        setattr(counters, f.name, 7)
    counters.reset()
    assert set(counters.as_dict().values()) == {0}
    assert len(counters.as_dict()) == len(dataclasses.fields(counters))


def test_interface_has_no_instance_dict() -> None:
    ifp = Interface("eth0")
    assert not hasattr(ifp, "__dict__")
    assert not hasattr(LinkAddress(b"", "eth0", 1), "__dict__")


def test_repr_names_interface_index_and_state() -> None:
    ifp = Interface("eth0")
    assert repr(ifp) == "<Interface eth0 index=0 embryonic>"

"""ngN constructor and shutdown (ng_iface_constructor, ng_iface_shutdown): units, attach."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.errors import EEXIST, ENXIO, RouterError
from router.events import EventKind
from router.link.ifnet import IfFamily, IfFlags, IfState, IfType
from router.ng.iface import (
    NG_IFACE_MTU_DEFAULT,
    NG_IFACE_UNIT_MAX,
    PointToPointFamily,
)
from tests.unit.ng.support import RecordingPeer, make_bench


def test_create_takes_first_free_unit_and_names_it_ngN() -> None:
    bench = make_bench()
    names = [bench.ngs.create().name for _ in range(3)]
    assert names == ["ng0", "ng1", "ng2"]
    assert [ifp.unit for ifp in bench.ngs.interfaces()] == [0, 1, 2]


def test_created_interface_is_point_to_point_virtual_without_link_header() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert ifp.type is IfType.PROPVIRTUAL
    assert ifp.family is IfFamily.NETGRAPH
    assert ifp.flags == IfFlags.SIMPLEX | IfFlags.POINTOPOINT | IfFlags.NOARP | IfFlags.MULTICAST
    assert (ifp.mtu, ifp.addrlen, ifp.hdrlen, ifp.lladdr) == (NG_IFACE_MTU_DEFAULT, 0, 0, b"")
    assert ifp.state is IfState.ATTACHED
    assert isinstance(ifp.family_module, PointToPointFamily)
    assert bench.dl.lookup("ng0") is ifp
    assert bench.dl.lookup(ifp.index) is ifp


def test_create_attaches_through_datalink_and_posts_if_attached() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert [(e.kind, e.ifname) for e in bench.events] == [(EventKind.IF_ATTACHED, ifp.name)]


def test_shutdown_releases_unit_for_reuse() -> None:
    bench = make_bench()
    ng0, ng1, ng2 = (bench.ngs.create() for _ in range(3))
    index = ng1.index
    bench.ngs.shutdown(ng1)
    again = bench.ngs.create()
    assert again.name == "ng1"
    # same unique id: the data link layer recycles the very interface and its index
    assert again is ng1 and again.index == index and again.reused
    assert bench.ngs.create().name == "ng3"
    assert {ng0.name, ng2.name} == {"ng0", "ng2"}


def test_lowest_released_unit_is_reused_first() -> None:
    bench = make_bench()
    ifps = [bench.ngs.create() for _ in range(5)]
    bench.ngs.shutdown(ifps[3])
    bench.ngs.shutdown(ifps[1])
    assert [bench.ngs.create().name for _ in range(3)] == ["ng1", "ng3", "ng5"]


def test_shutdown_detaches_and_releases_the_interface() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.events.clear()
    bench.ngs.shutdown(ifp)
    assert bench.dl.lookup("ng0") is None
    assert ifp.state is IfState.RELEASED
    assert bench.ngs.interfaces() == []
    kinds = [e.kind for e in bench.events]
    assert kinds[0] is EventKind.IF_DETACHING and kinds[-1] is EventKind.IF_DETACHED


def test_shutdown_twice_is_enxio() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.ngs.shutdown(ifp)
    with pytest.raises(RouterError) as caught:
        bench.ngs.shutdown(ifp)
    assert caught.value.errno == ENXIO


def test_shutdown_cuts_every_hook_and_tells_the_peers() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    inet, inet6 = RecordingPeer(), RecordingPeer()
    hooks = [bench.ngs.connect(ifp, "inet", inet), bench.ngs.connect(ifp, "inet6", inet6)]
    bench.ngs.shutdown(ifp)
    assert (inet.cut, inet6.cut) == (1, 1)
    assert not any(hook.connected for hook in hooks)


def test_shutdown_closes_the_taps_on_the_interface() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    tap = bench.taps.open(ifp)
    bench.ngs.shutdown(ifp)
    assert tap.closed
    assert not bench.taps.is_tapped(ifp)


def test_name_taken_by_another_interface_is_eexist_and_gives_the_unit_back() -> None:
    bench = make_bench()
    squatter = bench.dl.acquire(IfFamily.ETHERNET, b"eth-ng0", name="ng0")
    bench.dl.attach(squatter, b"\x02\x00\x00\x00\x00\x01", PointToPointFamily(bench.ngs),
                    bench.ngs.driver)
    with pytest.raises(RouterError) as caught:
        bench.ngs.create()
    assert caught.value.errno == EEXIST
    assert bench.ngs.interfaces() == []
    # the unit went back: the next attempt wants ng0 again, and fails the same way
    with pytest.raises(RouterError):
        bench.ngs.create()


def test_unit_space_ends_at_0xffff_with_enospc() -> None:
    bench = make_bench()
    bench.ngs._next_unit = NG_IFACE_UNIT_MAX  # skip creating 65535 interfaces
    assert bench.ngs.create().name == f"ng{NG_IFACE_UNIT_MAX}"
    with pytest.raises(RouterError) as caught:
        bench.ngs.create()
    assert caught.value.errno == errno.ENOSPC


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.just(-1), st.integers(0, 7)), max_size=25))
def test_create_always_takes_the_lowest_free_unit(steps: list[int]) -> None:
    """-1 creates; n shuts down the n-th live interface (if there is one)."""
    bench = make_bench()
    used: set[int] = set()
    for step in steps:
        live = bench.ngs.interfaces()
        if step < 0:
            expected = min(set(range(len(used) + 1)) - used)
            ifp = bench.ngs.create()
            assert ifp.unit == expected and ifp.name == f"ng{expected}"
            used.add(expected)
        elif step < len(live):
            bench.ngs.shutdown(live[step])
            used.discard(live[step].unit)
        assert {ifp.unit for ifp in bench.ngs.interfaces()} == used
        assert len({ifp.index for ifp in bench.ngs.interfaces()}) == len(used)

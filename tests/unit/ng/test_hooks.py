"""ngN hooks (ng_iface_newhook, ng_iface_disconnect) and the in-memory back-to-back link."""

from __future__ import annotations

import pytest

from router.errors import EINVAL, EISCONN, ENXIO, EPFNOSUPPORT, RouterError
from router.link.ifnet import AF_INET, AF_INET6
from router.ng.backtoback import link_back_to_back
from router.ng.hooks import family_of_hook, hook_of_family
from tests.unit.ng.support import RecordingPeer, ipv4_packet, make_bench


def test_hook_names_map_to_families_and_back() -> None:
    assert (family_of_hook("inet"), family_of_hook("inet6")) == (AF_INET, AF_INET6)
    assert family_of_hook("atalk") is None
    assert (hook_of_family(AF_INET), hook_of_family(AF_INET6), hook_of_family(7)) == (
        "inet", "inet6", None)


@pytest.mark.parametrize("name", ["atalk", "ipx", "INET", ""])
def test_unknown_hook_name_is_epfnosupport(name: str) -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    with pytest.raises(RouterError) as caught:
        bench.ngs.connect(ifp, name, RecordingPeer())
    assert caught.value.errno == EPFNOSUPPORT
    assert caught.value.field == "hook"


def test_second_connection_to_inet_hook_is_eisconn() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    first = bench.ngs.connect(ifp, "inet", RecordingPeer())
    with pytest.raises(RouterError) as caught:
        bench.ngs.connect(ifp, "inet", RecordingPeer())
    assert caught.value.errno == EISCONN
    assert bench.ngs.hook(ifp, "inet") is first


def test_inet_and_inet6_hooks_are_separate_slots() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    inet = bench.ngs.connect(ifp, "inet", RecordingPeer())
    inet6 = bench.ngs.connect(ifp, "inet6", RecordingPeer())
    assert (inet.family, inet6.family) == (AF_INET, AF_INET6)
    assert bench.ngs.hook(ifp, "inet6") is inet6


def test_connect_to_interface_that_is_shut_down_is_enxio() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.ngs.shutdown(ifp)
    with pytest.raises(RouterError) as caught:
        bench.ngs.connect(ifp, "inet", RecordingPeer())
    assert caught.value.errno == ENXIO


def test_disconnect_clears_the_hook_and_keeps_the_interface() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    peer = RecordingPeer()
    hook = bench.ngs.connect(ifp, "inet", peer)
    bench.ngs.disconnect(hook)
    assert not hook.connected and peer.cut == 1
    assert bench.ngs.hook(ifp, "inet") is None
    assert bench.dl.lookup("ng0") is ifp  # no shutdown when the last hook goes
    assert bench.ngs.connect(ifp, "inet", RecordingPeer()).connected


def test_disconnecting_a_hook_twice_is_einval() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    hook = bench.ngs.connect(ifp, "inet", RecordingPeer())
    bench.ngs.disconnect(hook)
    with pytest.raises(RouterError) as caught:
        bench.ngs.disconnect(hook)
    assert caught.value.errno == EINVAL


def test_back_to_back_link_carries_packets_both_ways() -> None:
    bench = make_bench()
    ng0, ng1 = bench.ngs.create(), bench.ngs.create()
    bench.up(ng0)
    bench.up(ng1)
    link_back_to_back(bench.ngs, ng0, bench.ngs, ng1)
    there, back = ipv4_packet("10.0.0.1", "10.0.0.2"), ipv4_packet("10.0.0.2", "10.0.0.1")
    assert bench.ngs.output(ng0, AF_INET, there) == 0
    assert bench.ngs.output(ng1, AF_INET, back) == 0
    assert [(ifp.name, family, pkt) for ifp, family, pkt in bench.delivered] == [
        ("ng1", AF_INET, there), ("ng0", AF_INET, back)]


def test_back_to_back_link_joins_two_engines() -> None:
    left, right = make_bench(), make_bench()
    a, b = left.ngs.create(), right.ngs.create()
    left.up(a)
    right.up(b)
    link_back_to_back(left.ngs, a, right.ngs, b)
    assert left.ngs.output(a, AF_INET, ipv4_packet()) == 0
    assert [(ifp is b, pkt) for ifp, _, pkt in right.delivered] == [(True, ipv4_packet())]
    assert left.delivered == []


def test_cutting_one_end_of_a_link_cuts_both() -> None:
    bench = make_bench()
    ng0, ng1 = bench.ngs.create(), bench.ngs.create()
    left, right = link_back_to_back(bench.ngs, ng0, bench.ngs, ng1)
    bench.ngs.disconnect(right)
    assert not left.connected and not right.connected
    assert bench.ngs.hook(ng0, "inet") is None


def test_link_to_an_occupied_hook_is_eisconn_and_leaves_nothing_behind() -> None:
    bench = make_bench()
    ng0, ng1 = bench.ngs.create(), bench.ngs.create()
    bench.ngs.connect(ng1, "inet", RecordingPeer())
    with pytest.raises(RouterError) as caught:
        link_back_to_back(bench.ngs, ng0, bench.ngs, ng1)
    assert caught.value.errno == EISCONN
    assert bench.ngs.hook(ng0, "inet") is None

"""ngN configuration: ng_iface_ioctl (through DataLink.ioctl) and ng_iface_rcvmsg."""

from __future__ import annotations

import pytest

from router.contracts import IoctlCmd
from router.errors import EBUSY, EINVAL, ENXIO, EOPNOTSUPP, RouterError
from router.events import EventKind
from router.link.ifnet import AF_INET, IfFlags, LinkState
from router.ng.control import (
    NG_IFACE_MTU_MAX,
    NG_IFACE_MTU_MIN,
    FlowCommand,
    IfaceCommand,
    MessageCookie,
)
from tests.unit.ng.support import make_bench

# -- ng_iface_ioctl --------------------------------------------------------


def test_siocsifaddr_marks_up_and_running() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    ifp.flags |= IfFlags.OACTIVE
    assert bench.dl.ioctl(ifp, AF_INET, IoctlCmd.SIOCSIFADDR, None) == 0
    assert ifp.flags & (IfFlags.UP | IfFlags.RUNNING) == IfFlags.UP | IfFlags.RUNNING
    assert not ifp.flags & IfFlags.OACTIVE


def test_siocgifaddr_is_accepted_and_changes_nothing() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    flags = ifp.flags
    assert bench.dl.ioctl(ifp, AF_INET, IoctlCmd.SIOCGIFADDR, None) == 0
    assert ifp.flags == flags


def test_siocsifflags_with_up_starts_and_without_up_stops() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.dl.ioctl(ifp, 0, IoctlCmd.SIOCSIFFLAGS, int(IfFlags.UP)) == 0
    assert ifp.flags & IfFlags.RUNNING
    ifp.flags |= IfFlags.OACTIVE
    assert bench.dl.ioctl(ifp, 0, IoctlCmd.SIOCSIFFLAGS, 0) == 0
    assert not ifp.flags & (IfFlags.RUNNING | IfFlags.OACTIVE)


def test_siocsifflags_without_a_flag_word_is_einval() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.dl.ioctl(ifp, 0, IoctlCmd.SIOCSIFFLAGS, None) == EINVAL


def test_set_up_and_down_moves_up_and_running_together() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.ngs.set_up(ifp, True) == 0
    assert ifp.flags & IfFlags.UP and ifp.flags & IfFlags.RUNNING
    assert bench.ngs.set_up(ifp, False) == 0
    assert not ifp.flags & (IfFlags.UP | IfFlags.RUNNING)


@pytest.mark.parametrize("mtu", [NG_IFACE_MTU_MIN, 1280, 9000, NG_IFACE_MTU_MAX])
def test_mtu_within_bounds_is_set(mtu: int) -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.dl.ioctl(ifp, 0, IoctlCmd.SIOCSIFMTU, mtu) == 0
    assert ifp.mtu == mtu


@pytest.mark.parametrize("mtu", [NG_IFACE_MTU_MIN - 1, 0, -1, NG_IFACE_MTU_MAX + 1, "1500"])
def test_mtu_outside_bounds_is_einval(mtu: object) -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.dl.ioctl(ifp, 0, IoctlCmd.SIOCSIFMTU, mtu) == EINVAL
    assert ifp.mtu == 1500


@pytest.mark.parametrize("cmd", [IoctlCmd.SIOCADDMULTI, IoctlCmd.SIOCDELMULTI])
def test_multicast_add_and_delete_are_accepted(cmd: IoctlCmd) -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.dl.ioctl(ifp, 0, cmd, b"\x01\x00\x5e\x00\x00\x01") == 0


def test_siocsifphys_is_eopnotsupp() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.dl.ioctl(ifp, 0, IoctlCmd.SIOCSIFPHYS, 1) == EOPNOTSUPP


@pytest.mark.parametrize("cmd", [IoctlCmd.SIOCGIFMTU, IoctlCmd.SIOCSIFLLADDR,
                                 IoctlCmd.SIOCAIFADDR, 999])
def test_any_other_ioctl_is_einval(cmd: int) -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.dl.ioctl(ifp, 0, cmd, None) == EINVAL


# -- ng_iface_rcvmsg -------------------------------------------------------


def test_get_name_and_get_index_answer_for_the_interface() -> None:
    bench = make_bench()
    bench.ngs.create()
    ifp = bench.ngs.create()
    assert bench.ngs.message(ifp, MessageCookie.IFACE, IfaceCommand.GET_IFNAME) == "ng1"
    assert bench.ngs.message(ifp, MessageCookie.IFACE, IfaceCommand.GET_IFINDEX) == ifp.index


@pytest.mark.parametrize("cmd", [IfaceCommand.POINT2POINT, IfaceCommand.BROADCAST])
def test_point2point_switch_while_up_is_ebusy(cmd: IfaceCommand) -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.up(ifp)
    flags = ifp.flags
    with pytest.raises(RouterError) as caught:
        bench.ngs.message(ifp, MessageCookie.IFACE, cmd)
    assert caught.value.errno == EBUSY
    assert ifp.flags == flags


def test_broadcast_and_point2point_swap_the_mode_flags_while_down() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.events.clear()
    assert bench.ngs.message(ifp, MessageCookie.IFACE, IfaceCommand.BROADCAST) is None
    assert ifp.flags & IfFlags.BROADCAST and not ifp.flags & IfFlags.POINTOPOINT
    assert bench.ngs.message(ifp, MessageCookie.IFACE, IfaceCommand.POINT2POINT) is None
    assert ifp.flags & IfFlags.POINTOPOINT and not ifp.flags & IfFlags.BROADCAST
    assert [e.kind for e in bench.events] == [EventKind.IF_FLAGS_CHANGED] * 2


def test_link_up_and_down_messages_set_the_link_state() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.events.clear()
    assert bench.ngs.message(ifp, MessageCookie.FLOW, FlowCommand.LINK_IS_UP) is None
    assert ifp.link_state is LinkState.UP
    bench.ngs.message(ifp, "flow", FlowCommand.LINK_IS_DOWN)
    assert ifp.link_state is LinkState.DOWN
    assert [e.kind for e in bench.events] == [EventKind.LINK_UP, EventKind.LINK_DOWN]


def test_unknown_flow_message_is_ignored() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    assert bench.ngs.message(ifp, MessageCookie.FLOW, 77) is None
    assert ifp.link_state is LinkState.UNKNOWN


def test_unknown_iface_message_is_einval() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    with pytest.raises(RouterError) as caught:
        bench.ngs.message(ifp, MessageCookie.IFACE, 99)
    assert caught.value.errno == EINVAL


def test_message_with_unknown_cookie_is_einval() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    with pytest.raises(RouterError) as caught:
        bench.ngs.message(ifp, "ksocket", IfaceCommand.GET_IFNAME)
    assert caught.value.errno == EINVAL
    assert caught.value.field == "cookie"


def test_message_to_shut_down_interface_is_enxio() -> None:
    bench = make_bench()
    ifp = bench.ngs.create()
    bench.ngs.shutdown(ifp)
    with pytest.raises(RouterError) as caught:
        bench.ngs.message(ifp, MessageCookie.IFACE, IfaceCommand.GET_IFNAME)
    assert caught.value.errno == ENXIO

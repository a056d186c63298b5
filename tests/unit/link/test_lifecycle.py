"""Interface lifecycle: acquire/release/recycle, attach, detach, final detach, I/O references."""

from __future__ import annotations

from typing import Any

import pytest

from router.contracts import InterfaceFilter, IoctlCmd, Packet
from router.errors import (
    EBUSY,
    EEXIST,
    EINVAL,
    EJUSTRETURN,
    ENODEV,
    ENXIO,
    EOPNOTSUPP,
    RouterError,
)
from router.events import EventKind
from router.link.datalink import DataLink
from router.link.ifnet import (
    AF_INET,
    AF_LINK,
    IfFamily,
    IfFlags,
    IfState,
    Interface,
    LinkAddress,
    LinkState,
)
from router.link.io import LinkDrop
from router.link.lifecycle import REFUSALS, TRANSITIONS, LifeEvent, next_state, refusal
from router.link.stubs import DETACHED_DRIVER, DETACHED_FAMILY
from tests.unit.link.support import (
    AF_TEST,
    ETHERTYPE_TEST,
    MAC_A,
    MAC_B,
    FakeInetAddr,
    Harness,
    RecordingDriver,
    eth_frame,
    make_proto,
    recording_filter,
)

# -- the transition table, walked -------------------------------------------


def _bring_to(h: Harness, state: IfState) -> Interface:
    dl = h.dl
    ifp = dl.acquire(IfFamily.ETHERNET, b"uid-1", name="eth0", addrlen=6)
    if state is IfState.EMBRYONIC:
        return ifp
    if state is IfState.RELEASED:
        dl.release(ifp)
        return ifp
    dl.attach(ifp, MAC_A, h.ether, RecordingDriver())
    if state is IfState.ATTACHED:
        return ifp
    dl.detach(ifp)
    if state is IfState.DETACHING:
        return ifp
    dl.run_deferred()
    assert ifp.state is IfState.DETACHED
    return ifp


def _apply(h: Harness, ifp: Interface, event: LifeEvent) -> Interface:
    dl = h.dl
    if event is LifeEvent.ACQUIRE:
        return dl.acquire(IfFamily.ETHERNET, b"uid-1", name="eth0", addrlen=6)
    if event is LifeEvent.ATTACH:
        dl.attach(ifp, MAC_A, h.ether, RecordingDriver())
    elif event is LifeEvent.DETACH:
        dl.detach(ifp)
    elif event is LifeEvent.FINAL_DETACH:
        dl.detach_final(ifp)
    else:
        dl.release(ifp)
    return ifp


ALL_PAIRS = [(state, event) for state in IfState for event in LifeEvent]


@pytest.mark.parametrize(("state", "event"), sorted(TRANSITIONS, key=str))
def test_every_allowed_transition_reaches_its_next_state(state: IfState, event: LifeEvent) -> None:
    h = Harness()
    ifp = _bring_to(h, state)
    after = _apply(h, ifp, event)
    assert after is ifp
    assert ifp.state is TRANSITIONS[(state, event)]


@pytest.mark.parametrize(
    ("state", "event"), [pair for pair in ALL_PAIRS if pair not in TRANSITIONS])
def test_every_refused_transition_raises_its_errno_and_changes_nothing(
    state: IfState, event: LifeEvent
) -> None:
    h = Harness()
    ifp = _bring_to(h, state)
    before = len(h.events)
    with pytest.raises(RouterError) as info:
        _apply(h, ifp, event)
    assert info.value.errno == refusal(state, event) == REFUSALS.get((state, event), EINVAL)
    assert ifp.state is state
    assert len(h.events) == before


def test_next_state_names_the_state_in_its_error() -> None:
    with pytest.raises(RouterError) as info:
        next_state(IfState.DETACHING, LifeEvent.DETACH, "eth0")
    assert info.value.errno == ENXIO
    assert info.value.field == "state" and info.value.value == "detaching"
    assert "eth0" in str(info.value)


# -- acquire / release / recycle --------------------------------------------


def test_acquire_in_use_id_is_ebusy() -> None:
    dl = DataLink()
    dl.acquire(IfFamily.ETHERNET, b"nic-1", name="eth0")
    with pytest.raises(RouterError) as info:
        dl.acquire(IfFamily.ETHERNET, b"nic-1", name="eth9")
    assert info.value.errno == EBUSY


def test_acquire_same_id_in_another_family_is_a_new_interface() -> None:
    dl = DataLink()
    a = dl.acquire(IfFamily.ETHERNET, b"x", name="eth0")
    b = dl.acquire(IfFamily.NETGRAPH, b"x", name="ng0")
    assert a is not b


def test_acquire_empty_id_never_conflicts() -> None:
    dl = DataLink()
    a = dl.acquire(IfFamily.ETHERNET, b"", name="eth0")
    b = dl.acquire(IfFamily.ETHERNET, b"", name="eth1")
    assert a is not b


def test_released_interface_is_reused_with_same_object_and_index() -> None:
    h = Harness()
    ifp, _ = h.ethernet("eth0", uid=b"nic-1")
    h.ethernet("eth1", MAC_B, uid=b"nic-2")
    h.dl.detach(ifp)
    h.dl.run_deferred()
    h.dl.release(ifp)
    again = h.dl.acquire(IfFamily.ETHERNET, b"nic-1", name="eth0", addrlen=6)
    assert again is ifp and again.reused and again.in_use
    h.dl.attach(again, MAC_A, h.ether, RecordingDriver())
    assert again.index == 1
    assert h.dl.lookup(1) is again


def test_released_anonymous_interface_is_reused_by_an_empty_id() -> None:
    dl = DataLink()
    a = dl.acquire(IfFamily.ETHERNET, b"", name="eth0")
    dl.release(a)
    b = dl.acquire(IfFamily.ETHERNET, b"", name="eth7", mtu=9000)
    assert b is a and b.reused
    assert b.name == "eth7" and b.mtu == 9000


def test_release_of_attached_interface_is_ebusy() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    with pytest.raises(RouterError) as info:
        h.dl.release(ifp)
    assert info.value.errno == EBUSY


# -- attach -----------------------------------------------------------------


def test_attach_twice_is_eexist() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    with pytest.raises(RouterError) as info:
        h.dl.attach(ifp, MAC_A, h.ether, driver)
    assert info.value.errno == EEXIST


def test_attach_with_wrong_lladdr_length_is_einval() -> None:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"u", name="eth0", addrlen=6)
    with pytest.raises(RouterError) as info:
        h.dl.attach(ifp, b"\x02\x00\x00\x00", h.ether, RecordingDriver())
    assert info.value.errno == EINVAL and info.value.field == "lladdr"
    assert ifp.state is IfState.EMBRYONIC and ifp.index == 0


def test_attach_with_addrlen_zero_takes_the_given_length() -> None:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"u", name="eth0", addrlen=0)
    h.dl.attach(ifp, MAC_A, h.ether, RecordingDriver())
    assert ifp.addrlen == 6 and ifp.lladdr == MAC_A


def test_attach_without_family_module_is_enodev() -> None:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"u", name="eth0")
    with pytest.raises(RouterError) as info:
        h.dl.attach(ifp, MAC_A, None, RecordingDriver())
    assert info.value.errno == ENODEV
    assert ifp.state is IfState.EMBRYONIC


def test_attach_with_a_name_already_attached_is_eexist() -> None:
    h = Harness()
    h.ethernet("eth0", uid=b"a")
    other = h.dl.acquire(IfFamily.ETHERNET, b"b", name="eth0")
    with pytest.raises(RouterError) as info:
        h.dl.attach(other, MAC_B, h.ether, RecordingDriver())
    assert info.value.errno == EEXIST and info.value.field == "name"


def test_attach_allocates_lowest_free_index_from_one() -> None:
    h = Harness()
    eth0, _ = h.ethernet("eth0")
    eth1, _ = h.ethernet("eth1", MAC_B)
    embryo = h.dl.acquire(IfFamily.ETHERNET, b"e", name="eth2")
    assert (eth0.index, eth1.index, embryo.index) == (1, 2, 0)
    h.dl.attach(embryo, MAC_B, h.ether, RecordingDriver())
    assert embryo.index == 3


def test_reattach_after_detach_keeps_the_index() -> None:
    h = Harness()
    h.ethernet("eth0")
    eth1, _ = h.ethernet("eth1", MAC_B)
    h.dl.detach(eth1)
    h.dl.run_deferred()
    h.dl.attach(eth1, MAC_B, h.ether, RecordingDriver())
    assert eth1.index == 2 and h.dl.lookup("eth1") is eth1


def test_attach_puts_the_link_address_first() -> None:
    h = Harness()
    ifp, _ = h.ethernet("eth0", MAC_A)
    first = ifp.addresses[0]
    assert isinstance(first, LinkAddress)
    assert (first.lladdr, first.ifname, first.ifindex, first.family) == (MAC_A, "eth0", 1, AF_LINK)


def test_attach_clears_counters() -> None:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"u", name="eth0")
    ifp.counters.ipackets = 5
    ifp.counters.noproto = 2
    h.dl.attach(ifp, MAC_A, h.ether, RecordingDriver())
    assert set(ifp.counters.as_dict().values()) == {0}


def test_attach_posts_if_attached_with_name_and_index() -> None:
    h = Harness()
    ifp, _ = h.ethernet("eth0")
    event = h.events[-1]
    assert (event.kind, event.ifname, event.ifindex) == (EventKind.IF_ATTACHED, "eth0", ifp.index)


# -- detach -----------------------------------------------------------------


def test_detach_not_attached_is_einval() -> None:
    dl = DataLink()
    ifp = dl.acquire(IfFamily.ETHERNET, b"u", name="eth0")
    with pytest.raises(RouterError) as info:
        dl.detach(ifp)
    assert info.value.errno == EINVAL


def test_detach_twice_is_enxio() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.detach(ifp)
    with pytest.raises(RouterError) as info:
        h.dl.detach(ifp)
    assert info.value.errno == ENXIO


def test_detaching_interface_is_invisible_to_lookups() -> None:
    h = Harness()
    ifp, _ = h.ethernet("eth0")
    h.dl.detach(ifp)
    assert ifp.state is IfState.DETACHING
    assert h.dl.lookup("eth0") is None and h.dl.lookup(ifp.index) is None
    assert ifp not in h.dl.interfaces()
    assert h.dl.pending_detach == (ifp,)


def test_detach_marks_the_interface_down_then_posts_detaching() -> None:
    h = Harness()
    ifp, driver = h.ethernet("eth0")
    assert ifp.is_up
    h.dl.detach(ifp)
    assert not ifp.is_up
    assert h.kinds()[-2:] == [EventKind.IF_FLAGS_CHANGED, EventKind.IF_DETACHING]
    assert h.events[-2].data["up"] is False
    # not attached any more: the driver does not hear its own detach
    assert EventKind.IF_DETACHING not in [e.kind for e in driver.events]


def test_detach_of_a_down_interface_posts_no_flags_event() -> None:
    h = Harness()
    ifp, _ = h.ethernet("eth0", flags=IfFlags.BROADCAST)
    h.dl.detach(ifp)
    assert h.kinds()[-1] is EventKind.IF_DETACHING
    assert EventKind.IF_FLAGS_CHANGED not in h.kinds()


# -- I/O references and the final detach ------------------------------------


def test_io_ref_is_refused_while_detaching() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    assert h.dl.io_ref(ifp)
    h.dl.detach(ifp)
    assert not h.dl.io_ref(ifp)
    assert ifp.ioref == 1
    h.dl.io_unref(ifp)
    assert ifp.ioref == 0


def test_io_unref_without_a_reference_is_einval() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    with pytest.raises(RouterError) as info:
        h.dl.io_unref(ifp)
    assert info.value.errno == EINVAL


def test_final_detach_waits_for_every_io_reference() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.io_ref(ifp)
    h.dl.io_ref(ifp)
    h.dl.detach(ifp)
    assert h.dl.run_deferred() == []
    h.dl.io_unref(ifp)
    assert h.dl.run_deferred() == [] and ifp.state is IfState.DETACHING
    h.dl.io_unref(ifp)
    assert h.dl.run_deferred() == [ifp]
    assert ifp.state is IfState.DETACHED
    assert h.kinds().count(EventKind.IF_DETACHED) == 1
    assert h.dl.pending_detach == ()


def test_detach_final_with_io_references_outstanding_is_ebusy() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.io_ref(ifp)
    h.dl.detach(ifp)
    with pytest.raises(RouterError) as info:
        h.dl.detach_final(ifp)
    assert info.value.errno == EBUSY


class RecordingDomain:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def purge_interface(self, ifp: Interface) -> None:
        self.log.append(f"purge {ifp.name}")
        ifp.addresses = [a for a in ifp.addresses if getattr(a, "family", 0) != AF_INET]

    def unplumb(self, ifp: Interface, family: int) -> None:
        self.log.append(f"unplumb {family}")


def test_final_detach_runs_filters_purge_unplumb_in_order() -> None:
    h = Harness()
    log: list[str] = []
    h.dl.add_domain(RecordingDomain(log))
    ifp, driver = h.ethernet()
    proto, _ = make_proto(detached_cb=lambda i, f: log.append(f"proto {f} freed"))
    h.dl.attach_protocol(ifp, proto)
    h.dl.attach_filter(ifp, recording_filter("f1", log))
    h.dl.attach_filter(ifp, recording_filter("f2", log))
    ifp.addresses.append(FakeInetAddr(0x0A000001))
    h.dl.detach(ifp)
    h.dl.run_deferred()
    assert log == ["f1:detached", "f2:detached", f"purge {ifp.name}", f"unplumb {AF_INET}",
                   f"proto {AF_INET} freed"]
    assert ifp.filters == () and ifp.protocols == {}
    assert ifp.addresses == []
    assert driver.freed == 1
    kinds = h.kinds()
    assert kinds.index(EventKind.PROTO_DETACHED) < kinds.index(EventKind.IF_DETACHED)


def test_final_detach_unplumbs_protocols_in_the_seeds_hash_order() -> None:
    h = Harness()
    log: list[str] = []
    h.dl.add_domain(RecordingDomain(log))
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST,))[0])
    h.dl.attach_protocol(ifp, make_proto(family=AF_INET)[0])
    h.dl.detach(ifp)
    h.dl.run_deferred()
    assert [line for line in log if line.startswith("unplumb")] == [
        f"unplumb {AF_INET}", f"unplumb {AF_TEST}"]
    assert ifp.protocols == {}


def test_final_detach_installs_safe_stubs() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.detach(ifp)
    h.dl.run_deferred()
    assert ifp.driver is DETACHED_DRIVER and ifp.family_module is DETACHED_FAMILY
    pkt = Packet(eth_frame(MAC_A))
    assert ifp.driver.output(ifp, [b"x"]) == 0
    assert ifp.family_module.demux(ifp, pkt) == (EJUSTRETURN, 0)
    assert ifp.family_module.framer(ifp, pkt, MAC_B, 0x800) == EJUSTRETURN
    assert ifp.driver.ioctl(ifp, IoctlCmd.SIOCGIFMTU, None) == EOPNOTSUPP
    assert ifp.family_module.add_proto(ifp, AF_INET, ()) == EINVAL
    assert ifp.family_module.del_proto(ifp, AF_INET) == EINVAL
    assert ifp.family_module.check_multi(ifp, b"\x01" * 6) == EOPNOTSUPP
    ifp.driver.event(ifp, h.events[-1])  # a no-op that must not fail


def test_detached_interface_refuses_io() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    proto, log = make_proto()
    h.dl.attach_protocol(ifp, proto)
    h.dl.detach(ifp)
    assert h.dl.output(ifp, AF_INET, [Packet(b"p")], None) == ENXIO
    assert h.dl.ioctl(ifp, AF_INET, IoctlCmd.SIOCGIFMTU, None) == EOPNOTSUPP
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert log.packets == [] and driver.calls == []
    assert h.dl.drops[LinkDrop.NOT_ATTACHED] == 2  # the output packet and the frame


def test_detach_filter_on_a_detaching_interface_is_einval_and_final_detach_frees_it() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    log: list[str] = []
    filt = recording_filter("f", log)
    h.dl.attach_filter(ifp, filt)
    h.dl.detach(ifp)
    with pytest.raises(RouterError) as info:
        h.dl.detach_filter(filt)
    assert info.value.errno == EINVAL
    h.dl.run_deferred()
    assert log == ["f:detached"]


def test_detach_from_a_subscriber_during_final_detach_is_finished_in_the_same_run() -> None:
    h = Harness()
    eth0, _ = h.ethernet("eth0")
    eth1, _ = h.ethernet("eth1", MAC_B)

    def cascade(event: Any) -> None:
        if event.kind is EventKind.IF_DETACHED and event.ifname == "eth0":
            h.dl.detach(eth1)

    h.dl.subscribe(cascade)
    h.dl.detach(eth0)
    assert h.dl.run_deferred() == [eth0, eth1]


# -- link state and flags ---------------------------------------------------


def test_link_state_changes_post_link_up_and_down_once() -> None:
    h = Harness()
    ifp, driver = h.ethernet()
    h.dl.set_link_state(ifp, LinkState.UP)
    h.dl.set_link_state(ifp, LinkState.UP)
    h.dl.set_link_state(ifp, LinkState.DOWN)
    assert h.kinds()[1:] == [EventKind.LINK_UP, EventKind.LINK_DOWN]
    assert [e.kind for e in driver.events][1:] == [EventKind.LINK_UP, EventKind.LINK_DOWN]


def test_set_up_posts_flags_changed_only_on_change() -> None:
    h = Harness()
    ifp, _ = h.ethernet(flags=IfFlags.BROADCAST)
    gen = ifp.generation
    h.dl.set_up(ifp, True)
    h.dl.set_up(ifp, True)
    assert ifp.is_up and ifp.generation == gen + 1
    assert h.kinds().count(EventKind.IF_FLAGS_CHANGED) == 1


def test_filter_attached_to_a_non_attached_interface_is_enxio() -> None:
    dl = DataLink()
    ifp = dl.acquire(IfFamily.ETHERNET, b"u", name="eth0")
    with pytest.raises(RouterError) as info:
        dl.attach_filter(ifp, InterfaceFilter("f"))
    assert info.value.errno == ENXIO



def test_detach_finds_a_renamed_interface_by_identity() -> None:
    h = Harness()
    ifp, _ = h.ethernet("eth0")
    ifp.name = "wan0"
    h.dl.detach(ifp)
    assert h.dl.lookup("eth0") is None and h.dl.interfaces() == []


# -- suspended multicast memberships (if_updatemcasts) -----------------------


def _recycled_with_membership(h: Harness) -> tuple[Interface, RecordingDriver]:
    ifp, _ = h.ethernet("eth0", uid=b"nic")
    ifp.multicast[bytes.fromhex("01005e000001")] = 1
    h.dl.detach(ifp)
    h.dl.run_deferred()
    h.dl.release(ifp)
    again = h.dl.acquire(IfFamily.ETHERNET, b"nic", name="eth0", addrlen=6)
    assert again is ifp and ifp.reused
    driver = RecordingDriver(ioctl_result=0)
    h.dl.attach(ifp, MAC_A, h.ether, driver)
    return ifp, driver


def test_recycled_interface_restores_its_memberships_after_its_first_input() -> None:
    h = Harness()
    ifp, driver = _recycled_with_membership(h)
    assert driver.ioctls == []
    h.dl.input(ifp, [eth_frame(MAC_A)])
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert driver.ioctls == [(IoctlCmd.SIOCADDMULTI, None)]
    assert ifp.multicast == {bytes.fromhex("01005e000001"): 1} and ifp.ioref == 0


def test_recycled_interface_restores_its_memberships_before_its_first_output() -> None:
    h = Harness()
    ifp, driver = _recycled_with_membership(h)
    h.dl.attach_protocol(ifp, make_proto(pre_output=lambda i, f, p, d: (0, MAC_B, 0x800))[0])
    assert h.dl.output(ifp, AF_INET, [Packet(b"a")], 1) == 0
    h.dl.output(ifp, AF_INET, [Packet(b"b")], 1)
    assert driver.ioctls == [(IoctlCmd.SIOCADDMULTI, None)]
    assert len(driver.frames) == 2 and h.dl.suspended_multicast == set()


def test_interface_attached_afresh_has_no_memberships_to_restore() -> None:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"new", name="eth0", addrlen=6)
    ifp.multicast[bytes.fromhex("01005e000001")] = 1
    driver = RecordingDriver(ioctl_result=0)
    h.dl.attach(ifp, MAC_A, h.ether, driver)
    h.dl.input(ifp, [eth_frame(MAC_A)])
    assert ifp.multicast == {} and driver.ioctls == []

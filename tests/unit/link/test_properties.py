"""Random interleavings of the data link layer's API (hypothesis stateful testing).

Whatever the order of attach/detach, input/output, filter and protocol
attach/detach and I/O reference holds: only ``RouterError`` with a documented
errno is raised, I/O and protocol references never leak, and once every
reference is released every detached interface has had exactly one final
detach (IF_DETACHED once, every filter's ``detached`` callback once, every
protocol freed once).
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from router.contracts import DemuxDesc, InterfaceFilter, IoctlCmd, Packet, ProtoAttachment
from router.errors import (
    EADDRINUSE,
    EBUSY,
    EEXIST,
    EINVAL,
    EJUSTRETURN,
    ENXIO,
    EPERM,
    RouterError,
)
from router.events import Event, EventKind
from router.link.ether import ETHERTYPE_IP
from router.link.ifnet import AF_INET, IfExtFlags, IfFamily, IfFlags, IfState, Interface
from tests.unit.link.support import (
    AF_TEST,
    ETHERTYPE_TEST,
    MAC_A,
    MAC_PEER,
    Harness,
    RecordingDriver,
    eth_frame,
)

SLOTS = 3
FAMILIES = {AF_INET: ETHERTYPE_IP, AF_TEST: ETHERTYPE_TEST}
slot = st.integers(min_value=0, max_value=SLOTS - 1)
family = st.sampled_from(sorted(FAMILIES))


class DataLinkMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.dl = self.h.dl
        self.ifps: dict[int, Interface] = {}
        self.held: list[Interface] = []
        self.detaches: Counter[str] = Counter()  # successful detach() per interface name
        self.filters: list[InterfaceFilter] = []
        self.filter_attaches: Counter[str] = Counter()
        self.filter_detached: Counter[str] = Counter()
        self.proto_attaches = 0
        self.proto_freed = 0
        self.detach_from_input = False

    # -- helpers ----------------------------------------------------------

    def _name(self, n: int) -> str:
        return f"eth{n}"

    def _call(self, allowed: set[int], fn: object, *args: object) -> bool:
        try:
            fn(*args)  # type: ignore[operator]
        except RouterError as err:
            assert err.errno in allowed, f"{fn}: unexpected {err}"
            return False
        return True

    def _ifp(self, n: int) -> Interface | None:
        return self.ifps.get(n)

    # -- lifecycle ----------------------------------------------------------

    @initialize(protos=st.lists(st.tuples(slot, family, st.sampled_from([1, 2])), max_size=4),
                filters=st.lists(st.tuples(slot, st.sampled_from([0, AF_INET]),
                                           st.sampled_from([0, EJUSTRETURN, EPERM])),
                                 max_size=3))
    def start_with_attached_interfaces(self, protos: list[tuple[int, int, int]],
                                       filters: list[tuple[int, int, int]]) -> None:
        """Most interesting interleavings need attached interfaces: start from some."""
        for n in range(SLOTS):
            self.acquire(n)
            self.attach(n)
        for n, fam, version in protos:
            self.attach_protocol(n, fam, version)
        for n, fam, result in filters:
            self.attach_filter(n, fam, result)

    @rule(n=slot)
    def acquire(self, n: int) -> None:
        try:
            ifp = self.dl.acquire(IfFamily.ETHERNET, self._name(n).encode(), name=self._name(n),
                                  flags=IfFlags.UP, eflags=IfExtFlags.SENDLIST if n == 2 else
                                  IfExtFlags.NONE, addrlen=6)
        except RouterError as err:
            assert err.errno == EBUSY
            return
        assert self.ifps.get(n) in (None, ifp)
        self.ifps[n] = ifp

    @rule(n=slot)
    def attach(self, n: int) -> None:
        ifp = self._ifp(n)
        if ifp is not None:
            self._call({EEXIST, EBUSY, EINVAL}, self.dl.attach, ifp, MAC_A[:5] + bytes([n]),
                       self.h.ether, RecordingDriver())

    @rule(n=slot)
    def detach(self, n: int) -> None:
        ifp = self._ifp(n)
        if ifp is not None and self._call({EINVAL, ENXIO}, self.dl.detach, ifp):
            self.detaches[ifp.name] += 1

    @rule(n=slot)
    def release(self, n: int) -> None:
        ifp = self._ifp(n)
        if ifp is not None:
            self._call({EBUSY, EINVAL}, self.dl.release, ifp)

    @rule()
    def run_deferred(self) -> None:
        for ifp in self.dl.run_deferred():
            assert ifp.state is IfState.DETACHED and ifp.ioref == 0

    @rule(n=slot)
    def hold_io_ref(self, n: int) -> None:
        ifp = self._ifp(n)
        if ifp is not None and self.dl.io_ref(ifp):
            self.held.append(ifp)

    @rule(data=st.data())
    def drop_io_ref(self, data: st.DataObject) -> None:
        if self.held:
            index = data.draw(st.integers(min_value=0, max_value=len(self.held) - 1))
            self.dl.io_unref(self.held.pop(index))

    # -- protocols and filters --------------------------------------------

    @rule(n=slot, fam=family, version=st.sampled_from([1, 2]))
    def attach_protocol(self, n: int, fam: int, version: int) -> None:
        ifp = self._ifp(n)
        if ifp is None:
            return
        proto = self._proto(fam, version)
        if self._call({EINVAL, ENXIO, EEXIST, EADDRINUSE}, self.dl.attach_protocol, ifp, proto):
            self.proto_attaches += 1

    def _proto(self, fam: int, version: int) -> ProtoAttachment:
        def deliver(ifp: Interface, f: int, pkt: object) -> int:
            if self.detach_from_input and ifp.state is IfState.ATTACHED:
                self.detach_from_input = False
                self.dl.detach(ifp)
                self.detaches[ifp.name] += 1
            return EPERM if f == AF_TEST else 0

        def pre_output(ifp: Interface, f: int, pkt: Packet, dest: object) -> tuple[int, bytes, int]:
            return (EJUSTRETURN, b"", 0) if dest == 1 else (0, MAC_PEER, FAMILIES[f])

        def freed(ifp: Interface, f: int) -> None:
            self.proto_freed += 1

        return ProtoAttachment(
            family=fam, version=version,
            input=deliver if version == 1 else None,  # type: ignore[arg-type]
            input_list=deliver if version == 2 else None,  # type: ignore[arg-type]
            pre_output=pre_output, detached_cb=freed,
            demux=(DemuxDesc("ethertype", FAMILIES[fam]),),
        )

    @rule(n=slot, fam=family)
    def detach_protocol(self, n: int, fam: int) -> None:
        ifp = self._ifp(n)
        if ifp is not None:
            self._call({ENXIO}, self.dl.detach_protocol, ifp, fam)

    @rule(n=slot, fam=st.sampled_from([0, AF_INET]), result=st.sampled_from([0, EJUSTRETURN,
                                                                               EPERM]))
    def attach_filter(self, n: int, fam: int, result: int) -> None:
        ifp = self._ifp(n)
        if ifp is None:
            return
        name = f"f{len(self.filters)}"

        def passes(i: Interface, f: int, pkt: Packet) -> int:
            return result

        def gone(i: Interface) -> None:
            self.filter_detached[name] += 1

        filt = InterfaceFilter(name, fam, input=passes, output=passes, detached=gone)
        if self._call({ENXIO}, self.dl.attach_filter, ifp, filt):
            self.filters.append(filt)
            self.filter_attaches[name] += 1

    @rule(data=st.data())
    def detach_filter(self, data: st.DataObject) -> None:
        if self.filters:
            filt = data.draw(st.sampled_from(self.filters))
            self._call({EINVAL}, self.dl.detach_filter, filt)

    # -- traffic ------------------------------------------------------------

    @rule(n=slot, kinds=st.lists(st.sampled_from(["ip", "test", "runt", "other", "promisc"]),
                                 max_size=6), detach_inside=st.booleans())
    def input(self, n: int, kinds: list[str], detach_inside: bool) -> None:
        ifp = self._ifp(n)
        if ifp is None:
            return
        me = ifp.lladdr or MAC_A
        frames = {"ip": eth_frame(me), "test": eth_frame(me, ethertype=ETHERTYPE_TEST),
                  "runt": b"\x00" * 5, "other": eth_frame(me, ethertype=0x9999),
                  "promisc": eth_frame(MAC_PEER)}
        self.detach_from_input = detach_inside
        self.dl.input(ifp, [frames[k] for k in kinds])
        self.detach_from_input = False

    @rule(n=slot, fam=family, count=st.integers(0, 4), dest=st.sampled_from([0, 1]),
          raw=st.booleans())
    def output(self, n: int, fam: int, count: int, dest: int, raw: bool) -> None:
        ifp = self._ifp(n)
        if ifp is not None:
            result = self.dl.output(ifp, fam, [Packet(b"p" * 20) for _ in range(count)], dest,
                                    raw=raw)
            assert isinstance(result, int)

    @rule(n=slot, fam=family)
    def ioctl(self, n: int, fam: int) -> None:
        ifp = self._ifp(n)
        if ifp is not None:
            assert isinstance(self.dl.ioctl(ifp, fam, IoctlCmd.SIOCGIFMTU, None), int)

    # -- invariants ---------------------------------------------------------

    @invariant()
    def io_references_match_the_holds(self) -> None:
        for ifp in self.ifps.values():
            assert ifp.ioref == sum(1 for held in self.held if held is ifp)

    @invariant()
    def attached_protocols_hold_only_their_attach_reference(self) -> None:
        for ifp in self.ifps.values():
            assert all(p.refcount == 1 for p in ifp.protocols.values())

    @invariant()
    def final_detach_happened_at_most_once_per_detach(self) -> None:
        detached = Counter(e.ifname for e in self.h.events if e.kind is EventKind.IF_DETACHED)
        for ifp in self.ifps.values():
            pending = 1 if ifp in self.dl.pending_detach else 0
            assert detached[ifp.name] == self.detaches[ifp.name] - pending

    @invariant()
    def each_filter_was_detached_at_most_once_per_attach(self) -> None:
        on_chains = Counter(f.name for ifp in self.ifps.values() for f in ifp.filters)
        for name, attaches in self.filter_attaches.items():
            assert self.filter_detached[name] == attaches - on_chains[name]

    def teardown(self) -> None:
        while self.held:
            self.dl.io_unref(self.held.pop())
        for ifp in self.ifps.values():
            if ifp.state is IfState.ATTACHED:
                self.dl.detach(ifp)
                self.detaches[ifp.name] += 1
        self.dl.run_deferred()
        events: list[Event] = self.h.events
        detached = Counter(e.ifname for e in events if e.kind is EventKind.IF_DETACHED)
        for ifp in self.ifps.values():
            assert ifp.ioref == 0
            assert ifp.state in (IfState.EMBRYONIC, IfState.DETACHED, IfState.RELEASED)
            assert detached[ifp.name] == self.detaches[ifp.name]
            assert ifp.filters == () and ifp.protocols == {}
        assert self.dl.pending_detach == ()
        assert dict(self.filter_detached) == dict(self.filter_attaches)
        assert self.proto_freed == self.proto_attaches


def test_random_interleavings_keep_references_and_final_detach_exact() -> None:
    run_state_machine_as_test(
        DataLinkMachine,
        settings=settings(max_examples=100, stateful_step_count=40, deadline=None),
    )

"""``router.link.io.output_one`` does for one packet what ``output_packets`` does for a list of one.

Each scenario runs on two fresh harnesses, one through each function, and
compares the result, what the driver got, the counters, the drops and the
references left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from router.contracts import Packet
from router.errors import EHOSTUNREACH, EJUSTRETURN, ENOBUFS, ENXIO
from router.link.ether import BROADCAST_MAC, ETHERTYPE_IP, EthernetFamily
from router.link.ifnet import AF_INET, IfExtFlags, IfFamily, Interface
from router.link.io import output_one, output_packets
from tests.unit.link.support import MAC_A, MAC_PEER, Harness, RecordingDriver, make_proto

PreOutput = Callable[[Interface, int, Packet, Any], tuple[int, bytes, int]]


def _answer(result: tuple[int, bytes, int]) -> PreOutput:
    def pre_output(ifp: Interface, fam: int, pkt: Packet, dest: Any) -> tuple[int, bytes, int]:
        return result
    return pre_output


class SwallowingFramer(EthernetFamily):
    __slots__ = ()

    def framer(self, ifp: Interface, pkt: Packet, lldst: bytes, frame_type: int) -> int:
        return EJUSTRETURN


SCENARIOS: dict[str, dict[str, Any]] = {
    "resolved": {"pre_output": _answer((0, MAC_PEER, ETHERTYPE_IP))},
    "broadcast_counts_omcasts": {"pre_output": _answer((0, BROADCAST_MAC, ETHERTYPE_IP))},
    "held_by_pre_output": {"pre_output": _answer((EJUSTRETURN, b"", 0))},
    "pre_output_error": {"pre_output": _answer((EHOSTUNREACH, b"", 0))},
    "framer_refuses_destination": {"pre_output": _answer((0, b"\x01\x02", ETHERTYPE_IP))},
    "framer_consumes": {"pre_output": _answer((0, MAC_PEER, ETHERTYPE_IP)),
                        "framer": SwallowingFramer()},
    "no_pre_output": {"pre_output": None},
    "driver_error": {"pre_output": _answer((0, MAC_PEER, ETHERTYPE_IP)),
                     "driver_result": ENOBUFS},
    "sendlist": {"pre_output": _answer((0, MAC_PEER, ETHERTYPE_IP)),
                 "eflags": IfExtFlags.SENDLIST},
    "detached": {"pre_output": _answer((0, MAC_PEER, ETHERTYPE_IP)), "detach": True},
    "no_protocol": {"pre_output": _answer((0, MAC_PEER, ETHERTYPE_IP)), "no_proto": True},
}


def _run(scenario: dict[str, Any], send: Callable[[Harness, Interface, Packet], int]) -> tuple:
    h = Harness()
    ifp = h.dl.acquire(IfFamily.ETHERNET, b"eth0", name="eth0",
                       eflags=scenario.get("eflags", IfExtFlags.NONE), addrlen=6)
    driver = RecordingDriver(output_result=scenario.get("driver_result", 0))
    h.dl.attach(ifp, MAC_A, scenario.get("framer", EthernetFamily()), driver)
    proto = None
    if not scenario.get("no_proto"):
        proto = make_proto(pre_output=scenario["pre_output"])[0]
        h.dl.attach_protocol(ifp, proto)
    if scenario.get("detach"):
        h.dl.detach(ifp)
    result = send(h, ifp, Packet(b"payload", family=AF_INET))
    return (result, driver.calls, dataclasses.astuple(ifp.counters), list(h.dl.drops),
            ifp.ioref, proto.refcount if proto is not None else None)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_output_one_matches_output_packets_for_a_single_packet(name: str) -> None:
    scenario = SCENARIOS[name]
    one = _run(scenario, lambda h, ifp, pkt: output_one(h.dl, ifp, AF_INET, pkt, 1))
    listed = _run(scenario, lambda h, ifp, pkt: output_packets(h.dl, ifp, AF_INET, [pkt], 1,
                                                                False))
    assert one == listed


def test_output_one_on_a_detached_interface_is_enxio() -> None:
    result = _run(SCENARIOS["detached"],
                  lambda h, ifp, pkt: output_one(h.dl, ifp, AF_INET, pkt, 1))
    assert result[0] == ENXIO and result[1] == []


def test_output_one_held_by_pre_output_returns_zero_and_sends_nothing() -> None:
    result = _run(SCENARIOS["held_by_pre_output"],
                  lambda h, ifp, pkt: output_one(h.dl, ifp, AF_INET, pkt, 1))
    assert result[0] == 0 and result[1] == []

"""The classic BPF programs that split a NIC's frames over the control, local and main rings.

The programs run here on an interpreter of the few classic BPF instructions they
use, written from linux/filter.h (opcodes, the "VLAN tag present" ancillary
load) independently of agents/packet_socket.py, so a wrong jump offset shows
up: every frame must land on exactly one ring, whatever the local addresses,
and while :meth:`PacketLink.set_local_addresses` rewrites the filters one at a
time no frame may land on none.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agents.packet_socket import (
    LOCAL_FILTER_MAX,
    NOT_ARP,
    ONLY_ARP,
    SO_ATTACH_FILTER,
    local_filter,
    main_filter,
)
from tests.unit.agents.test_link import _rx_link

LD_W_ABS, LD_H_ABS, LD_W_LEN, JEQ_K, JGE_K, RET_K = 0x20, 0x28, 0x80, 0x15, 0x35, 0x06
VLAN_TAG_PRESENT = 0xFFFFF000 + 48  # SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT


def run(program: bytes, frame: bytes, tagged: bool = False) -> bool:
    """Does ``program`` accept ``frame`` (a non-zero return: the snap length)? A load past
    the frame's end ends the program with 0, as the kernel's does."""
    insns = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
    acc, pc = 0, 0
    for _ in range(len(insns)):  # forward jumps only: at most one pass
        code, jt, jf, k = insns[pc]
        if code in (LD_W_ABS, LD_H_ABS) and k != VLAN_TAG_PRESENT:
            size = 4 if code == LD_W_ABS else 2
            if k + size > len(frame):
                return False
            acc = int.from_bytes(frame[k : k + size], "big")
        elif code == LD_W_ABS:
            acc = int(tagged)
        elif code == LD_W_LEN:
            acc = len(frame)
        elif code == JEQ_K:
            pc += jt if acc == k else jf
        elif code == JGE_K:
            pc += jt if acc >= k else jf
        elif code == RET_K:
            return k != 0
        else:
            raise AssertionError(f"instruction {code:#x} not expected")
        pc += 1
    raise AssertionError("the program ran off its end")


def ipv4(dst: bytes) -> bytes:
    return bytes(12) + b"\x08\x00" + b"\x45" + bytes(15) + dst + bytes(30)


ARP = bytes(12) + b"\x08\x06" + bytes(28)
IPV6 = bytes(12) + b"\x86\xdd" + bytes(40)
OURS, OTHER = bytes([10, 0, 0, 1]), bytes([10, 9, 9, 9])


def rings(local: tuple[bytes, ...], frame: bytes, tagged: bool = False) -> list[str]:
    accepted = [("control", ONLY_ARP), ("local", local_filter(local)),
                ("main", main_filter(local))]
    return [name for name, program in accepted if run(program, frame, tagged)]


def test_each_kind_of_frame_goes_to_its_ring() -> None:
    local = (OURS,)
    assert rings(local, ARP) == ["control"]
    assert rings(local, ipv4(OURS)) == ["local"]
    assert rings(local, ipv4(OTHER)) == ["main"]
    assert rings(local, IPV6) == ["main"]
    assert rings(local, ipv4(OURS), tagged=True) == ["main"]  # a VLAN's: the main ring's
    assert rings(local, ARP, tagged=True) == ["main"]
    assert rings((), ipv4(OURS)) == ["main"]  # no addresses yet: nothing is local
    assert rings(local, ipv4(OURS)[:33]) == ["main"]  # a runt: the engine counts it
    assert main_filter(()) == NOT_ARP


addresses = st.binary(min_size=4, max_size=4)


@given(st.lists(addresses, max_size=LOCAL_FILTER_MAX, unique=True), addresses,
       st.sampled_from([b"\x08\x00", b"\x08\x06", b"\x86\xdd", b"\x81\x00"]), st.booleans(),
       st.integers(min_value=14, max_value=80))
def test_every_frame_lands_on_exactly_one_ring(local: list[bytes], dst: bytes, ethertype: bytes,
                                               tagged: bool, length: int) -> None:
    """Runts included: a frame too short for a destination goes to the main ring, whose
    engine counts it as malformed (a load past its end would have dropped it unseen)."""
    frame = (bytes(12) + ethertype + b"\x45" + bytes(15) + dst + bytes(30))[:length]
    assert len(rings(tuple(sorted(local)), frame, tagged)) == 1


class _FilterSocket:
    """Records the program attached last (``SO_ATTACH_FILTER``'s ``sock_fprog``)."""

    def __init__(self, name: str, log: list[tuple[str, bytes]]) -> None:
        self.name, self.log = name, log

    def setsockopt(self, level: int, option: int, value: bytes) -> None:
        assert option == SO_ATTACH_FILTER
        count, address = struct.unpack("HL", value)
        self.log.append((self.name, ctypes.string_at(address, count * 8)))


def _link_with_filter_sockets() -> tuple[Any, list[tuple[str, bytes]]]:
    log: list[tuple[str, bytes]] = []
    link = _rx_link(2)
    link._rx, link._local = _FilterSocket("main", log), _FilterSocket("local", log)
    return link, log


@given(st.sets(addresses, max_size=8), st.sets(addresses, max_size=8), addresses)
def test_while_the_filters_change_no_frame_lands_on_no_ring(old: set[bytes], new: set[bytes],
                                                            probe: bytes) -> None:
    link, log = _link_with_filter_sockets()
    assert link.set_local_addresses(old)
    log.clear()
    assert link.set_local_addresses(new)
    assert link.local_addresses == tuple(sorted(new))
    programs = {"local": local_filter(tuple(sorted(old))), "main": main_filter(tuple(sorted(old)))}
    for name, program in log:  # the state after each single change
        programs[name] = program
        for dst in (probe, *old, *new):
            assert run(programs["local"], ipv4(dst)) or run(programs["main"], ipv4(dst))
    assert programs == {"local": local_filter(tuple(sorted(new))),
                        "main": main_filter(tuple(sorted(new)))}


def test_the_same_addresses_again_rewrite_nothing() -> None:
    link, log = _link_with_filter_sockets()
    link.set_local_addresses({OURS})
    log.clear()
    assert link.set_local_addresses([OURS])
    assert log == []


def test_too_many_addresses_turn_the_local_ring_off() -> None:
    link, _log = _link_with_filter_sockets()
    link.set_local_addresses({OURS})
    many = {n.to_bytes(4, "big") for n in range(LOCAL_FILTER_MAX + 1)}
    assert link.set_local_addresses(many) is False
    assert link.local_addresses == ()
    assert rings(link.local_addresses, ipv4(OURS)) == ["main"]


def test_a_closed_link_is_left_alone() -> None:
    link, log = _link_with_filter_sockets()
    link.closed = True
    assert link.set_local_addresses({OURS})
    assert log == [] and link.local_addresses == ()

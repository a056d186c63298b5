"""``Ipv4.input``'s in-place lane for plain headers decides as the fully parsed path does.

``input`` reads a 20-byte header without options in place and hands its
fields to ``_forward``; ``_input_parsed`` is the general path (full parse, an
``Ipv4Header``), which hands ``_forward`` the same fields from the header.
``_forward`` is the one definition of the forwarding checks. On any
datagram, in any configuration, both lanes must send the same datagrams and
count the same things.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.contracts import PacketFlags
from router.errors import EHOSTUNREACH, EMSGSIZE, ENOBUFS
from router.inet.route import RouteFlags
from router.ipv4 import input as ipv4_input
from router.ipv4.icmp import IcmpConfig
from router.ipv4.input import Ipv4Config
from router.link.ifnet import IfFlags
from router.wire import ipv4 as wire_ip
from tests.unit.ipv4.support import Rig, ip

DESTINATIONS = [ip(a) for a in ("10.1.0.9", "192.168.3.4", "10.0.0.1", "10.1.0.1",
                                "10.0.0.255", "10.1.0.255", "10.1.0.0", "224.0.0.5",
                                "169.254.1.1", "8.8.8.8", "127.0.0.1", "0.0.0.0",
                                "255.255.255.255", "172.16.0.1", "172.17.0.1", "240.0.0.1")]

#: A clean datagram to forward and a router that forwards it; each test case
#: changes at most a few of these (the destination is always drawn).
USUAL: dict[str, Any] = {
    "src": ip("10.0.0.7"), "ttl": 64, "frag": 0, "options": b"", "size": 30,
    "protocol": wire_ip.PROTO_UDP, "damage": "none", "link_group": False,
    "forwarding": True, "directed": False, "output_error": 0, "mtu": 1500, "down": False,
}
OTHERS: dict[str, list[Any]] = {
    "src": [ip(a) for a in ("0.0.0.0", "127.0.0.1", "224.0.0.9", "255.255.255.255",
                            "10.0.0.255", "10.0.0.1", "10.1.0.9")],
    "ttl": [0, 1, 2],
    "frag": [wire_ip.FLAG_DF, wire_ip.FLAG_MF, 5],
    "options": [b"\x01\x01\x01\x00"],
    "size": [0, 8, 600, 1490],
    "protocol": [wire_ip.PROTO_ICMP, wire_ip.PROTO_TCP],
    "damage": ["byte", "truncate", "pad"],
    "link_group": [True],
    "forwarding": [False],
    "directed": [True],
    "output_error": [EHOSTUNREACH, EMSGSIZE, ENOBUFS],
    "mtu": [576],
    "down": [True],
}


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """A case (``USUAL`` with up to three changes) and the datagram it describes."""
    case = dict(USUAL)
    for name in draw(st.sets(st.sampled_from(sorted(OTHERS)), max_size=3)):
        case[name] = draw(st.sampled_from(OTHERS[name]))
    payload = bytes(case["size"])
    if case["protocol"] == wire_ip.PROTO_ICMP:
        payload = b"\x08\x00" + payload  # an echo request's type and code
    packet = bytearray(wire_ip.emit(
        src=case["src"], dst=draw(st.sampled_from(DESTINATIONS)), protocol=case["protocol"],
        payload=payload, ttl=case["ttl"], ident=draw(st.integers(0, 0xFFFF)),
        frag=case["frag"], options=case["options"]))
    if case["damage"] == "byte":
        packet[draw(st.integers(0, min(len(packet), 24) - 1))] = draw(st.integers(0, 255))
    elif case["damage"] == "truncate":
        del packet[draw(st.integers(0, len(packet))):]
    elif case["damage"] == "pad":
        packet += bytes(draw(st.integers(1, 20)))
    return case, bytes(packet)


def build(case: dict[str, Any]) -> Rig:
    """The two-interface rig plus a blackhole and a reject route, configured by ``case``."""
    config = Ipv4Config(forwarding=case["forwarding"],
                        forward_directed_broadcast=case["directed"],
                        icmp=IcmpConfig(per_host_burst=10**6, global_burst=10**6))
    rig = Rig(config=config, output_error=case["output_error"])
    rig.routes.add(ip("172.16.0.0"), 16, ifindex=2, ifname="eth1",
                   flags=RouteFlags.BLACKHOLE | RouteFlags.STATIC)
    rig.routes.add(ip("172.17.0.0"), 16, ifindex=2, ifname="eth1",
                   flags=RouteFlags.REJECT | RouteFlags.STATIC)
    rig.eth1.mtu = case["mtu"]
    if case["down"]:
        rig.eth1.flags &= ~IfFlags.UP
    return rig


def _observed(rig: Rig) -> tuple[object, ...]:
    sent = [(s.ifname, s.datagram, s.next_hop) for s in rig.take()]
    return sent, rig.ipv4.stats.as_dict(), rig.ipv4.icmp.stats.as_dict()


@settings(max_examples=800, deadline=None)
@given(drawn=cases())
def test_plain_lane_sends_and_counts_what_the_parsed_path_does(
        drawn: tuple[dict[str, Any], bytes]) -> None:
    case, datagram = drawn
    flags = int(PacketFlags.BCAST) if case["link_group"] else 0
    frame = bytes(14) + datagram
    lane, parsed = build(case), build(case)
    lane.ipv4.input(lane.eth0, frame, 14, flags, 5.0)
    parsed.ipv4.stats.received += 1  # input counts every datagram before either path
    parsed.ipv4._input_parsed(parsed.eth0, memoryview(frame)[14:], flags, 5.0)
    assert _observed(lane) == _observed(parsed)


def test_plain_lane_forwards_the_common_datagram(monkeypatch: pytest.MonkeyPatch) -> None:
    # the lane is really taken: a clean datagram is forwarded without the
    # parsed path, and without parsing its header again
    rig = build(USUAL)
    rig.ipv4._input_parsed = None  # type: ignore[assignment,method-assign]
    monkeypatch.setattr(ipv4_input, "parse_header", None)
    datagram = wire_ip.emit(src=ip("10.0.0.7"), dst=ip("10.1.0.9"), protocol=17, payload=b"x")
    rig.ipv4.input(rig.eth0, bytes(14) + datagram, 14, 0, 0.0)
    (sent,) = rig.take()
    assert sent.datagram[wire_ip.TTL_OFF] == 63
    assert rig.ipv4.stats.forwarded == 1

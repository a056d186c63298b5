"""When the router must not send an ICMP error (RFC 1812 4.3.2.7)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP

from router.contracts import PacketFlags
from router.ipv4.icmp import Suppressed, is_bad_source
from tests.unit.ipv4.support import Rig


def expired(**fields: object) -> IP:
    values: dict[str, object] = {"src": "10.0.0.7", "dst": "192.168.1.1", "ttl": 1}
    values.update(fields)
    return IP(**values)


def suppressed(rig: Rig) -> dict[str, int]:
    return {r.value: n for r, n in rig.ipv4.icmp.stats.suppressed.items() if n}


@pytest.mark.parametrize("icmp_type", [3, 4, 5, 11, 12])
def test_no_icmp_error_about_an_icmp_error(icmp_type: int) -> None:
    rig = Rig()
    rig.receive(expired() / ICMP(type=icmp_type) / bytes(IP() / UDP()))
    assert rig.take() == []
    assert suppressed(rig) == {"about_icmp_error": 1}
    assert rig.drops() == {"ttl_exceeded": 1}


@pytest.mark.parametrize("icmp_type", [0, 8, 13])
def test_icmp_errors_are_sent_about_non_error_icmp(icmp_type: int) -> None:
    rig = Rig()
    rig.receive(expired() / ICMP(type=icmp_type))
    (msg,) = rig.take()
    assert msg.ip[ICMP].type == 11


def test_no_icmp_error_about_an_icmp_header_cut_short() -> None:
    rig = Rig()
    rig.receive(expired(proto=1) / b"")
    assert rig.take() == []
    assert suppressed(rig) == {"about_icmp_error": 1}


def test_no_icmp_error_about_a_non_first_fragment() -> None:
    rig = Rig()
    rig.receive(expired(frag=100) / (b"x" * 16))
    assert rig.take() == []
    assert suppressed(rig) == {"not_first_fragment": 1}


def test_icmp_error_is_sent_about_a_first_fragment() -> None:
    rig = Rig()
    rig.receive(expired(flags="MF") / UDP())
    (msg,) = rig.take()
    assert msg.ip[ICMP].type == 11


def test_no_icmp_error_about_a_link_broadcast_frame() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst="10.0.0.1") / UDP(), dst_mac="ff:ff:ff:ff:ff:ff",
                flags=PacketFlags.BCAST)
    assert rig.take() == []
    assert suppressed(rig) == {"link_broadcast": 1}


@pytest.mark.parametrize("dst", ["10.0.0.255", "255.255.255.255", "224.0.0.9"])
def test_no_icmp_error_about_a_broadcast_or_multicast_destination(dst: str) -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.7", dst=dst) / UDP(dport=520))
    assert rig.take() == []
    assert sum(rig.ipv4.icmp.stats.suppressed.values()) == 1


def test_no_icmp_error_to_the_broadcast_address_of_the_ingress_link() -> None:
    rig = Rig()
    rig.receive(expired(src="10.0.0.255"))
    assert rig.take() == []
    assert rig.drops() == {"ttl_exceeded": 1}
    assert suppressed(rig) == {"bad_source": 1}


def test_source_zero_is_dropped_before_any_error() -> None:
    rig = Rig()
    rig.receive(expired(src="0.0.0.0"))
    assert rig.take() == []
    assert rig.drops() == {"bad_source": 1}


def test_src_broadcast_of_the_ingress_link_suppresses_the_error() -> None:
    rig = Rig()
    rig.receive(IP(src="10.0.0.255", dst="10.0.0.1") / UDP())
    assert rig.take() == []
    assert suppressed(rig) == {"bad_source": 1}


def test_bad_sources_are_zero_broadcast_multicast_and_loopback() -> None:
    assert all(is_bad_source(a) for a in (0, 0xFFFFFFFF, 0xE0000001, 0x7F000001))
    assert not is_bad_source(0x0A000001)


def test_no_source_address_means_no_error() -> None:
    rig = Rig()
    rig.inet.delete_alias(rig.eth0, None)
    rig.inet.delete_alias(rig.eth1, None)
    rig.routes.add(0, 0, ifindex=1)
    rig.receive(expired())
    assert rig.take() == []
    assert rig.ipv4.icmp.stats.suppressed[Suppressed.NO_SOURCE_ADDRESS] == 1

"""ARP send (link-local fan-out) and multicast resolution."""

from __future__ import annotations

from typing import Any

from router.errors import EADDRNOTAVAIL, EHOSTUNREACH, EINVAL, ENOTSUP, EOPNOTSUPP, EPERM
from router.link.arp_send import ARPOP_REPLY, ARPOP_REQUEST, first_ipv4_address, is_ipv4_linklocal
from router.link.ether import ipv4_multicast_mac
from router.link.ifnet import AF_INET, IfExtFlags, Interface, LinkAddress
from tests.unit.link.support import (
    AF_TEST,
    ETHERTYPE_TEST,
    MAC_A,
    MAC_B,
    MAC_PEER,
    FakeInetAddr,
    Harness,
    make_proto,
)

LL_TARGET = 0xA9FE0A0B  # 169.254.10.11
LL_SOURCE = 0xA9FE0001
OTHER = 0x0A000001  # 10.0.0.1
MAC_C = bytes.fromhex("020000000003")

Sent = list[tuple[str, int, Any, Any, Any, int]]


def _with_ipv4(h: Harness, name: str, mac: bytes, sent: Sent, *, arpll: bool = True,
               addrs: tuple[int, ...] = (LL_SOURCE,), result: int = 0) -> Interface:
    ifp, _ = h.ethernet(name, mac, eflags=IfExtFlags.ARPLL if arpll else IfExtFlags.NONE)

    def send_arp(i: Interface, op: int, shw: Any, sip: Any, thw: Any, tip: int) -> int:
        sent.append((i.name, op, shw, sip, thw, tip))
        return result

    h.dl.attach_protocol(ifp, make_proto(send_arp=send_arp)[0])
    for addr in addrs:
        ifp.addresses.append(FakeInetAddr(addr))
    return ifp


def test_send_arp_without_a_target_is_einval() -> None:
    h = Harness()
    sent: Sent = []
    ifp = _with_ipv4(h, "eth0", MAC_A, sent)
    assert h.dl.send_arp(ifp, ARPOP_REQUEST, MAC_A, LL_SOURCE, None, None) == EINVAL
    assert sent == []


def test_linklocal_request_goes_out_on_every_arpll_interface_with_ipv4() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent, addrs=(0x0A000001, 0x0A000002))
    _with_ipv4(h, "eth1", MAC_B, sent, addrs=(0xC0A80001,))
    _with_ipv4(h, "eth2", MAC_C, sent, arpll=False)
    _with_ipv4(h, "eth3", MAC_PEER, sent, addrs=())
    assert h.dl.send_arp(eth0, ARPOP_REQUEST, MAC_A, OTHER, None, LL_TARGET) == 0
    assert sent == [
        ("eth0", ARPOP_REQUEST, MAC_A, 0x0A000001, None, LL_TARGET),
        ("eth1", ARPOP_REQUEST, MAC_B, 0xC0A80001, None, LL_TARGET),
    ]


def test_linklocal_fanout_result_is_the_first_senders_result() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent, result=EHOSTUNREACH)
    _with_ipv4(h, "eth1", MAC_B, sent, result=0)
    assert h.dl.send_arp(eth0, ARPOP_REQUEST, MAC_A, None, None, LL_TARGET) == EHOSTUNREACH
    assert len(sent) == 2


def test_linklocal_fanout_with_nobody_able_to_send_is_enotsup() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent, arpll=False)
    assert h.dl.send_arp(eth0, ARPOP_REQUEST, MAC_A, OTHER, None, LL_TARGET) == ENOTSUP
    assert sent == []


def test_linklocal_fanout_skips_arpll_interfaces_without_ipv4_protocol() -> None:
    h = Harness()
    sent: Sent = []
    bare, _ = h.ethernet("eth9", MAC_C, eflags=IfExtFlags.ARPLL)
    bare.addresses.append(FakeInetAddr(LL_SOURCE))
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent)
    # eth9 comes first and answers ENOTSUP (no IPv4 attachment): eth0's result replaces it
    assert h.dl.send_arp(eth0, ARPOP_REQUEST, MAC_A, OTHER, None, LL_TARGET) == 0
    assert [s[0] for s in sent] == ["eth0"]


def test_linklocal_request_without_a_sender_address_is_no_announcement_and_fans_out() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent)
    _with_ipv4(h, "eth1", MAC_B, sent, addrs=(OTHER,))
    assert h.dl.send_arp(eth0, ARPOP_REQUEST, None, None, None, LL_TARGET) == 0
    assert sent == [
        ("eth0", ARPOP_REQUEST, MAC_A, LL_SOURCE, None, LL_TARGET),
        ("eth1", ARPOP_REQUEST, MAC_B, OTHER, None, LL_TARGET),
    ]


def test_linklocal_announcement_goes_only_on_the_given_interface() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent)
    _with_ipv4(h, "eth1", MAC_B, sent)
    assert h.dl.send_arp(eth0, ARPOP_REQUEST, MAC_A, LL_TARGET, None, LL_TARGET) == 0
    assert sent == [("eth0", ARPOP_REQUEST, MAC_A, LL_TARGET, None, LL_TARGET)]


def test_linklocal_reply_goes_only_on_the_given_interface() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent)
    _with_ipv4(h, "eth1", MAC_B, sent)
    h.dl.send_arp(eth0, ARPOP_REPLY, MAC_A, LL_SOURCE, MAC_PEER, LL_TARGET)
    assert [s[0] for s in sent] == ["eth0"]


def test_linklocal_fanout_off_when_not_ipv4_ll_arp_aware() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent)
    _with_ipv4(h, "eth1", MAC_B, sent)
    h.dl.ipv4_ll_arp_aware = False
    h.dl.send_arp(eth0, ARPOP_REQUEST, MAC_A, OTHER, None, LL_TARGET)
    assert [s[0] for s in sent] == ["eth0"]


def test_other_arp_goes_out_on_the_given_interface_with_given_addresses() -> None:
    h = Harness()
    sent: Sent = []
    eth0 = _with_ipv4(h, "eth0", MAC_A, sent)
    _with_ipv4(h, "eth1", MAC_B, sent)
    assert h.dl.send_arp(eth0, ARPOP_REQUEST, MAC_A, 0x0A000001, None, 0x0A000002) == 0
    assert sent == [("eth0", ARPOP_REQUEST, MAC_A, 0x0A000001, None, 0x0A000002)]


def test_send_arp_without_an_ipv4_attachment_is_enotsup() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    assert h.dl.send_arp(ifp, ARPOP_REQUEST, MAC_A, OTHER, None, 0x0A000002) == ENOTSUP


def test_send_arp_through_an_attachment_without_send_arp_is_enotsup() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto()[0])
    assert h.dl.send_arp(ifp, ARPOP_REQUEST, MAC_A, OTHER, None, 0x0A000002) == ENOTSUP
    assert ifp.protocols[AF_INET].refcount == 1


def test_first_ipv4_address_skips_the_link_address_and_other_families() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    ifp.addresses.append(FakeInetAddr(7, family=AF_TEST))
    ifp.addresses.append(FakeInetAddr(OTHER))
    assert isinstance(ifp.addresses[0], LinkAddress)
    assert first_ipv4_address(ifp) == OTHER


def test_is_ipv4_linklocal_is_169_254_slash_16() -> None:
    assert is_ipv4_linklocal(0xA9FE0000) and is_ipv4_linklocal(0xA9FEFFFF)
    assert not is_ipv4_linklocal(0xA9FF0000) and not is_ipv4_linklocal(0xA9FD0001)


# -- multicast resolution ---------------------------------------------------


def _resolver(result: int, lladdr: bytes) -> Any:
    def resolve(ifp: Interface, addr: Any) -> tuple[int, bytes]:
        return result, lladdr
    return resolve


def test_resolve_multi_on_a_detaching_interface_is_eopnotsupp() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.detach(ifp)
    assert h.dl.resolve_multi(ifp, AF_INET, 0xE0000001) == (EOPNOTSUPP, b"")


def test_resolve_multi_checks_the_link_address_the_protocol_gave() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    mac = ipv4_multicast_mac(0xE0000001)
    h.dl.attach_protocol(ifp, make_proto(resolve_multi=_resolver(0, mac))[0])
    assert h.dl.resolve_multi(ifp, AF_INET, 0xE0000001) == (0, mac)


def test_resolve_multi_refuses_a_unicast_link_address_from_the_protocol() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(resolve_multi=_resolver(0, MAC_B))[0])
    assert h.dl.resolve_multi(ifp, AF_INET, 0xE0000001)[0] == EADDRNOTAVAIL


def test_resolve_multi_without_protocol_answer_checks_the_protocol_address() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    assert h.dl.resolve_multi(ifp, AF_INET, 0xE0000001)[0] == 0
    assert h.dl.resolve_multi(ifp, AF_INET, 0x0A000001)[0] == EADDRNOTAVAIL
    h.dl.attach_protocol(ifp, make_proto(resolve_multi=_resolver(EOPNOTSUPP, b""))[0])
    assert h.dl.resolve_multi(ifp, AF_INET, 0xEFFFFFFF)[0] == 0


def test_resolve_multi_protocol_error_is_returned_unchecked() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(resolve_multi=_resolver(EPERM, b""))[0])
    assert h.dl.resolve_multi(ifp, AF_INET, 0xE0000001) == (EPERM, b"")
    assert ifp.ioref == 0 and ifp.protocols[AF_INET].refcount == 1


def test_resolve_multi_of_a_link_address_is_checked_for_the_group_bit() -> None:
    h = Harness()
    ifp, _ = h.ethernet()
    h.dl.attach_protocol(ifp, make_proto(family=AF_TEST, ethertypes=(ETHERTYPE_TEST,))[0])
    assert h.dl.resolve_multi(ifp, 0, bytes.fromhex("333300000001"))[0] == 0
    assert h.dl.resolve_multi(ifp, 0, MAC_A)[0] == EADDRNOTAVAIL

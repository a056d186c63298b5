"""Reassembly in the composed engine: a 3,000-byte ping to the router is answered,
in fragments the host puts back together; an unfinished datagram is timed out
by ``tick`` at the deadline ``next_deadline`` announced."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, fragment
from scapy.layers.l2 import Ether

from tests.unit.engine.support import lan


def big_ping(dst: str, size: int = 3000, ident: int = 0x4242) -> bytes:
    return bytes(IP(src="10.0.0.2", dst=dst, id=ident) / ICMP(id=9, seq=1) / (b"z" * size))


def test_a_3000_byte_ping_to_the_router_is_answered() -> None:
    lan_ = lan()
    lan_.h1.send_datagram(big_ping("10.0.0.1"))  # the host fragments it (MTU 1500)
    lan_.net.run()
    stats = lan_.r.stats()["ipv4"]
    assert stats["fragments_in"] == 3 and stats["reassembled"] == 1
    assert stats["fragments_out"] == 3  # the reply, fragmented on the way out
    host = lan_.h1.stats()
    assert host["ipv4"]["reassembled"] == 1 and host["icmp"].get("in_type_0") == 1


def test_the_far_address_answers_a_big_ping_too() -> None:
    lan_ = lan()
    lan_.h1.send_datagram(big_ping("10.1.0.1", size=5000))
    lan_.net.run()
    assert lan_.h1.stats()["icmp"].get("in_type_0") == 1


def test_an_unfinished_datagram_expires_at_the_announced_deadline() -> None:
    lan_ = lan()
    r = lan_.r
    frags = fragment(IP(big_ping("10.0.0.1")), fragsize=1480)
    eth0 = r.interface("eth0")
    assert eth0 is not None
    frame = bytes(Ether(dst="02:00:00:00:01:00", src="02:00:00:00:02:00") / frags[0])
    start = lan_.net.now
    r.receive(eth0.index, frame, start)
    assert r.next_deadline() is not None and r.next_deadline() <= start + 30.0
    lan_.net.advance(31.0)
    assert r.drop_counts()["ipv4.reassembly_timeout"] == 1
    assert r.stats()["icmp"].get("out_type_11") == 1  # time exceeded (reassembly)
    assert r.ipv4.reassembly.memory == 0


def test_forwarded_fragments_are_never_reassembled() -> None:
    lan_ = lan()
    lan_.h1.send_datagram(bytes(IP(src="10.0.0.2", dst="10.1.0.2", id=7) / ICMP()
                                / (b"f" * 3000)))
    lan_.net.run()
    r_stats = lan_.r.stats()["ipv4"]
    # three fragments there and three of the reply back, each forwarded as it came
    assert r_stats["forwarded"] == 6 and r_stats["reassembled"] == 0
    assert r_stats["fragments_in"] == 0
    assert lan_.h2.stats()["ipv4"]["reassembled"] == 1
    assert lan_.h1.stats()["icmp"].get("in_type_0") == 1

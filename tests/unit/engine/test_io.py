"""The engine's packet paths: ARP holding and release, ICMP, taps, filters, hooks."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

from router import Engine, EngineConfig
from router.contracts import InterfaceFilter, Packet
from router.errors import EJUSTRETURN
from router.link.ifnet import AF_INET, Interface
from router.ng.tap import Direction
from tests.unit.engine.support import H1_MAC, R_MAC0, icmp_seen, lan, ping


def test_ping_across_the_router_resolves_arp_on_both_sides() -> None:
    lab = lan()
    assert lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2")) == 0
    lab.net.run()
    replies = icmp_seen(lab.net.segments["a"].frames_from("r"), 0)
    assert len(replies) == 1 and replies[0][IP].src == "10.1.0.2"
    assert replies[0].dst == H1_MAC
    assert lab.r.stats()["ipv4"]["forwarded"] == 2
    arp_b = [Ether(f) for f in lab.net.segments["b"].frames_from("r") if ARP in Ether(f)]
    assert any(a[ARP].pdst == "10.1.0.2" and a[ARP].op == 1 for a in arp_b)


def test_packets_wait_for_arp_and_leave_in_order() -> None:
    lab = lan()
    for seq in range(3):
        lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2", seq=seq))
    lab.net.run()
    requests = [Ether(f) for f in lab.net.segments["b"].frames_from("r")
                if ICMP in Ether(f)]
    assert [p[ICMP].seq for p in requests] == [0, 1, 2]


def test_unanswered_arp_gives_host_unreachable_to_the_source() -> None:
    lab = lan()
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.99"))
    lab.net.advance(30)
    errors = icmp_seen(lab.net.segments["a"].frames_from("r"), 3)
    assert len(errors) == 1 and errors[0][ICMP].code == 1
    assert errors[0][IP].src == "10.0.0.1"
    assert lab.r.drop_counts()["ipv4.host_unreachable"] == 1


def test_ttl_expiry_in_the_router_gives_time_exceeded() -> None:
    lab = lan()
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2", ttl=1))
    lab.net.run()
    (msg,) = icmp_seen(lab.net.segments["a"].frames_from("r"), 11)
    assert msg[IP].src == "10.0.0.1" and msg[IP].dst == "10.0.0.2"


def test_router_answers_ping_to_its_far_address() -> None:
    lab = lan()
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.1"))
    lab.net.run()
    (reply,) = icmp_seen(lab.net.segments["a"].frames_from("r"), 0)
    assert reply[IP].src == "10.1.0.1"


def test_taps_see_frames_in_and_out_with_the_engine_time() -> None:
    lab = lan()
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2"))  # warm up ARP on both sides
    lab.net.run()
    tap_in = lab.r.tap("eth0")
    tap_out = lab.r.tap("eth1")
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2"))
    lab.net.run()
    records = lab.r.drain_taps()
    by_tap = {tap_in: [], tap_out: []}  # type: dict[object, list[object]]
    for handle, record in records:
        by_tap[handle].append(record)
    assert [r.direction for r in by_tap[tap_in]] == [Direction.IN, Direction.OUT]
    assert [r.direction for r in by_tap[tap_out]] == [Direction.OUT, Direction.IN]
    assert all(r.timestamp == lab.net.now for r in by_tap[tap_in])
    sent = lab.net.segments["b"].frames_from("r")[-1]
    assert by_tap[tap_out][0].frame == sent
    lab.r.untap(tap_in)
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2", seq=2))
    lab.net.run()
    assert all(handle is tap_out for handle, _ in lab.r.drain_taps())


def test_input_filter_can_take_packets_and_output_filter_sees_them() -> None:
    lab = lan()
    ifp = lab.r.interface("eth0")
    assert ifp is not None
    taken: list[bytes] = []
    seen_out: list[bytes] = []

    def take_udp(_: Interface, family: int, pkt: Packet) -> int:
        if UDP in Ether(bytes(pkt.data)):
            taken.append(bytes(pkt.data))
            return EJUSTRETURN
        return 0

    def watch(_: Interface, family: int, pkt: Packet) -> int:
        seen_out.append(bytes(pkt.data))
        return 0

    lab.r.dl.attach_filter(ifp, InterfaceFilter("take-udp", AF_INET, input=take_udp))
    out_ifp = lab.r.interface("eth1")
    assert out_ifp is not None
    lab.r.dl.attach_filter(out_ifp, InterfaceFilter("watch", AF_INET, output=watch))
    before = len(lab.net.segments["b"].frames_from("r"))
    lab.h1.send_datagram(bytes(IP(src="10.0.0.2", dst="10.1.0.2") / UDP(dport=9)))
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2"))
    lab.net.run()
    assert len(taken) == 1
    assert [ICMP in Ether(f) for f in seen_out if IP in Ether(f)] == [True]
    assert seen_out == lab.net.segments["b"].frames_from("r")[before:]


def test_hook_traffic_is_routed_like_any_interface() -> None:
    engine = Engine()
    engine.add_ethernet("eth0", R_MAC0)
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.create_ng()
    engine.add_alias("ng0", "10.9.0.1/32", dest="10.9.0.2")
    handle = engine.hook_connect("ng0", "inet")
    engine.hook_send(handle, ping("10.9.0.2", "10.0.0.1"))
    ((out_handle, packet),) = engine.drain_hook_output()
    assert out_handle == handle
    assert IP(packet)[ICMP].type == 0 and IP(packet).dst == "10.9.0.2"
    engine.set_arp("eth0", "10.0.0.5", "02:00:00:00:00:05")
    engine.receive(1, bytes(Ether(dst=R_MAC0, src="02:00:00:00:00:05")
                            / IP(src="10.0.0.5", dst="10.9.0.2", ttl=5) / UDP()), 1.0)
    ((_, forwarded),) = engine.drain_hook_output()
    assert IP(forwarded).ttl == 4
    ng = engine.interface("ng0")
    assert ng is not None and ng.counters.opackets == 2 and ng.counters.ipackets == 1


def test_arp_for_us_is_answered_through_the_data_link_layer() -> None:
    engine = Engine()
    engine.add_ethernet("eth0", R_MAC0)
    engine.add_alias("eth0", "10.0.0.1/24")
    now = 0.0
    while (deadline := engine.next_deadline()) is not None and deadline < 20.0:
        now = deadline
        engine.tick(now)  # conflict detection runs its course
    engine.transmit()
    request = Ether(dst="ff:ff:ff:ff:ff:ff", src=H1_MAC) / ARP(
        op=1, hwsrc=H1_MAC, psrc="10.0.0.2", pdst="10.0.0.1")
    engine.receive(1, bytes(request), 21.0)
    ((ifindex, frame),) = engine.transmit()
    reply = Ether(frame)
    assert ifindex == 1 and reply[ARP].op == 2 and reply[ARP].hwsrc == R_MAC0
    counters = engine.counters("eth0")
    assert counters["opackets"] >= 1 and counters["imcasts"] == 1


def test_removed_interface_stops_traffic_and_drops_what_arrives() -> None:
    lab = lan()
    lab.r.remove_interface("eth1")
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2"))
    lab.net.run()
    errors = icmp_seen(lab.net.segments["a"].frames_from("r"), 3)
    assert len(errors) == 1 and errors[0][ICMP].code == 0  # no route any more
    lab.r.receive(2, b"\x00" * 60, lab.net.now)
    assert lab.r.drop_counts()["engine.no_interface"] == 1


def test_fast_path_off_still_forwards() -> None:
    lab = lan(EngineConfig(fast_path=False))
    lab.h1.send_datagram(ping("10.0.0.2", "10.1.0.2"))
    lab.net.run()
    assert len(icmp_seen(lab.net.segments["a"].frames_from("r"), 0)) == 1
    assert lab.r.fastpath is None

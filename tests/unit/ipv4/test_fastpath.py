"""The forwarding fast path: same observable behaviour as the generic path, and invalidation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPOption_NOP
from scapy.layers.l2 import ARP, Ether

from router import Engine, EngineConfig
from router.arp.config import ArpConfig
from router.contracts import InterfaceFilter, Packet
from router.link.ifnet import AF_INET, Interface

R0, R1 = "02:00:00:00:01:00", "02:00:00:00:01:01"
H1, GW, N3 = "02:00:00:00:02:00", "02:00:00:00:03:fe", "02:00:00:00:03:03"


def router(fast: bool) -> Engine:
    engine = Engine(EngineConfig(fast_path=fast, arp=ArpConfig(seed=7)))
    engine.add_ethernet("eth0", R0)
    engine.add_ethernet("eth1", R1)
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    engine.add_route("192.168.0.0/16", gateway="10.1.0.254")
    engine.set_arp("eth0", "10.0.0.2", H1)
    engine.set_arp("eth1", "10.1.0.254", GW)
    engine.set_arp("eth1", "10.1.0.2", "02:00:00:00:03:02")
    engine.transmit()  # the new addresses' gratuitous ARPs: not the traffic under test
    return engine


def udp(dst: str, *, ttl: int = 64, size: int = 22, src: str = "10.0.0.2", mac: str = R0,
        **ip: Any) -> bytes:
    return bytes(Ether(dst=mac, src=H1) / IP(src=src, dst=dst, ttl=ttl, **ip) / UDP()
                 / (b"u" * size))


def corrupt_checksum(frame: bytes) -> bytes:
    raw = bytearray(frame)
    raw[24] ^= 0x55
    return bytes(raw)


FRAMES: dict[str, bytes] = {
    "fwd": udp("10.1.0.2"),
    "fwd_gateway": udp("192.168.7.7"),
    "fwd_big": udp("10.1.0.2", size=1400),
    "fwd_big_df": udp("192.168.1.1", size=1400, flags="DF"),
    "fwd_unresolved": udp("10.1.0.3"),
    "ttl_1": udp("10.1.0.2", ttl=1),
    "ttl_2": udp("10.1.0.2", ttl=2),
    "bad_checksum": corrupt_checksum(udp("10.1.0.2")),
    "to_router": bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.1.0.1") / ICMP()),
    "padded": bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.1.0.2") / UDP())
    + bytes(18),
    "other_mac": udp("10.1.0.2", mac="02:00:00:00:09:09"),
    "options": bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.1.0.2",
                                                options=[IPOption_NOP()] * 4) / UDP()),
    "martian": udp("10.1.0.2", src="127.0.0.1"),
    "own_source": udp("10.1.0.2", src="10.1.0.1"),  # a martian too: one of our addresses
    "own_source_gateway": udp("192.168.7.7", src="10.0.0.1"),
    "src_like_ours": udp("10.1.0.2", src="10.0.7.1"),  # ends like ours, is not: fast
    "no_route": udp("172.16.0.1"),
    "truncated": udp("10.1.0.2")[:40],
    "arp_request": bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=H1)
                         / ARP(op=1, hwsrc=H1, psrc="10.0.0.2", pdst="10.0.0.1")),
    "arp_reply_n3": bytes(Ether(dst=R1, src=N3)
                          / ARP(op=2, hwsrc=N3, psrc="10.1.0.3", hwdst=R1, pdst="10.1.0.1")),
}
INGRESS = {"arp_reply_n3": 2}

Op = tuple[str, Any]
ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.lists(st.sampled_from(sorted(FRAMES)), min_size=1,
                                             max_size=8)),
        st.tuples(st.just("tick"), st.floats(0.0, 40.0)),
        st.tuples(st.just("mtu"), st.sampled_from([576, 1500])),
        st.tuples(st.just("route"), st.sampled_from(["add", "delete"])),
        st.tuples(st.just("static_arp"), st.sampled_from([GW, "02:00:00:00:03:fd"])),
        st.tuples(st.just("tap"), st.booleans()),
    ),
    max_size=25,
)


def apply(engine: Engine, ops: list[Op]) -> list[Any]:
    """Run ``ops`` and write down everything an observer could see."""
    seen: list[Any] = []
    now = 1.0
    tap = None
    for kind, arg in ops:
        if kind == "batch":
            by_if: dict[int, list[bytes]] = {}
            for name in arg:
                by_if.setdefault(INGRESS.get(name, 1), []).append(FRAMES[name])
            for ifindex, frames in by_if.items():
                engine.receive_batch(ifindex, frames, now)
        elif kind == "tick":
            now += arg
            engine.tick(now)
        elif kind == "mtu":
            engine.set_interface("eth1", mtu=arg)
        elif kind == "route":
            try:
                if arg == "add":
                    engine.add_route("10.1.0.2/32", gateway="10.1.0.254")
                else:
                    engine.delete_route("10.1.0.2/32")
            except Exception as exc:  # EEXIST / ESRCH: the same in both engines
                seen.append(("error", str(exc)))
        elif kind == "static_arp":
            engine.set_arp("eth1", "10.1.0.254", arg)
        elif kind == "tap":
            if arg and tap is None:
                tap = engine.tap("eth1")
            elif not arg and tap is not None:
                engine.untap(tap)
                tap = None
        seen.append(("out", engine.transmit()))
        seen.append(("taps", [(r.direction, r.frame, r.timestamp)
                              for _, r in engine.drain_taps()]))
    seen.append(("events", [(e.seq, e.kind, e.ifname, e.ifindex, e.data)
                            for e in engine.drain_events()]))
    seen.append(("counters", {i.name: i.counters.as_dict() for i in engine.interfaces()}))
    stats = engine.stats()
    stats.pop("fastpath")
    seen.append(("stats", stats))
    seen.append(("drops", engine.drop_counts()))
    seen.append(("arp", [(e.ifname, e.addr, e.lladdr, e.state) for e in engine.arp_entries()]))
    return seen


@settings(max_examples=40, deadline=None)
@given(ops_strategy)
def test_fast_and_generic_paths_are_indistinguishable(ops: list[Op]) -> None:
    assert apply(router(fast=True), ops) == apply(router(fast=False), ops)


def test_traffic_mix_takes_the_fast_path_and_matches_byte_for_byte() -> None:
    ops: list[Op] = [("batch", ["fwd", "fwd_gateway", "bad_checksum", "fwd", "ttl_1",
                                "padded", "fwd_unresolved", "fwd", "arp_reply_n3",
                                "fwd_unresolved", "fwd"]),
                     ("mtu", 576), ("batch", ["fwd_big", "fwd_big_df", "fwd"])]
    fast = router(fast=True)
    assert apply(fast, ops) == apply(router(fast=False), ops)
    assert fast.fastpath is not None and fast.fastpath.hits >= 6


def test_plain_forwarding_is_counted_like_the_generic_path() -> None:
    fast = router(fast=True)
    sent_before = fast.counters("eth1")["opackets"]  # the gratuitous ARP of 10.1.0.1
    fast.receive_batch(1, [FRAMES["fwd"]] * 5, 1.0)
    out = fast.transmit()
    assert len(out) == 5 and fast.fastpath is not None and fast.fastpath.hits == 5
    frame = Ether(out[0][1])
    assert (frame.dst, frame.src, frame[IP].ttl) == ("02:00:00:00:03:02", R1, 63)
    assert fast.counters("eth0")["ipackets"] == 5
    assert fast.counters("eth1")["opackets"] - sent_before == 5
    assert fast.stats()["ipv4"]["forwarded"] == 5


def test_route_change_invalidates_the_cache() -> None:
    fast = router(fast=True)
    fast.receive_batch(1, [FRAMES["fwd"]] * 2, 1.0)
    fast.add_route("10.1.0.2/32", gateway="10.1.0.254")
    fast.receive_batch(1, [FRAMES["fwd"]], 2.0)
    out = fast.transmit()
    assert [Ether(f).dst for _, f in out] == ["02:00:00:00:03:02"] * 2 + [GW]


def test_arp_change_invalidates_the_cache() -> None:
    fast = router(fast=True)
    fast.receive_batch(1, [FRAMES["fwd_gateway"]] * 2, 1.0)
    fast.set_arp("eth1", "10.1.0.254", "02:00:00:00:03:fd")
    fast.receive_batch(1, [FRAMES["fwd_gateway"]], 2.0)
    assert [Ether(f).dst for _, f in fast.transmit()][-1] == "02:00:00:00:03:fd"


def test_smaller_mtu_sends_big_frames_the_generic_way() -> None:
    fast = router(fast=True)
    fast.receive_batch(1, [FRAMES["fwd_big"]], 1.0)
    fast.set_interface("eth1", mtu=576)
    fast.receive_batch(1, [FRAMES["fwd_big"]], 2.0)
    sizes = [len(f) for _, f in fast.transmit()]
    assert sizes[0] == len(FRAMES["fwd_big"]) and all(s <= 576 + 14 for s in sizes[1:])
    assert fast.stats()["ipv4"]["fragments_out"] == 3


def test_filters_make_the_fast_path_step_aside() -> None:
    fast = router(fast=True)
    fast.receive_batch(1, [FRAMES["fwd"]] * 2, 1.0)
    hits = fast.fastpath.hits if fast.fastpath else 0
    seen: list[bytes] = []

    def watch(_: Interface, family: int, pkt: Packet) -> int:
        seen.append(bytes(pkt.data))
        return 0

    ifp = fast.interface("eth1")
    assert ifp is not None
    fast.dl.attach_filter(ifp, InterfaceFilter("watch", AF_INET, output=watch))
    fast.receive_batch(1, [FRAMES["fwd"]] * 3, 2.0)
    assert len(seen) == 3
    assert fast.fastpath is not None and fast.fastpath.hits == hits


def test_tap_makes_the_fast_path_step_aside_and_sees_every_frame() -> None:
    fast = router(fast=True)
    tap = fast.tap("eth0")
    fast.receive_batch(1, [FRAMES["fwd"]] * 3, 1.0)
    assert len(fast.drain_taps()) == 3
    assert fast.fastpath is not None and fast.fastpath.hits == 0
    fast.untap(tap)
    fast.receive_batch(1, [FRAMES["fwd"]] * 3, 2.0)
    assert fast.fastpath.hits == 3


def test_generic_frames_between_fast_ones_keep_arrival_order() -> None:
    fast = router(fast=True)
    batch = [FRAMES["fwd"], udp("10.1.0.2", ttl=9), FRAMES["fwd_gateway"], FRAMES["ttl_2"],
             FRAMES["fwd"]]
    fast.receive_batch(1, batch, 1.0)
    ttls = [Ether(f)[IP].ttl for _, f in fast.transmit()]
    assert ttls == [63, 8, 63, 1, 63]


def test_a_source_that_is_ours_goes_the_generic_way_and_is_dropped() -> None:
    fast = router(fast=True)
    fast.receive_batch(1, [FRAMES["own_source"], FRAMES["src_like_ours"]], 1.0)
    out = fast.transmit()
    assert len(out) == 1 and Ether(out[0][1])[IP].src == "10.0.7.1"
    assert fast.fastpath is not None and fast.fastpath.hits == 1
    assert fast.drop_counts()["ipv4.own_source"] == 1

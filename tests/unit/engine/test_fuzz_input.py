"""Fuzzing the frame input path: random and mutated frames never raise, counters only grow."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from router import Engine, EngineConfig
from router.arp.config import ArpConfig

R0, R1, H1 = "02:00:00:00:01:00", "02:00:00:00:01:01", "02:00:00:00:02:00"

TEMPLATES = [
    bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.1.0.2") / UDP() / b"payload"),
    bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP() / b"ping"),
    bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.1.0.9", ttl=1) / ICMP()),
    bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=H1)
          / ARP(op=1, hwsrc=H1, psrc="10.0.0.2", pdst="10.0.0.1")),
    bytes(Ether(dst=R0, src=H1) / ARP(op=2, hwsrc=H1, psrc="10.0.0.2", pdst="10.0.0.1")),
    bytes(Ether(dst=R0, src=H1) / Dot1Q(vlan=5) / IP(src="10.0.0.2", dst="10.1.0.2") / UDP()),
    bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.1.0.2", flags="MF") / UDP()),
    bytes(Ether(dst=R0, src=H1) / IP(src="10.0.0.2", dst="10.1.0.2") / ICMP(type=3)
          / IP(src="10.1.0.2", dst="10.0.0.2") / UDP()),
]


def router(fast: bool) -> Engine:
    engine = Engine(EngineConfig(fast_path=fast, arp=ArpConfig(seed=3)))
    engine.add_ethernet("eth0", R0)
    engine.add_ethernet("eth1", R1, mtu=576)
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    engine.set_arp("eth0", "10.0.0.2", H1)
    engine.set_arp("eth1", "10.1.0.2", "02:00:00:00:03:02")
    engine.add_route("0.0.0.0/0", gateway="10.1.0.254")
    return engine


def numbers(engine: Engine) -> dict[str, int]:
    """Every counter of the engine, flattened."""
    flat: dict[str, int] = {}
    for ifp in engine.interfaces():
        flat.update({f"{ifp.name}.{k}": v for k, v in ifp.counters.as_dict().items()})
    for layer, values in engine.stats().items():
        flat.update({f"{layer}.{k}": v for k, v in values.items()})
    flat.update(engine.drop_counts())
    return flat


def mutate(data: Any) -> bytes:
    frame = bytearray(data.draw(st.sampled_from(TEMPLATES)))
    for _ in range(data.draw(st.integers(0, 6))):
        position = data.draw(st.integers(0, len(frame) - 1))
        frame[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    return bytes(frame[:cut]) + data.draw(st.binary(max_size=8))


def check(engine: Engine, batches: list[list[bytes]]) -> None:
    before = numbers(engine)
    now = 1.0
    for batch in batches:
        engine.receive_batch(1, batch, now)
        engine.transmit()
        after = numbers(engine)
        shrunk = {k: (before.get(k, 0), v) for k, v in after.items() if v < before.get(k, 0)}
        assert not shrunk, shrunk
        before = after
        now += 0.5
        engine.tick(now)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=120), min_size=1, max_size=6), max_size=6),
       st.booleans())
def test_random_frames_never_raise_and_counters_only_grow(
    batches: list[list[bytes]], fast: bool
) -> None:
    check(router(fast), batches)


@settings(max_examples=120, deadline=None)
@given(st.data(), st.booleans())
def test_mutated_frames_never_raise_and_counters_only_grow(data: Any, fast: bool) -> None:
    batches = [[mutate(data) for _ in range(data.draw(st.integers(1, 5)))]
               for _ in range(data.draw(st.integers(1, 4)))]
    engine = router(fast)
    check(engine, batches)
    assert sum(numbers(engine).values()) > 0

"""ICMP error rate limits: a token bucket per destination host and a global one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP

from router.ipv4.icmp import DEFAULT_RATE_MASK, IcmpConfig, IcmpRateLimiter, Suppressed
from router.ipv4.input import Ipv4Config
from router.wire import icmp as wire
from tests.unit.ipv4.support import Rig

TE = wire.TIME_EXCEEDED


def test_default_rate_mask_is_linux_0x1818() -> None:
    assert sum(1 << t for t in DEFAULT_RATE_MASK) == 0x1818


def test_per_host_burst_then_one_token_per_interval() -> None:
    limiter = IcmpRateLimiter(IcmpConfig(per_host_interval=1.0, per_host_burst=6))
    assert [limiter.allow(TE, 1, 0.0) for _ in range(7)] == [True] * 6 + [False]
    assert not limiter.allow(TE, 1, 0.5)
    assert limiter.allow(TE, 1, 1.0)
    assert not limiter.allow(TE, 1, 1.0)


def test_per_host_limit_is_per_destination() -> None:
    limiter = IcmpRateLimiter(IcmpConfig(per_host_burst=1))
    assert limiter.allow(TE, 1, 0.0)
    assert not limiter.allow(TE, 1, 0.0)
    assert limiter.allow(TE, 2, 0.0)


def test_global_limit_caps_all_hosts_together() -> None:
    limiter = IcmpRateLimiter(IcmpConfig(global_per_sec=10, global_burst=3, per_host_burst=100))
    assert [limiter.allow(TE, host, 0.0) for host in range(5)] == [True] * 3 + [False] * 2
    assert limiter.allow(TE, 9, 0.1)  # one token back after 1/10 s


def test_refusal_by_one_limit_does_not_spend_the_other() -> None:
    limiter = IcmpRateLimiter(IcmpConfig(global_per_sec=1, global_burst=1, per_host_burst=1))
    assert limiter.allow(TE, 1, 0.0)
    assert not limiter.allow(TE, 2, 0.0)  # global empty: host 2 keeps its token
    assert limiter.allow(TE, 2, 1.0)


def test_types_outside_the_mask_are_not_limited() -> None:
    limiter = IcmpRateLimiter(IcmpConfig(per_host_burst=1, global_burst=1))
    assert all(limiter.allow(wire.ECHO_REPLY, 1, 0.0) for _ in range(100))


def test_tracked_hosts_are_bounded_least_recently_used_first() -> None:
    limiter = IcmpRateLimiter(IcmpConfig(max_tracked_hosts=3, per_host_burst=1))
    for host in (1, 2, 3):
        limiter.allow(TE, host, 0.0)
    assert not limiter.allow(TE, 1, 0.0)  # refused, but host 1 is now the most recent
    assert limiter.allow(TE, 4, 0.0)  # evicts host 2, the least recently used
    assert not limiter.allow(TE, 1, 0.0)  # host 1 still tracked: its token is spent
    assert limiter.allow(TE, 2, 0.0)  # a fresh bucket: host 2 was forgotten
    assert limiter.tracked_hosts() == 3


def test_router_time_exceeded_flood_is_limited_per_source() -> None:
    rig = Rig(config=Ipv4Config(icmp=IcmpConfig(per_host_burst=6)))
    for _ in range(20):
        rig.receive(IP(src="10.0.0.7", dst="10.1.0.9", ttl=1) / UDP(), now=0.0)
    assert len(rig.take()) == 6
    assert rig.ipv4.icmp.stats.suppressed[Suppressed.RATE_LIMITED] == 14
    rig.receive(IP(src="10.0.0.7", dst="10.1.0.9", ttl=1) / UDP(), now=1.0)
    assert len(rig.take()) == 1


def test_echo_replies_are_not_rate_limited() -> None:
    rig = Rig(config=Ipv4Config(icmp=IcmpConfig(per_host_burst=1, global_burst=1)))
    for seq in range(50):
        rig.receive(IP(src="10.0.0.7", dst="10.0.0.1") / ICMP(seq=seq), now=0.0)
    assert len(rig.take()) == 50


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 0.5), st.integers(0, 3)), min_size=1, max_size=120),
    st.integers(1, 8),
    st.floats(0.1, 2.0),
)
def test_no_host_ever_gets_more_than_burst_plus_refill(
    steps: list[tuple[float, int]], burst: int, interval: float
) -> None:
    limiter = IcmpRateLimiter(IcmpConfig(per_host_burst=burst, per_host_interval=interval,
                                         global_burst=10**6, global_per_sec=10**6))
    now = 0.0
    allowed: dict[int, int] = {}
    first: dict[int, float] = {}
    for gap, host in steps:
        now += gap
        first.setdefault(host, now)
        if limiter.allow(TE, host, now):
            allowed[host] = allowed.get(host, 0) + 1
    for host, count in allowed.items():
        assert count <= burst + (now - first[host]) / interval + 1e-9

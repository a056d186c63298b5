"""Per-identity write budgets: a token bucket each, with a retry hint when empty."""

from __future__ import annotations

import pytest

from serving.limits import WriteLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_next_write_waits_for_a_token() -> None:
    clock = Clock()
    limiter = WriteLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token per 0.5 s at 2/s
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.refused == 1


def test_identities_have_budgets_of_their_own() -> None:
    limiter = WriteLimiter(1.0, 1, clock=Clock())
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limiter = WriteLimiter(10.0, 2, clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") > 0 for _ in range(3)] == [False, False, True]


def test_memory_stays_bounded_with_many_identities() -> None:
    clock = Clock()
    limiter = WriteLimiter(1.0, 5, clock=clock, max_identities=100)
    for index in range(1000):
        limiter.take(f"id-{index}")
        clock.now += 0.001
    assert len(limiter._buckets) <= 100


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_limit_that_admits_nothing_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="write limit"):
        WriteLimiter(rate, burst)

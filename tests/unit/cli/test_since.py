"""``vrc history --since`` and vrc-controller's durations: ASCII digits, clear refusals."""

from __future__ import annotations

import argparse

import pytest

from cli.cluster import since_time
from controller.options import duration


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", 10_000 - 90), ("15m", 10_000 - 900), ("2h", 10_000 - 7200), ("1d", 0.0),
    ("1700000000", 1_700_000_000.0), ("1700000000.5", 1_700_000_000.5),
    ("1970-01-01T01:00", 3600.0), ("1970-01-01T01:00+01:00", 0.0),
])
def test_since_takes_an_age_a_unix_time_or_an_iso_time(text: str, expected: float) -> None:
    assert since_time(text, now=10_000.0) == expected


@pytest.mark.parametrize("text", ["\u0661h", "-5", "inf", "nan", "1e9", "2h ago", "",
                                  "\u0662\u0660\u0662\u0666-01-01"])  # Arabic-Indic
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="an age"):
        since_time(text, now=10_000.0)


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("900", 900.0), ("15m", 900.0),
                                               ("12h", 43_200.0), ("30d", 2_592_000.0),
                                               ("1.5s", 1.5)])
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["\u0663\u0660d", "inf", "-1", "1e3", "30 d", "d", "30w"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="a duration"):
        duration(text)

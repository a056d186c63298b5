"""Numbers from text are ASCII digits only (issue 11 item 7), wherever the agent reads one."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.metrics import parse_hostport
from agents.server import parse_listen
from serving.numbers import MAX_DIGITS, ascii_int, in_range

UNICODE_DIGITS = ["²", "٣", "۴", "५", "\uff11", "\U0001d7d9", "⑦"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=24))
def test_only_ascii_digit_runs_are_numbers(text: str) -> None:
    value = ascii_int(text)
    if re.fullmatch(f"[0-9]{{1,{MAX_DIGITS}}}", text, flags=re.ASCII):
        assert value == int(text)
    else:
        assert value is None


@pytest.mark.parametrize("text", [*UNICODE_DIGITS, "+1", "-1", " 1", "1 ", "1_0", "", "1\n",
                                  "9" * 21, "9" * 5000])
def test_what_int_would_take_or_choke_on_is_not_a_number(text: str) -> None:
    assert ascii_int(text) is None


def test_in_range_bounds_the_value() -> None:
    assert in_range("32", 0, 32) == 32
    assert in_range("33", 0, 32) is None
    assert in_range("0032", 0, 32) == 32


@pytest.mark.parametrize("port", [*UNICODE_DIGITS, "+80", "65536", " 80", "9" * 5000])
def test_listen_port_is_ascii_digits_naming_the_flag(port: str) -> None:
    with pytest.raises(ValueError, match="--listen"):
        parse_listen(f"127.0.0.1:{port}")


@pytest.mark.parametrize("port", [*UNICODE_DIGITS, "+80", "65536", " 80", "9" * 5000])
def test_metrics_port_is_ascii_digits_naming_the_flag(port: str) -> None:
    with pytest.raises(ValueError, match="--metrics"):
        parse_hostport(f"127.0.0.1:{port}")


@pytest.mark.parametrize("bad", ["٣", "²", "-1", "+3"])
def test_arp_probes_take_ascii_digits(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.daemon import main

    with pytest.raises(SystemExit) as leave:
        main(["-i", "eth1", "--arp-probes", bad])
    assert leave.value.code == 2
    assert "--arp-probes" in capsys.readouterr().err

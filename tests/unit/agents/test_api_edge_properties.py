"""Properties of the API edge: request parsing, the event log, the mailboxes."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.convert import parse_alias, parse_ipv4, parse_mac, parse_prefix
from agents.errors import status_for
from agents.gate import EventLog, Mailbox
from router.errors import EINVAL, RouterError
from router.events import Event, EventKind

SETTINGS = settings(max_examples=200, deadline=None)

ipv4s = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
plens = st.integers(0, 32)


@SETTINGS
@given(ipv4s, plens)
def test_any_address_with_length_parses_to_itself(address: str, plen: int) -> None:
    assert parse_alias("address", f"{address}/{plen}") == f"{address}/{plen}"
    assert parse_alias("address", address) == address


@SETTINGS
@given(ipv4s, plens)
def test_a_route_prefix_is_the_masked_network(address: str, plen: int) -> None:
    expected = ipaddress.IPv4Network(f"{address}/{plen}", strict=False)
    assert parse_prefix("prefix", f"{address}/{plen}") == str(expected)


@SETTINGS
@given(st.text(max_size=20))
def test_text_that_is_not_an_address_is_einval_naming_the_field(text: str) -> None:
    try:
        expected = str(ipaddress.IPv4Address(text))
    except ValueError:
        with pytest.raises(RouterError) as info:
            parse_ipv4("gateway", text)
        assert (info.value.errno, info.value.field, info.value.value) == (EINVAL, "gateway", text)
    else:
        assert parse_ipv4("gateway", text) == expected


@SETTINGS
@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-"]))
def test_mac_text_round_trips(mac: bytes, separator: str) -> None:
    assert parse_mac("mac", mac.hex(separator)) == mac


@SETTINGS
@given(st.text(max_size=20))
def test_mac_parse_either_succeeds_with_six_bytes_or_is_einval(text: str) -> None:
    try:
        assert len(parse_mac("mac", text)) == 6
    except RouterError as error:
        assert (error.errno, error.field) == (EINVAL, "mac")
        assert status_for(error.errno).name == "INVALID_ARGUMENT"


@SETTINGS
@given(st.integers(1, 8), st.lists(st.integers(0, 5), max_size=12), st.integers(0, 40))
def test_event_log_read_after_matches_brute_force(
        history: int, flushes: list[int], resume: int) -> None:
    log = EventLog(history)
    every: list[Event] = []
    for size in flushes:
        batch = [Event(EventKind.RTM_ADD, seq=len(every) + i + 1) for i in range(size)]
        every += batch
        log.extend(batch)
    kept = every[-history:] if every else []
    events, lost = log.read_after(resume, 1000)
    assert [e.seq for e in events] == [e.seq for e in kept if e.seq > resume]
    forgotten = every[:-history] if len(every) > history else []
    assert lost == any(e.seq > resume for e in forgotten)
    assert log.last_seq == len(every)


@SETTINGS
@given(st.integers(1, 10), st.lists(st.integers(0, 6), max_size=10))
def test_mailbox_keeps_at_most_its_limit_and_counts_every_drop(
        limit: int, puts: list[int]) -> None:
    box: Mailbox[int] = Mailbox(limit)
    offered = 0
    for size in puts:
        box.put_many(list(range(offered, offered + size)))
        offered += size
    taken = box.take(0, limit=1000)
    assert len(taken) <= limit
    assert len(taken) + box.dropped == offered
    assert taken == sorted(taken)  # oldest kept first, newest dropped

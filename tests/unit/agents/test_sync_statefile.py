"""--state-dir (agents/sync/statefile.py): atomic writes, and refusals that name the problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.sync import statefile
from agents.sync.items import AliasSpec, NextHopSpec, PolicySpec, RouteSpec, Spec

ITEMS: list[tuple[str, Spec, str]] = [
    ("alias/eth0/10.0.0.1", AliasSpec("eth0", "10.0.0.1/24"), "a1"),
    ("route/10.9.0.0/16", RouteSpec("10.9.0.0/16", (NextHopSpec("10.0.0.2", "eth0"),),
                                    hops=2, owner="h3"), "r1"),
    ("policy", PolicySpec("refuse"), "p1"),
]


def test_what_is_saved_is_what_is_loaded(tmp_path: Path) -> None:
    statefile.save(tmp_path, "h1", 42, ITEMS, controller="c1")
    saved = statefile.load(tmp_path, "h1")
    assert saved is not None
    assert saved.version == 42 and saved.controller == "c1" and saved.saved_at > 0
    assert [(k, i.spec, i.fingerprint) for k, i in saved.items.items()] == ITEMS
    route = saved.items["route/10.9.0.0/16"].spec
    assert isinstance(route, RouteSpec) and (route.owner, route.hops) == ("h3", 2)


def test_a_save_replaces_the_file_whole_and_leaves_no_temporary_behind(tmp_path: Path) -> None:
    statefile.save(tmp_path, "h1", 1, ITEMS)
    statefile.save(tmp_path, "h1", 2, ITEMS[:1])
    assert sorted(os.listdir(tmp_path)) == [statefile.STATE_FILE]
    saved = statefile.load(tmp_path, "h1")
    assert saved is not None and saved.version == 2 and len(saved.items) == 1
    assert os.stat(tmp_path / statefile.STATE_FILE).st_mode & 0o777 == 0o600


def test_no_file_is_no_state(tmp_path: Path) -> None:
    assert statefile.load(tmp_path, "h1") is None


def test_a_corrupt_file_is_refused_by_name_and_can_be_set_aside(tmp_path: Path) -> None:
    (tmp_path / statefile.STATE_FILE).write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(statefile.StateFileError, match=r"sync-state\.pb"):
        statefile.load(tmp_path, "h1")
    moved = statefile.set_aside(tmp_path)
    assert moved is not None and moved.name == "sync-state.pb.bad"
    assert statefile.load(tmp_path, "h1") is None


def test_a_file_saved_by_another_host_is_refused(tmp_path: Path) -> None:
    statefile.save(tmp_path, "h2", 1, ITEMS)
    with pytest.raises(statefile.StateFileError, match="saved by host 'h2', this is 'h1'"):
        statefile.load(tmp_path, "h1")

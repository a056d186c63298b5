"""The pure parts, without etcd: roles, route keys, mark and sweep, backoff, stream budgets,
the etcd binary choice, and etcd authentication (this one on a real etcd)."""

from __future__ import annotations

import os
import random
import stat
import subprocess
from pathlib import Path

import pytest

from controller import validate
from controller.etcd import Backoff, ChangeKind, EtcdClient, EtcdConfig, EtcdRefused, KeyValue
from controller.etcd import embedded as emb
from controller.etcd.watch import sweep
from controller.store import (
    ClaimRecord,
    Mode,
    RankedClaim,
    Role,
    claim_roles,
    effective_mode,
    route_key,
)
from serving.streams import BudgetExceeded, StreamBudget, client_of
from tests.etcd import TestEtcd


def ranked(host: str, revision: int) -> RankedClaim:
    return RankedClaim(ClaimRecord("10.9.0.0/16", host, "eth1"), revision)


def test_the_oldest_live_claim_owns_the_prefix() -> None:
    claims = [ranked("h3", 30), ranked("h1", 10), ranked("h2", 20)]
    assert claim_roles(claims, Mode.ALLOW, {"h1", "h2", "h3"}.__contains__) == [
        Role.STANDBY, Role.OWNER, Role.STANDBY]
    assert claim_roles(claims, Mode.ALLOW, {"h2", "h3"}.__contains__) == [
        Role.STANDBY, Role.DOWN, Role.OWNER]
    assert claim_roles(claims, Mode.MULTIPATH, {"h1", "h3"}.__contains__) == [
        Role.OWNER, Role.OWNER, Role.DOWN]
    assert claim_roles(claims, Mode.REFUSE, set().__contains__) == [Role.DOWN] * 3


def test_a_host_override_wins_over_the_cluster_mode() -> None:
    assert effective_mode(None, {}, "h1") is Mode.ALLOW
    assert effective_mode(Mode.REFUSE, {}, "h1") is Mode.REFUSE
    assert effective_mode(Mode.REFUSE, {"h1": Mode.MULTIPATH}, "h1") is Mode.MULTIPATH


def test_route_keys_are_the_engines_prefix_route_keys() -> None:
    broadcast = validate.alias("h1", "eth1", "10.1.2.3/20", "", "")
    assert route_key(broadcast, point_to_point=False) == "10.1.0.0/20"
    p2p = validate.alias("h1", "ng0", "10.1.2.3/24", "", "10.9.9.9")
    assert route_key(p2p, point_to_point=True) == "10.9.9.9/32"


def kv(key: str, revision: int, value: bytes = b"v") -> KeyValue:
    return KeyValue(key, value, revision, revision, 1)


def test_sweep_finds_exactly_what_differs() -> None:
    known = {"a": kv("a", 1), "b": kv("b", 2), "c": kv("c", 3, b"old")}
    listed = {"a": kv("a", 1), "c": kv("c", 9, b"new"), "d": kv("d", 8)}
    changes = sweep(known, listed, 10)
    assert [(c.kind, c.key, c.revision) for c in changes] == [
        (ChangeKind.DELETE, "b", 10), (ChangeKind.PUT, "d", 8), (ChangeKind.PUT, "c", 9)]
    assert changes[0].value == b"v", "a swept DELETE carries the value it had"


def test_sweep_against_a_random_history_rebuilds_the_listing() -> None:
    rng = random.Random(5)
    for _ in range(50):
        known = {f"k{i}": kv(f"k{i}", rng.randrange(1, 50)) for i in range(rng.randrange(20))}
        listed = {f"k{i}": kv(f"k{i}", rng.randrange(1, 60)) for i in range(rng.randrange(20))}
        state = {k: v.mod_revision for k, v in known.items()}
        for change in sweep(known, listed, 99):
            if change.kind is ChangeKind.PUT:
                state[change.key] = change.revision
            else:
                del state[change.key]
        assert state == {k: v.mod_revision for k, v in listed.items()}


def test_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(0.1, 5.0, rng=random.Random(1))
    bounds = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    delays = [backoff.next() for _ in bounds]
    assert all(b / 2 <= d <= b for d, b in zip(delays, bounds, strict=True))
    backoff.reset()
    assert backoff.peek() == 0.1


def test_stream_budget_per_client_and_in_total() -> None:
    budget = StreamBudget(3, 2, what="streams", flag="--max")
    a1 = budget.acquire("ipv4:10.0.0.1:1000")
    budget.acquire("ipv4:10.0.0.1:1001")
    with pytest.raises(BudgetExceeded, match=r"ipv4:10\.0\.0\.1 already has 2 streams"):
        budget.acquire("ipv4:10.0.0.1:1002")
    budget.acquire("unix:")
    with pytest.raises(BudgetExceeded, match=r"all 3 streams are open.*--max"):
        budget.acquire("ipv6:[::1]:7")
    a1()
    a1()  # giving a slot back twice frees it once
    assert budget.open == 2
    with budget.slot("ipv6:[::1]:7"):
        assert budget.open_for("ipv6:[::1]") == 1
    assert budget.open == 2


def test_clients_are_peers_without_their_port() -> None:
    assert client_of("ipv4:127.0.0.1:5555") == "ipv4:127.0.0.1"
    assert client_of("ipv6:[::1]:5555") == "ipv6:[::1]"
    assert client_of("unix:/run/x.sock") == "unix"


def test_a_wrapper_script_named_etcd_is_skipped_for_the_wheels_binary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "etcd"
    script.write_text("#!/bin/sh\nexec true\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(emb.BINARY_ENV, raising=False)
    chosen = emb.find_binary()
    assert chosen in (emb.wheel_binary(), emb.DEBIAN_ETCD)
    assert "version" in subprocess.run([chosen, "--version"], capture_output=True,
                                       text=True, timeout=30).stdout.lower()


def test_a_real_etcd_on_path_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    real = emb.wheel_binary() or emb.DEBIAN_ETCD
    (tmp_path / "etcd").symlink_to(real)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(emb.BINARY_ENV, raising=False)
    assert emb.find_binary() == os.path.realpath(real)


def test_the_binary_override_must_be_an_executable(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(emb.BINARY_ENV, str(tmp_path / "nothing"))
    with pytest.raises(emb.EmbeddedEtcdError, match=emb.BINARY_ENV):
        emb.find_binary()


def test_etcd_credentials_are_used_and_a_wrong_password_is_refused(
        private_etcd: TestEtcd) -> None:
    ctl = os.path.join(os.path.dirname(emb.wheel_binary() or emb.DEBIAN_ETCD), "etcdctl")
    for command in (["user", "add", "root:secret"], ["user", "grant-role", "root", "root"],
                    ["auth", "enable"]):
        subprocess.run([ctl, f"--endpoints={private_etcd.url}", *command], check=True,
                       capture_output=True, timeout=30)
    good = EtcdClient(EtcdConfig((private_etcd.endpoint,), user="root", password="secret"))
    bad = EtcdClient(EtcdConfig((private_etcd.endpoint,), user="root", password="wrong"))
    try:
        assert good.get("/x") == (None, good.revision())
        with pytest.raises(EtcdRefused, match="authentication failed"):
            bad.get("/x")
    finally:
        good.close()
        bad.close()

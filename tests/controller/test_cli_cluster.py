"""``vrc --controller``: tables, -o json, one-line errors, exit codes, against a real controller."""

from __future__ import annotations

import json

import pytest

import cli.main as vrc
from controller.daemon import Controller
from controller.etcd.embedded import free_port


def run(capsys: pytest.CaptureFixture[str], controller: Controller | str, *argv: str
        ) -> tuple[int, str, str]:
    target = controller if isinstance(controller, str) else controller.address
    capsys.readouterr()  # drop what the controller logged so far
    code = vrc.main(["--controller", target, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_hosts_table_and_json(capsys: pytest.CaptureFixture[str],
                              controller: Controller) -> None:
    code, out, _ = run(capsys, controller, "host", "add", "h1")
    assert code == 0 and out.startswith("host h1 added (revision ")
    run(capsys, controller, "host", "add", "h2")
    code, out, _ = run(capsys, controller, "hosts")
    table = lines(out)
    assert code == 0
    assert table[0] == ["HOST", "STATE", "NICS", "AGENT", "CONTROLLER", "REVISION"]
    assert [row[:5] for row in table[1:]] == [["h1", "down", "-", "-", "-"],
                                             ["h2", "down", "-", "-", "-"]]
    code, out, _ = run(capsys, controller, "-o", "json", "hosts")
    assert [h["id"] for h in json.loads(out)] == ["h1", "h2"]
    assert all(isinstance(h["revision"], int) for h in json.loads(out))


def test_aliases_add_list_delete(capsys: pytest.CaptureFixture[str],
                                 controller: Controller) -> None:
    run(capsys, controller, "host", "add", "h1")
    code, out, _ = run(capsys, controller, "alias", "add", "h1", "eth1", "10.0.0.1/24",
                       "--broadcast", "10.0.0.255")
    assert code == 0 and "alias 10.0.0.1/24 on h1/eth1" in out
    code, out, _ = run(capsys, controller, "alias", "ls", "--host", "h1")
    assert lines(out)[1][:5] == ["h1", "eth1", "10.0.0.1/24", "10.0.0.255", "-"]
    code, out, _ = run(capsys, controller, "alias", "ls", "-o", "json")
    (alias,) = json.loads(out)
    assert (alias["address"], alias["broadcast"]) == ("10.0.0.1/24", "10.0.0.255")
    code, out, _ = run(capsys, controller, "-o", "json", "alias", "del", "h1", "eth1",
                       "10.0.0.1")
    assert code == 0 and json.loads(out)["revision"] > alias["revision"]
    code, out, _ = run(capsys, controller, "alias", "ls")
    assert lines(out) == [["HOST", "IFACE", "ADDRESS", "BROADCAST", "DESTINATION", "REVISION"]]


def test_prefixes_and_policy(capsys: pytest.CaptureFixture[str],
                             controller: Controller) -> None:
    run(capsys, controller, "host", "add", "h1")
    run(capsys, controller, "host", "add", "h2")
    code, out, _ = run(capsys, controller, "prefix", "add", "10.9.0.0/16", "--host", "h1",
                       "--iface", "eth1")
    assert code == 0 and "claimed by h1/eth1" in out
    run(capsys, controller, "prefix", "add", "10.9.0.0/16", "--host", "h2", "--iface", "eth1")
    code, out, _ = run(capsys, controller, "prefix", "ls")
    assert [row[:4] for row in lines(out)[1:]] == [["10.9.0.0/16", "h1", "eth1", "down"],
                                                  ["10.9.0.0/16", "h2", "eth1", "down"]]
    code, _, err = run(capsys, controller, "policy", "same-prefix", "refuse")
    assert code == 1
    assert err.startswith("vrc: FAILED_PRECONDITION: same_prefix 'refuse': 1 conflict(s)")
    assert len(err.strip().splitlines()) == 1
    run(capsys, controller, "prefix", "del", "10.9.0.0/16", "--host", "h2")
    code, out, _ = run(capsys, controller, "policy", "same-prefix", "refuse")
    assert code == 0 and "the cluster: same-prefix refuse" in out
    code, out, _ = run(capsys, controller, "policy", "same-prefix", "allow", "--host", "h1")
    assert code == 0
    code, out, _ = run(capsys, controller, "policy", "same-prefix", "--host", "h1")
    assert out.splitlines() == ["same-prefix: refuse (cluster)", "  h1: allow (override)",
                                "h1: allow (effective)"]
    code, out, _ = run(capsys, controller, "-o", "json", "policy", "same-prefix")
    assert json.loads(out)["same_prefix"] == "POLICY_REFUSE"
    code, out, _ = run(capsys, controller, "policy", "same-prefix", "--host", "h1", "--clear")
    assert code == 0 and "override cleared" in out


def test_refusals_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str],
                                          controller: Controller) -> None:
    code, out, err = run(capsys, controller, "alias", "add", "h9", "eth1", "10.0.0.1/24")
    assert (code, out) == (1, "")
    assert err == "vrc: NOT_FOUND: alias.host 'h9': no such host (vrc host add adds one)\n"
    code, _, err = run(capsys, controller, "alias", "add", "h9", "eth1", "10.0.0.1/²")
    assert code == 1 and err.startswith("vrc: INVALID_ARGUMENT: alias.address")
    run(capsys, controller, "host", "add", "h1")
    code, _, err = run(capsys, controller, "host", "add", "h1", "--expected-revision", "1")
    assert code == 1 and err.startswith("vrc: ABORTED: expected_revision '1': host h1")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str],
                             controller: Controller) -> None:
    with pytest.raises(SystemExit) as caught:
        vrc.main(["--controller", controller.address, "alias", "add", "h1"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        vrc.main(["--controller", controller.address, "host", "add", "h1",
                  "--expected-revision", "-3"])
    assert caught.value.code == 2


def test_an_unreachable_controller_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, f"127.0.0.1:{free_port()}", "--timeout", "2", "hosts")
    assert code == 1
    assert err.startswith("vrc: UNAVAILABLE: cannot reach the controller at 127.0.0.1:")


def test_watch_prints_the_snapshot_then_changes(capsys: pytest.CaptureFixture[str],
                                                controller: Controller) -> None:
    run(capsys, controller, "host", "add", "h1")
    run(capsys, controller, "alias", "add", "h1", "eth1", "10.0.0.1/24")
    code, out, _ = run(capsys, controller, "watch", "-c", "2")
    assert code == 0
    assert [line.split(" ", 1)[1] for line in out.splitlines()] == [
        "put host h1 (snapshot)", "put alias 10.0.0.1/24 on h1/eth1 (snapshot)"]
    code, out, _ = run(capsys, controller, "-o", "json", "watch", "-c", "1")
    assert json.loads(out)["host"]["id"] == "h1"


def test_the_environment_names_the_controller(capsys: pytest.CaptureFixture[str],
                                              controller: Controller,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRC_CONTROLLER", controller.address)
    run(capsys, controller, "host", "add", "h1")
    assert vrc.main(["hosts"]) == 0
    assert "h1" in capsys.readouterr().out

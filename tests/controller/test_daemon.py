"""vrc-controller as a real process: its own etcd with no flags, the vrc CLI, signals, options."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controller.processes import start_controller
from tests.etcd import TestEtcd
from tests.netns import script_argv

WAIT = 30.0


@pytest.fixture
def short_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="vrc-d-"))  # Unix socket paths must be short
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def vrc(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*script_argv("vrc"), *argv], capture_output=True, text=True,
                          timeout=WAIT, env={k: v for k, v in os.environ.items()
                                             if k != "VRC_CONTROLLER"})


def etcd_pid(log: str) -> int:
    match = re.search(r"private etcd started.* pid=(\d+)", log)
    assert match, f"no private etcd in the log:\n{log}"
    return int(match.group(1))


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] == "Z"
    except OSError:
        return True


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


def test_with_no_flags_it_runs_its_own_etcd_and_the_cli_answers(short_dir: Path) -> None:
    controller = start_controller(short_dir, listen=False, env={"VRC_DATA_DIR": str(short_dir)})
    try:
        socket = short_dir / "controller.sock"
        deadline = time.monotonic() + WAIT
        while not socket.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert oct(socket.stat().st_mode & 0o777) == "0o600"
        target = f"unix:{socket}"
        assert vrc("--controller", target, "host", "add", "h1").returncode == 0
        listed = vrc("--controller", target, "hosts")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[1].split()[:2] == ["h1", "down"]
        pid = etcd_pid(controller.log_text())
    finally:
        code = controller.stop()
    assert code == 0, controller.log_text()
    assert gone(pid), "the private etcd outlived its controller"
    assert not (short_dir / "controller.sock").exists()
    assert "controller stopped" in controller.log_text()
    # the desired state is in the data directory: a new controller finds it
    again = start_controller(short_dir)
    try:
        listed = vrc("--controller", again.target, "-o", "json", "hosts")
        assert '"id": "h1"' in listed.stdout
    finally:
        assert again.stop() == 0


def test_a_killed_controller_takes_its_etcd_along(short_dir: Path) -> None:
    controller = start_controller(short_dir)
    pid = etcd_pid(controller.log_text())
    controller.stop(signal.SIGKILL)
    wait_gone(pid)


def test_one_private_etcd_per_data_directory(short_dir: Path) -> None:
    first = start_controller(short_dir)
    try:
        other = short_dir / "second"
        other.mkdir()
        second = subprocess.run(
            [*script_argv("vrc-controller"), "--data-dir", str(short_dir),
             "--listen", f"unix:{other}/c.sock"], capture_output=True, text=True,
            timeout=WAIT)
        assert second.returncode == 1
        assert "in use by vrc-controller pid" in second.stderr
    finally:
        first.stop()


@pytest.mark.parametrize(("argv", "text"), [
    (["--listen", "0.0.0.0:0"], "--tls-cert"),
    (["--etcd", "ftp://x:1"], "--etcd"),
    (["--etcd-cert", "/c"], "--etcd"),
    (["--metrics", "host"], "--metrics"),
    (["--store-root", "vrc"], "store root"),
])
def test_bad_options_exit_2_naming_the_flag(short_dir: Path, argv: list[str],
                                            text: str) -> None:
    result = subprocess.run([*script_argv("vrc-controller"), "--data-dir", str(short_dir),
                             *argv], capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2
    assert text in result.stderr
    assert not (short_dir / "etcd").exists(), "a bad option started etcd"


def test_replicas_on_one_etcd_serve_the_same_state_and_metrics(
        private_etcd: TestEtcd, short_dir: Path) -> None:
    dirs = [short_dir / "a", short_dir / "b"]
    for directory in dirs:
        directory.mkdir()
    a = start_controller(dirs[0], etcd=private_etcd.url, args=["--metrics", "127.0.0.1:0"])
    b = start_controller(dirs[1], etcd=private_etcd.url)
    try:
        assert vrc("--controller", a.target, "host", "add", "h1").returncode == 0
        assert "h1" in vrc("--controller", b.target, "hosts").stdout
        port = re.search(r"metrics\s.*listen=127\.0\.0\.1:(\d+)", a.log_text())
        assert port, a.log_text()
        text = urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics",
                                      timeout=WAIT).read().decode()
        assert 'vrc_controller_requests_total{code="OK",method="AddHost"} 1.0' in text
        assert "vrc_controller_etcd_up 1.0" in text
    finally:
        assert a.stop() == 0 and b.stop() == 0

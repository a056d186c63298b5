"""`vrc up` as a user runs it: the Quickstart's command, its printout, Ctrl-C, a kill, a failure.

Each test runs the real command (this checkout's `vrc`) with a state
directory of its own and checks what it shows and that nothing it made is
left: no run directory, no namespace with its prefix, none of its processes.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cluster import cli
from lab.netns import existing_netns, wait_until
from lab.procs import ProcessRecord, console_argv
from lab.state import RunState, runs
from serving.tls import TlsConfig

UP_TIMEOUT = 240.0


def up_argv(root: Path, *args: str) -> list[str]:
    return [*console_argv("vrc"), "up", "--state-dir", str(root), *args]


def run_prefix(output: str) -> str:
    match = re.search(r"\(run (vu[0-9a-f]{6}),", output)
    assert match, f"no run prefix in:\n{output}"
    return match.group(1)


def assert_nothing_left(root: Path, prefix: str) -> None:
    assert runs(root) == [], f"run directories left: {runs(root)}"
    assert not (root / prefix).exists()
    left = [name for name in existing_netns() if name.startswith(prefix)]
    assert left == [], f"namespaces left: {left}"


class Running:
    """A `vrc up` in the background whose output lines a test reads with a bound."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = UP_TIMEOUT) -> str:
        """Lines until one holding ``text`` (bounded); the output so far."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                try:
                    line = self.lines.get(timeout=0.5)
                except queue.Empty:
                    continue
                if line is None:
                    raise AssertionError(f"vrc up ended ({self.proc.wait(10)}) before "
                                         f"{text!r}:\n{self.output}")
                self.seen.append(line)
                if text in line:
                    return self.output
            raise AssertionError(f"no {text!r} within {timeout:g} s:\n{self.output}")
        finally:
            timer.cancel()

    @property
    def output(self) -> str:
        return "".join(self.seen)

    def finish(self, timeout: float = 120.0) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return code, self.output

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    try:
        yield started
    finally:
        for run in started:
            run.kill()


def test_vrc_up_demo_shows_the_ends_pinging_through_every_agent_and_leaves_nothing(
        up_root: Path) -> None:
    proc = subprocess.run(up_argv(up_root, "--demo"), capture_output=True, text=True,
                          timeout=UP_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "3 router hosts in a chain" in output
    assert "a -> b: 3/3 replies" in output and "b -> a: 3/3" in output
    # the path, hop by hop: each agent answered a TTL-limited ping with time exceeded
    assert "path a 10.99.0.1 -> h1 10.99.0.2 -> h2 10.99.1.2 -> h3 10.99.2.2 -> b 10.99.3.2" \
        in output
    assert "export VRC_CONTROLLER=unix+tls:" in output and "export VRC_TLS_CA=" in output
    assert "removing every process, namespace and file of the run ... ok" in output
    assert_nothing_left(up_root, run_prefix(output))


def test_vrc_up_runs_until_ctrl_c_its_commands_work_and_ctrl_c_removes_everything(
        up_root: Path, running: list[Running]) -> None:
    run = Running(up_argv(up_root, "--hosts", "2"))
    running.append(run)
    output = run.wait_for("Ctrl-C stops it")
    prefix = run_prefix(output)
    target = re.search(r"export VRC_CONTROLLER=(\S+)", output)
    assert target, output
    controller = target.group(1)
    exported = re.search(r"export VRC_TLS_CA=(\S+) VRC_TLS_CERT=(\S+) VRC_TLS_KEY=(\S+)",
                         output)
    assert exported, output  # mutual TLS by default: the admin's files
    admin = TlsConfig(ca=exported.group(1), cert=exported.group(2), key=exported.group(3))
    assert controller.startswith("unix+tls:"), controller
    refused = cli(["hosts"], controller_target=controller, check=False)
    assert refused.returncode != 0  # no certificate, no answer
    state = RunState.load(up_root / prefix)
    daemons = [record for record in state.processes if record.alive()]
    assert {r.role for r in daemons} >= {"controller", "agent h1", "agent h2"}

    hosts = cli(["hosts"], controller_target=controller, tls=admin).stdout
    assert re.search(r"h1\s+up", hosts) and re.search(r"h2\s+up", hosts), hosts
    prefixes = cli(["prefix", "ls"], controller_target=controller, tls=admin).stdout
    assert "10.99.0.0/24" in prefixes and "10.99.2.0/24" in prefixes, prefixes
    status = cli(["status", "h2"], controller_target=controller, tls=admin).stdout
    assert "applied" in status and "failed" not in status, status
    routes = cli(["--host", "h2", "routes"], controller_target=controller,
                 tls=admin).stdout
    assert "10.99.0.0/24" in routes and "10.99.1.1" in routes, routes  # via h1, computed
    # a capture through --host, of a ping it prints the command for
    a_ns = f"{prefix}-a"
    ping = subprocess.Popen(["ip", "netns", "exec", a_ns, "ping", "-n", "-c", "40", "-i", "0.2",
                             "10.99.2.2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        capture = cli(["--host", "h2", "capture", f"{prefix}s1b", "-c", "2"],
                      controller_target=controller, tls=admin, timeout=30).stdout
    finally:
        ping.kill()
        ping.wait(10)
    assert len(capture.strip().splitlines()) >= 2 and "10.99.2.2" in capture, capture

    run.proc.send_signal(signal.SIGINT)
    code, output = run.finish()
    assert code == 130, output
    assert "SIGINT received, stopping" in output
    assert_nothing_left(up_root, prefix)
    for record in daemons:
        assert not record.alive(), f"{record.role} (pid {record.pid}) still runs"


def test_a_killed_vrc_up_takes_its_daemons_along_and_vrc_down_removes_the_rest(
        up_root: Path, running: list[Running]) -> None:
    run = Running(up_argv(up_root, "--hosts", "1"))
    running.append(run)
    prefix = run_prefix(run.wait_for("Ctrl-C stops it"))
    state = RunState.load(up_root / prefix)
    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait(10)
    for record in state.processes:  # parent-death signal: they stop on their own
        wait_until(lambda r=record: not r.alive(), 30,
                   what=f"{record.role} to stop after vrc up was killed")
    assert [n for n in existing_netns() if n.startswith(prefix)]  # these stay behind

    down = subprocess.run([*console_argv("vrc"), "down", "--state-dir", str(up_root)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    assert f"deleting network namespace {prefix}-h1" in down.stdout
    assert_nothing_left(up_root, prefix)
    assert not ProcessRecord("vrc up", run.proc.pid, 0).alive()


def test_a_vrc_up_that_fails_says_why_and_leaves_nothing(up_root: Path) -> None:
    proc = subprocess.run(up_argv(up_root, "--hosts", "1", "--demo"), capture_output=True,
                          text=True, timeout=UP_TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL,
                          env={**os.environ, "VRC_ETCD_BINARY": "/bin/false"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "vrc-controller with its private etcd ... failed" in output
    assert "controller exited with status 1 at start" in output
    assert "controller failed to start (error=etcd exited" in output  # its log, readable
    assert_nothing_left(up_root, run_prefix(output))

"""A run that is killed (SIGKILL) leaves only what its state file lists, and `vrc down` removes it.

The run here is `lab.up.ChainCluster` in a child process — the chain's
namespaces, a real vrc-controller with its private etcd, and a stand-in
process in a router host's namespace — killed with SIGKILL, so nothing of its
own clean-up runs. Its daemons die with it (parent-death signal); its
namespaces stay until `vrc down` reads the state file.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netns import existing_netns, netns_exists, require_root_and_tools, wait_until
from lab.procs import PACKAGE_ROOT, ProcessRecord, console_argv
from lab.state import STATE_FILE, RunState

RUN = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from lab.up import ChainCluster, ChainOptions
    cluster = ChainCluster(ChainOptions(hosts=2, root=Path(sys.argv[2])))
    cluster.build_chain()
    cluster.start_controller()
    stand_in = cluster.lab.spawn(cluster.ns("h1"), "sleep", "600", role="stand-in")
    print(json.dumps({"directory": str(cluster.directory), "controller": cluster.controller.pid,
                      "etcd": cluster.etcd_pid, "stand_in": stand_in.pid}), flush=True)
    time.sleep(600)
""")


@pytest.fixture
def root() -> Iterator[Path]:
    require_root_and_tools()
    directory = Path(tempfile.mkdtemp(prefix="vrc-up-test-"))
    try:
        yield directory
    finally:
        subprocess.run([*console_argv("vrc"), "down", "--state-dir", str(directory)],
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def vrc_down(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*console_argv("vrc"), "down", "--state-dir", str(root)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_vrc_down_removes_what_a_killed_run_left(root: Path) -> None:
    run = subprocess.Popen([sys.executable, "-c", RUN, str(PACKAGE_ROOT), str(root)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        started = json.loads(run.stdout.readline())
        directory = Path(started["directory"])
        state = RunState.load(directory)
        pids = {record.role: record for record in state.processes}
        assert {"controller", "etcd (the controller's)", "stand-in"} <= set(pids)
        assert pids["controller"].pid == started["controller"]
        assert pids["etcd (the controller's)"].pid == started["etcd"]
        assert len(state.namespaces) == 4 and all(netns_exists(n) for n in state.namespaces)
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    finally:
        run.kill()
        run.wait()
    # its daemons die with it; what it made stays, and the state file says what
    for role in ("controller", "etcd (the controller's)", "stand-in"):
        wait_until(lambda r=pids[role]: not r.alive(), 20, what=f"{role} to die with the run")
    assert all(netns_exists(name) for name in state.namespaces)
    assert (directory / STATE_FILE).exists()

    down = vrc_down(root)
    assert down.returncode == 0, down.stderr
    for name in state.namespaces:
        assert f"deleting network namespace {name}" in down.stdout
        assert not netns_exists(name)
    assert not directory.exists()
    assert not [n for n in existing_netns() if n.startswith(state.prefix)]
    again = vrc_down(root)
    assert again.returncode == 0 and "nothing to clean up" in again.stdout


def test_vrc_down_never_signals_a_process_that_took_a_recorded_pid(root: Path) -> None:
    gone = subprocess.Popen(["sleep", "60"])
    owner = ProcessRecord.of("vrc up", gone.pid)
    gone.kill()
    gone.wait()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        record = ProcessRecord.of("agent h1", bystander.pid)
        state = RunState.create(root, "vu99aa99", owner)
        state.add_process(ProcessRecord(record.role, record.pid, record.started - 1))
        assert vrc_down(root).returncode == 0
        assert bystander.poll() is None  # a different start time: not ours, left alone
        assert not state.directory.exists()
    finally:
        bystander.kill()
        bystander.wait()

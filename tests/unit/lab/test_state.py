"""The run's state file and process records: what `vrc down` relies on after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab import signals
from lab.procs import ProcessRecord, start_ticks
from lab.state import STATE_FILE, RunState, StateError, clean_run, runs


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_the_state_file_round_trips_everything_a_run_records(tmp_path: Path) -> None:
    owner = ProcessRecord.this_process("vrc up")
    state = RunState.create(tmp_path, "vu0a0b0c", owner)
    state.add_namespace("vu0a0b0c-a")
    state.add_namespace("vu0a0b0c-a")  # once only
    state.add_process(ProcessRecord("agent h1", 4242, 17))
    state.add_process(ProcessRecord("agent h2", 4343, 18))
    state.drop_process(4242)
    state.set_info(controller="unix:/x.sock")
    loaded = RunState.load(tmp_path / "vu0a0b0c")
    assert loaded.prefix == "vu0a0b0c" and loaded.owner == owner
    assert loaded.namespaces == ["vu0a0b0c-a"]
    assert loaded.processes == [ProcessRecord("agent h2", 4343, 18)]
    assert loaded.info == {"controller": "unix:/x.sock"}
    assert runs(tmp_path) == [tmp_path / "vu0a0b0c"]
    assert [p.name for p in (tmp_path / "vu0a0b0c").iterdir()] == [STATE_FILE]  # no temp left


def test_a_file_vrc_up_did_not_write_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"format": 99}))
    with pytest.raises(StateError, match=f"{tmp_path / STATE_FILE}: not a state file"):
        RunState.load(tmp_path)
    assert clean_run(tmp_path) is None
    assert (tmp_path / STATE_FILE).exists()  # left alone


def test_a_record_knows_its_process_and_not_one_that_reuses_the_pid() -> None:
    proc = sleeper()
    try:
        record = ProcessRecord.of("sleeper", proc.pid)
        assert record.started == start_ticks(proc.pid) and record.alive()
        impostor = ProcessRecord("sleeper", proc.pid, record.started + 1)
        assert not impostor.alive()
        assert impostor.signal(signal.SIGKILL) is False
        assert proc.poll() is None  # the impostor record never signalled it
        assert record.stop(timeout=5)
        proc.wait(5)  # (stop reaped it: the status is gone, so is the process)
        assert start_ticks(proc.pid) is None
        assert not record.alive() and record.signal(signal.SIGTERM) is False
    finally:
        proc.kill()
        proc.wait()


def test_clean_run_stops_the_recorded_processes_of_a_dead_owner(tmp_path: Path) -> None:
    dead = sleeper()
    owner = ProcessRecord.of("vrc up", dead.pid)
    dead.kill()
    dead.wait()
    child = sleeper()
    try:
        state = RunState.create(tmp_path, "vu0d0e0f", owner)
        state.add_process(ProcessRecord.of("agent h1", child.pid))
        said: list[str] = []
        assert clean_run(state.directory, say=said.append) is not None
        child.wait(10)
        assert start_ticks(child.pid) is None
        assert not state.directory.exists()
        assert any("stopping agent h1" in line for line in said)
    finally:
        child.kill()
        child.wait()


OWNER = textwrap.dedent("""
    import shutil, signal, sys, time
    def stop(*_):
        shutil.rmtree(sys.argv[1]); sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    time.sleep(60)
""")


def test_clean_run_asks_a_live_owner_to_clean_up_itself(tmp_path: Path) -> None:
    directory = tmp_path / "vu101112"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(directory)],
                             stdout=subprocess.PIPE, text=True)
    try:
        RunState.create(tmp_path, "vu101112", ProcessRecord.of("vrc up", owner.pid))
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        said: list[str] = []
        clean_run(directory, say=said.append, owner_timeout=20)
        assert owner.wait(10) == 0
        assert not directory.exists()
        assert any("cleaned up by its owner" in line for line in said)
    finally:
        owner.kill()
        owner.wait()


def test_a_stop_signal_waits_for_the_end_of_an_uninterrupted_block() -> None:
    signals.install()
    try:
        reached = []
        with pytest.raises(signals.StopRequested) as raised, signals.uninterrupted():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here and must not raise
            reached.append("end of block")
        assert reached == ["end of block"]
        assert raised.value.signum == signal.SIGTERM
        with pytest.raises(signals.StopRequested):
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)
    finally:
        signals.restore()


def test_signals_during_the_clean_up_only_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    signals.cleaning_up("still cleaning")
    try:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    finally:
        signals.restore()
    assert capsys.readouterr().err.count("still cleaning") == 1

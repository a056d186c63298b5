"""The NIC records of agents/nicrecord.py: atomic, locked per NIC, stale once the holder died.

The restore itself changes real NICs and is tested as root in
tests/integration/test_agent.py and test_link.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agents.isolation import IsolationSet, restore_previous
from agents.nicrecord import NicBusy, NicOriginal, RecordError, RunDir, TcOriginal

ROOT = Path(__file__).resolve().parents[3]


def original(ifname: str = "eth9", **changes: object) -> NicOriginal:
    record = NicOriginal(ifname, 7, arp_off=False, disable_ipv6="0")
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def test_a_record_round_trips_and_is_written_atomically(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run", netns=11)
    claim = run.claim("eth9")
    saved = original(tc=TcOriginal(had_clsact=True))
    claim.save(saved)
    assert run.read("eth9") == saved
    assert run.recorded() == ["eth9"]
    # nothing but the record and its lock: the temporary file was renamed over
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "nic-11-eth9.json", "nic-11-eth9.lock"]
    assert oct((tmp_path / "run").stat().st_mode & 0o777) == "0o700"
    claim.release()
    assert run.read("eth9") is None
    assert list((tmp_path / "run").iterdir()) == []
    run.tidy()  # a clean stop leaves no directory behind
    assert not (tmp_path / "run").exists()
    run.claim("eth9").release()  # and a later claim makes it again


def test_a_nic_is_claimed_by_one_agent_at_a_time(tmp_path: Path) -> None:
    run = RunDir(tmp_path, netns=11)
    claim = run.claim("eth9")
    with pytest.raises(NicBusy, match=f"pid {os.getpid()}"):
        run.claim("eth9")
    other = run.claim("eth8")  # another NIC is free
    other.release()
    claim.release()
    run.claim("eth9").release()


def test_records_of_another_namespace_are_not_ours(tmp_path: Path) -> None:
    RunDir(tmp_path, netns=11).write(original())
    assert RunDir(tmp_path, netns=12).recorded() == []
    assert RunDir(tmp_path, netns=11).recorded() == ["eth9"]


def test_a_killed_holder_leaves_a_stale_record_behind(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from agents.nicrecord import NicOriginal, RunDir
        claim = RunDir({str(tmp_path)!r}, netns=11).claim("eth9")
        claim.save(NicOriginal("eth9", 7, arp_off=False, disable_ipv6="0"))
        print("held", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        run = RunDir(tmp_path, netns=11)
        with run.stale("eth9") as found:
            assert found is None  # held by a live agent
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with run.stale("eth9") as found:
            assert found is not None
            claim, record = found
            assert record == NicOriginal("eth9", 7, arp_off=False, disable_ipv6="0",
                                         pid=holder.pid)
            claim.release(keep_record=True)
        assert run.read("eth9") is not None  # kept: the caller said so
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_a_corrupt_record_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    run = RunDir(tmp_path, netns=11)
    run.record_path("eth9").write_text("{not json")
    with pytest.raises(RecordError, match=r"nic-11-eth9\.json: not a NIC record") as info:
        run.read("eth9")
    assert "disable_ipv6" in str(info.value) and "delete the file" in str(info.value)


def test_a_record_of_a_nic_that_is_gone_is_dropped_not_restored(tmp_path: Path) -> None:
    run = RunDir(tmp_path, netns=11)
    run.write(original("vrcgone0"))
    report = restore_previous(run)
    assert report.dropped == ["vrcgone0"] and report.ok
    assert run.recorded() == []


def test_a_nic_with_an_unrestored_record_is_not_isolated_again(tmp_path: Path) -> None:
    """Isolating it would record its isolated state as the original one."""
    run = RunDir(tmp_path, netns=11)
    run.write(original("eth9"))
    with pytest.raises(RecordError, match="--restore-nics"):
        IsolationSet(run).add("eth9")
    assert run.read("eth9") == original("eth9")  # kept as it was


def test_restore_nics_with_nothing_recorded_exits_0(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from agents.daemon import main

    assert main(["--restore-nics", "--run-dir", str(tmp_path / "none"),
                 "--log-format", "json"]) == 0
    assert "no NIC to restore" in capsys.readouterr().err

"""Processes a run started: how to start them, and how to find them again safely.

A PID alone is not a safe handle once the process that started it is gone
(``vrc down`` after a crashed ``vrc up``): the kernel recycles PIDs. A
:class:`ProcessRecord` keeps the PID with the process's start time (field 22
of ``/proc/PID/stat``, clock ticks since boot), and signals it only while
both still match — never a process that merely inherited the number.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The directory that holds our packages (the repository root in a checkout,
#: site-packages in an install): a console script run from it runs this code.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

CONSOLE_SCRIPTS = {"vrc": "cli.main", "vrc-agent": "agents.daemon",
                   "vrc-controller": "controller.daemon"}


def console_argv(name: str) -> list[str]:
    """The argv that runs console script ``name`` with this interpreter from this code.

    Not the script on PATH: that may belong to another checkout or install
    (an editable install points at one tree), and a run must start the code
    it was started from.
    """
    return [sys.executable, "-c",
            f"import sys; sys.path.insert(0, {str(PACKAGE_ROOT)!r}); "
            f"from {CONSOLE_SCRIPTS[name]} import main; sys.exit(main())"]


def dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when the starting thread's process exits.

    The program must be a path or on PATH; it is resolved here because the
    wrapper execs it directly (``controller.etcd.embedded`` explains the
    wrapper and why it is not a ``preexec_fn``).
    """
    from controller.etcd.embedded import with_parent_death_signal

    program = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if program is None:
        raise FileNotFoundError(f"{argv[0]}: not found on PATH")
    return with_parent_death_signal([program, *argv[1:]])


def start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot), None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].startswith("Z")


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """One process of a run: what it is, its PID and its start time."""

    role: str
    pid: int
    started: int

    @classmethod
    def of(cls, role: str, pid: int) -> ProcessRecord:
        ticks = start_ticks(pid)
        if ticks is None:
            raise ProcessLookupError(f"{role}: process {pid} is not running")
        return cls(role, pid, ticks)

    @classmethod
    def this_process(cls, role: str) -> ProcessRecord:
        return cls.of(role, os.getpid())

    def alive(self) -> bool:
        """Still this very process (not a recycled PID), and not a zombie."""
        return start_ticks(self.pid) == self.started and not is_zombie(self.pid)

    def signal(self, signum: int) -> bool:
        """Send ``signum`` if it is still this process; True if it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, wait (bounded), then SIGKILL; True once it is gone."""
        if not self.signal(signal.SIGTERM):
            return True
        if self.wait_gone(timeout):
            return True
        self.signal(signal.SIGKILL)
        return self.wait_gone(5.0)

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            _reap(self.pid)
            time.sleep(0.05)
        _reap(self.pid)
        return True

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "pid": self.pid, "started": self.started}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        return cls(str(data["role"]), int(data["pid"]), int(data["started"]))


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our child (a zombie otherwise looks alive to a signal)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)

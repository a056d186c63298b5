"""A run's state file: everything it made, written down before it is made.

One run (one ``vrc up``) owns a directory ``ROOT/PREFIX/`` (``ROOT`` is
``/run/vrc-up`` by default: a tmpfs, like ``/run/netns``, so both go at a
reboot). ``state.json`` in it lists the run's owner process, the network
namespaces (each recorded before ``ip netns add``), the processes it started
(PID and start time, recorded as they start) and what the run wants to show
(``info``). It is rewritten whole and atomically (a temporary file renamed
over it) at every change, so a reader never sees half a file.

:func:`clean_run` undoes a run from its file alone: it asks a live owner to
stop (SIGTERM, by its recorded PID and start time) and waits for it; if the
owner is gone or does not finish, it stops the recorded processes, deletes
the namespaces and removes the directory. That is what ``vrc down`` and
``vrc up --clean`` do after a crash, even one on SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.netns import delete_netns, netns_exists
from lab.procs import ProcessRecord

DEFAULT_ROOT = Path("/run/vrc-up")
STATE_FILE = "state.json"
FORMAT = 1
OWNER_STOP_TIMEOUT = 60.0  # a live owner's own clean-up: processes, namespaces


class StateError(RuntimeError):
    """A state file that cannot be read or written; the message names the file."""


@dataclass
class RunState:
    """The journal of one run (see the module docstring); thread-safe."""

    directory: Path
    prefix: str
    owner: ProcessRecord | None = None
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def path(self) -> Path:
        return self.directory / STATE_FILE

    @classmethod
    def create(cls, root: Path, prefix: str, owner: ProcessRecord) -> RunState:
        """A new run directory ``root/prefix`` (private to root) and its first state file."""
        root.mkdir(parents=True, exist_ok=True, mode=0o755)
        directory = root / prefix
        directory.mkdir(mode=0o700)
        state = cls(directory, prefix, owner)
        state.save()
        return state

    # --- the Journal of a Lab ------------------------------------------------------------

    def add_namespace(self, name: str) -> None:
        with self._lock:
            if name not in self.namespaces:
                self.namespaces.append(name)
            self._save()

    def add_process(self, record: ProcessRecord) -> None:
        with self._lock:
            self.processes = [p for p in self.processes if p.pid != record.pid]
            self.processes.append(record)
            self._save()

    def drop_process(self, pid: int) -> None:
        with self._lock:
            before = len(self.processes)
            self.processes = [p for p in self.processes if p.pid != pid]
            if len(self.processes) != before:
                self._save()

    def set_info(self, **info: Any) -> None:
        with self._lock:
            self.info.update(info)
            self._save()

    # --- the file ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "prefix": self.prefix, "created": self.created,
                "owner": self.owner.to_json() if self.owner else None,
                "namespaces": list(self.namespaces),
                "processes": [p.to_json() for p in self.processes],
                "info": dict(self.info)}

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        temporary = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        try:
            with open(temporary, "w") as handle:
                json.dump(self.to_json(), handle, indent=1)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            raise StateError(f"{self.path}: cannot write the run's state: "
                             f"{error.strerror}") from None

    @classmethod
    def load(cls, directory: Path) -> RunState:
        path = directory / STATE_FILE
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            owner = data.get("owner")
            return cls(directory, str(data["prefix"]),
                       ProcessRecord.from_json(owner) if owner else None,
                       [str(name) for name in data["namespaces"]],
                       [ProcessRecord.from_json(p) for p in data["processes"]],
                       dict(data.get("info") or {}), float(data.get("created") or 0))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"{path}: not a state file vrc up wrote ({error})") from None

    def owner_alive(self) -> bool:
        return self.owner is not None and self.owner.alive()


def runs(root: Path = DEFAULT_ROOT) -> list[Path]:
    """The run directories under ``root`` (oldest first)."""
    try:
        found = [p for p in root.iterdir() if p.is_dir() and (p / STATE_FILE).exists()]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.stat().st_mtime)


def clean_run(directory: Path, *, say: Callable[[str], None] = lambda _: None,
              owner_timeout: float = OWNER_STOP_TIMEOUT) -> RunState | None:
    """Undo the run in ``directory`` (see the module docstring); the state it had.

    Bounded: the owner gets ``owner_timeout`` seconds to clean up itself,
    each process 10 s after SIGTERM before SIGKILL. Never signals a process
    that is not the recorded one.
    """
    try:
        state = RunState.load(directory)
    except StateError as error:
        say(f"{error}: left alone")
        return None
    if state.owner_alive() and state.owner is not None:
        say(f"{state.prefix}: asking vrc up (pid {state.owner.pid}) to stop")
        state.owner.signal(signal.SIGTERM)
        deadline = time.monotonic() + owner_timeout
        while state.owner.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not directory.exists():
            say(f"{state.prefix}: stopped and cleaned up by its owner")
            return state
        with contextlib.suppress(StateError):
            state = RunState.load(directory)  # what it had not undone yet
    for record in reversed(state.processes):
        if record.alive():
            say(f"{state.prefix}: stopping {record.role} (pid {record.pid})")
            record.stop()
    for name in reversed(state.namespaces):
        if netns_exists(name):
            say(f"{state.prefix}: deleting network namespace {name}")
            delete_netns(name)
    shutil.rmtree(directory, ignore_errors=True)
    say(f"{state.prefix}: removed {directory}")
    return state

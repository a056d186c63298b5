"""The NICs' original state, on disk for as long as the agent has them isolated.

Isolation (:mod:`agents.isolation`) changes NIC settings that the kernel
keeps when the agent dies: ``arp off``, ``disable_ipv6`` and, on kernels
without TCX, a tc drop filter. So before the agent changes anything on a NIC
it writes what the NIC was like into a record under its run directory
(``--run-dir``, default ``/run/vrc-agent``), and a later start or
``vrc-agent --restore-nics`` can put a crashed agent's NICs back. The record
only ever holds the state found *before* any change: a start restores a
previous run's record first, so an isolated NIC is never taken for an
original one.

Files, one pair per NIC and network namespace (``<netns>`` is the inode of
``/proc/self/ns/net``, so agents in different namespaces never share one)::

    nic-<netns>-<ifname>.json   the record (written atomically: temp file,
                                fsync, rename, fsync of the directory)
    nic-<netns>-<ifname>.lock   flock'ed by the agent that has the NIC; the
                                kernel drops the lock when that process dies

A record whose lock nobody holds was left by an agent that died: it is
*stale*. A record whose lock is held belongs to a running agent and is left
alone (a second agent on the same NIC is refused).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_RUN_DIR = "/run/vrc-agent"
RECORD_VERSION = 1


class RecordError(RuntimeError):
    """A record cannot be read or written; the text names the file and what to do."""


class NicBusy(RecordError):
    """Another running agent holds this NIC."""


@dataclass(slots=True)
class TcOriginal:
    """The tc fallback was tried: whether the NIC had a ``clsact`` qdisc before."""

    had_clsact: bool


@dataclass(slots=True)
class NicOriginal:
    """One NIC as the agent found it, before isolation changed anything."""

    ifname: str
    ifindex: int
    arp_off: bool  # the NOARP flag was set
    disable_ipv6: str | None  # the sysctl's value; None: the NIC had no IPv6 sysctl
    tc: TcOriginal | None = None  # set (and saved) before the tc fallback changes anything
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = RECORD_VERSION
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NicOriginal:
        data: dict[str, Any] = json.loads(text)
        if data.pop("version", None) != RECORD_VERSION:
            raise ValueError(f"not a version {RECORD_VERSION} record")
        tc = data.pop("tc", None)
        record = cls(**data)
        record.tc = TcOriginal(**tc) if tc is not None else None
        if not isinstance(record.ifname, str) or not isinstance(record.arp_off, bool):
            raise ValueError("ifname or arp_off has the wrong type")
        return record


def current_netns() -> int:
    """This process's network namespace, as the inode number of its nsfs file."""
    return os.stat("/proc/self/ns/net").st_ino


class NicClaim:
    """This agent's hold on one NIC: the lock, and the record written under it."""

    def __init__(self, run_dir: RunDir, ifname: str, fd: int) -> None:
        self.run_dir = run_dir
        self.ifname = ifname
        self._fd = fd

    def save(self, original: NicOriginal) -> None:
        """Write (or replace) the record, durably, before the change it allows."""
        self.run_dir.write(original)

    def release(self, *, keep_record: bool = False) -> None:
        """Remove the record (the NIC is restored) unless ``keep_record``, then unlock."""
        if self._fd < 0:
            return
        if not keep_record:
            self.run_dir.remove_record(self.ifname)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.run_dir.lock_path(self.ifname))  # under the lock: see _lock
        os.close(self._fd)
        self._fd = -1


class RunDir:
    """The run directory of agents in one network namespace."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_RUN_DIR,
                 netns: int | None = None) -> None:
        self.path = Path(path)
        self.netns = current_netns() if netns is None else netns

    # --- names ------------------------------------------------------------------------

    def _stem(self, ifname: str) -> str:
        return f"nic-{self.netns}-{ifname}"

    def record_path(self, ifname: str) -> Path:
        return self.path / f"{self._stem(ifname)}.json"

    def lock_path(self, ifname: str) -> Path:
        return self.path / f"{self._stem(ifname)}.lock"

    def _ensure(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise RecordError(f"--run-dir {self.path}: cannot create it: "
                              f"{error.strerror or error}") from None

    # --- claims -----------------------------------------------------------------------

    def claim(self, ifname: str) -> NicClaim:
        """Lock ``ifname`` for this process; :class:`NicBusy` if a running agent has it."""
        self._ensure()
        fd = self._lock(ifname, blocking=False)
        if fd is None:
            owner = self._owner(ifname)
            raise NicBusy(f"--interface {ifname}: another vrc-agent{owner} has this NIC "
                          f"(lock {self.lock_path(ifname)}); stop it, or give this agent "
                          "other NICs")
        return NicClaim(self, ifname, fd)

    def _lock(self, ifname: str, *, blocking: bool) -> int | None:
        """An fd holding the flock of ``ifname``'s lock file, or None if another holds it.

        The holder unlinks the file before it unlocks, so a lock taken on a
        file that is no longer at the path is stale: retry on the new file.
        """
        path = self.lock_path(ifname)
        for _ in range(100):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:  # another agent's tidy() removed the empty directory
                self._ensure()
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)
        raise RecordError(f"{path}: cannot take the lock (it keeps being replaced)")

    def _owner(self, ifname: str) -> str:
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.lock_path(ifname).read_text().strip())
            return f" (pid {pid})"
        return ""

    # --- records ----------------------------------------------------------------------

    def write(self, original: NicOriginal) -> None:
        self._ensure()
        path = self.record_path(original.ifname)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, original.to_json().encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            directory = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as error:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise RecordError(f"{path}: cannot write the NIC record: "
                              f"{error.strerror or error}") from None

    def read(self, ifname: str) -> NicOriginal | None:
        path = self.record_path(ifname)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise RecordError(f"{path}: cannot read: {error.strerror or error}") from None
        try:
            original = NicOriginal.from_json(text)
        except (ValueError, TypeError) as error:
            raise RecordError(
                f"{path}: not a NIC record ({error}); put the NIC's settings back by hand "
                "(ip link set dev NIC arp on; sysctl net.ipv6.conf.NIC.disable_ipv6=0) and "
                "delete the file") from None
        if original.ifname != ifname:
            raise RecordError(f"{path}: holds {original.ifname!r}, not {ifname!r}")
        return original

    def tidy(self) -> None:
        """Remove the run directory if nothing is left in it (a clean stop leaves no trace)."""
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def remove_record(self, ifname: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.record_path(ifname).unlink()

    def recorded(self) -> list[str]:
        """NICs of this namespace that have a record (stale or held)."""
        prefix, suffix = f"nic-{self.netns}-", ".json"
        try:
            names = sorted(p.name for p in self.path.iterdir())
        except FileNotFoundError:
            return []
        except OSError as error:
            raise RecordError(f"--run-dir {self.path}: cannot list: "
                              f"{error.strerror or error}") from None
        return [n[len(prefix):-len(suffix)] for n in names
                if n.startswith(prefix) and n.endswith(suffix)]

    @contextlib.contextmanager
    def stale(self, ifname: str) -> Iterator[tuple[NicClaim, NicOriginal] | None]:
        """The claim and record of ``ifname`` if no running agent holds it, else None.

        The caller restores the NIC, then ``claim.release()`` removes the
        record (or ``release(keep_record=True)`` when the restore failed).
        """
        self._ensure()
        fd = self._lock(ifname, blocking=False)
        if fd is None:
            yield None
            return
        claim = NicClaim(self, ifname, fd)
        try:
            original = self.read(ifname)
        except BaseException:
            claim.release(keep_record=True)
            raise
        if original is None:
            claim.release()
            yield None
            return
        try:
            yield claim, original
        finally:
            claim.release(keep_record=True)  # no-op once the caller released it

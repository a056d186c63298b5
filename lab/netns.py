"""Network namespaces, veth pairs and the processes in them, owned by one :class:`Lab`.

Everything is made with a per-run prefix (two letters + 6 random hex
digits), so two runs on one machine never collide, and everything made is
recorded so :meth:`Lab.close` can remove it: processes first (by PID), then
namespaces (removing a namespace removes the veth ends inside it, and with
them their peers). With a journal (:class:`lab.state.RunState`) every
namespace is written down *before* it is made and every process as soon as
it starts, so a run that dies without closing its lab can be cleaned up by
another process later.

Every command and every wait is bounded in time. Nothing here touches the
root namespace's interfaces: veth pairs are created directly inside the
namespaces they belong to.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lab.procs import ProcessRecord, dying_with_parent
from lab.signals import uninterrupted

IFNAMSIZ = 15
REQUIRED_TOOLS = ("ip", "ping", "arping", "tc")
COMMAND_TIMEOUT = 15.0


class LabError(RuntimeError):
    """A namespace command failed or a bounded wait ran out."""


class Journal(Protocol):
    """Where a :class:`Lab` writes down what it makes (see :class:`lab.state.RunState`)."""

    def add_namespace(self, name: str) -> None: ...
    def add_process(self, record: ProcessRecord) -> None: ...
    def drop_process(self, pid: int) -> None: ...


def require_root_and_tools(tools: Sequence[str] = REQUIRED_TOOLS) -> None:
    """Fail (never skip) when the prerequisites of namespaces and raw sockets are missing."""
    if os.geteuid() != 0:
        raise LabError("this needs root (network namespaces, AF_PACKET)")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run scripts/install-deps.sh)")


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = ""
) -> None:
    """Poll ``predicate`` until it is true; raise ``LabError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.1f}s waiting for {what or predicate}")
        time.sleep(interval)


@dataclass(slots=True)
class Netns:
    """One network namespace made by a ``Lab``."""

    name: str

    def argv(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT,
        input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and wait (bounded) for it."""
        try:
            proc = subprocess.run(self.argv(*args), capture_output=True, text=True,
                                  timeout=timeout, check=False, input=input)
        except subprocess.TimeoutExpired:
            raise LabError(f"[{self.name}] {' '.join(args)}: no answer within "
                           f"{timeout:g} s") from None
        if check and proc.returncode != 0:
            raise LabError(
                f"[{self.name}] {' '.join(args)} -> {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def ip(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("ip", *args)

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def mac(self, ifname: str) -> str:
        return self.run("cat", f"/sys/class/net/{ifname}/address").stdout.strip()

    def counter(self, ifname: str, name: str) -> int:
        """An interface statistic from sysfs (``rx_packets``, ``tx_bytes``...)."""
        path = f"/sys/class/net/{ifname}/statistics/{name}"
        return int(self.run("cat", path).stdout.strip())


def new_prefix(letters: str = "vt") -> str:
    """A run prefix: ``letters`` and 6 random hex digits, not used by any namespace yet."""
    while True:
        prefix = letters + secrets.token_hex(3)
        if not any(name.startswith(prefix) for name in existing_netns()):
            return prefix


@dataclass
class Lab:
    """Owner of every namespace, veth and process a run makes.

    Use as a context manager (or call ``close``) so clean-up happens also on
    failure; ``close`` is idempotent and never raises. ``journal`` (optional)
    is told of everything before or as it is made. ``die_with_parent``: the
    processes it spawns get SIGTERM if this process dies without closing
    the lab (``PR_SET_PDEATHSIG``; spawn from the main thread).
    """

    prefix: str = field(default_factory=new_prefix)
    journal: Journal | None = None
    die_with_parent: bool = True
    namespaces: list[Netns] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _veth_count: int = 0

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netns(self, role: str) -> Netns:
        """Create namespace ``<prefix>-<role>`` with its loopback up."""
        ns = Netns(f"{self.prefix}-{role}")
        with uninterrupted():  # written down, made and owned: all or none
            if self.journal is not None:
                self.journal.add_namespace(ns.name)
            self.namespaces.append(ns)
            _run_host("ip", "netns", "add", ns.name)
        ns.ip("link", "set", "lo", "up")
        return ns

    def ifname(self, tag: str) -> str:
        """A per-run unique interface name (at most 15 characters)."""
        name = f"{self.prefix}{tag}"
        if len(name) > IFNAMSIZ:
            raise LabError(f"interface name {name!r} is longer than {IFNAMSIZ}")
        return name

    def veth(self, left: Netns, left_tag: str, right: Netns, right_tag: str) -> tuple[str, str]:
        """A veth pair with one end in each namespace, both up; returns the names."""
        left_name, right_name = self.ifname(left_tag), self.ifname(right_tag)
        left.ip(
            "link", "add", left_name, "type", "veth",
            "peer", "name", right_name, "netns", right.name,
        )  # fmt: skip
        self._veth_count += 1
        left.ip("link", "set", left_name, "up")
        right.ip("link", "set", right_name, "up")
        return left_name, right_name

    def spawn(self, ns: Netns | None, *args: str, log: Path | None = None,
              role: str = "", env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running process (inside ``ns``, or in this namespace with None);
        ``close`` stops it. Its output goes to ``log`` (appended) or nowhere."""
        argv = ns.argv(*args) if ns is not None else list(args)
        if self.die_with_parent:
            argv = dying_with_parent(argv)
        out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            with uninterrupted():  # started and written down: a stop signal waits
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        env=env)
                self.processes.append(proc)
                if self.journal is not None:
                    with contextlib.suppress(ProcessLookupError):
                        self.journal.add_process(ProcessRecord.of(role or args[0], proc.pid))
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
        """SIGTERM, wait (bounded), then SIGKILL; returns the exit code."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.forget(proc)
        return proc.returncode

    def kill(self, proc: subprocess.Popen[bytes]) -> int:
        """SIGKILL at once (a crash, as tests make one); returns the exit code."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
        self.forget(proc)
        return proc.returncode

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """Drop an ended process from the lab (and its journal)."""
        if proc in self.processes:
            self.processes.remove(proc)
        if self.journal is not None:
            self.journal.drop_process(proc.pid)

    def close(self, timeout: float = 10.0) -> None:
        """Every process gets SIGTERM at once (newest first), then up to ``timeout`` seconds
        in all before SIGKILL; then every namespace goes. Never raises."""
        running = [proc for proc in reversed(self.processes) if proc.poll() is None]
        for proc in running:
            with contextlib.suppress(Exception):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(Exception):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
            except Exception:
                pass
        for proc in list(self.processes):
            with contextlib.suppress(Exception):
                self.forget(proc)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            delete_netns(ns.name)
        self.namespaces.clear()


def _run_host(*args: str, timeout: float = COMMAND_TIMEOUT) -> None:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(args)}: no answer within {timeout:g} s") from None
    if proc.returncode != 0:
        raise LabError(f"{' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")


def delete_netns(name: str) -> None:
    """Kill anything still running in the namespace (everything in it is ours: we made
    it), then delete it; bounded, never raises."""
    with contextlib.suppress(Exception):
        pids = subprocess.run(
            ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=5
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(Exception):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def existing_netns() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except OSError:
        return []

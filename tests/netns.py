"""Network namespaces and veth pairs for integration tests and benches.

Everything here is made with a per-run prefix (``vt`` + 6 random hex digits),
so two runs on one machine never collide, and everything made is recorded so
``Lab.close()`` can remove it: processes first, then namespaces (removing a
namespace removes the veth ends inside it, and with them their peers).

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
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IFNAMSIZ = 15
REQUIRED_TOOLS = ("ip", "ping", "arping", "tc")


REPO_ROOT = Path(__file__).resolve().parent.parent

# Console scripts as modules, so a test always runs the code of the checkout it
# belongs to (not whichever checkout the editable install points at).
CONSOLE_SCRIPTS = {"vrc": "cli.main", "vrc-agent": "agents.daemon",
                   "vrc-controller": "controller.daemon"}


class LabError(RuntimeError):
    """A namespace command failed or a bounded wait ran out."""


def script_argv(name: str) -> list[str]:
    """The argv that runs console script ``name`` from this checkout."""
    return [sys.executable, "-c",
            f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); "
            f"from {CONSOLE_SCRIPTS[name]} import main; sys.exit(main())"]


def require_root_and_tools(tools: Sequence[str] = REQUIRED_TOOLS) -> None:
    """Fail (never skip) when the integration prerequisites are missing."""
    if os.geteuid() != 0:
        raise LabError("integration tests need root (network namespaces, AF_PACKET)")
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
        self, *args: str, check: bool = True, timeout: float = 15.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and wait (bounded) for it."""
        proc = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )
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


@dataclass
class Lab:
    """Owner of every namespace, veth and process a test or bench makes.

    Use as a context manager (or call ``close``) so clean-up happens also on
    failure; ``close`` is idempotent and never raises.
    """

    prefix: str = field(default_factory=lambda: "vt" + secrets.token_hex(3))
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
        _run_host("ip", "netns", "add", ns.name)
        self.namespaces.append(ns)
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

    def spawn(self, ns: Netns, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running process inside ``ns``; ``close`` stops it."""
        out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                ns.argv(*args), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]
        self.processes.append(proc)
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
        return proc.returncode

    def close(self) -> None:
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=5.0)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            _delete_netns(ns.name)
        self.namespaces.clear()


def _run_host(*args: str, timeout: float = 15.0) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")


def _delete_netns(name: str) -> None:
    """Kill anything still running in the namespace, then delete it (bounded)."""
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

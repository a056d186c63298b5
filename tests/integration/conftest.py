"""Fixtures for the root integration tests: namespaces, helpers and a running vrc-agent.

Prerequisites (root, ip, ping, arping, tc...) are checked by the ``lab``
fixture, which raises: a missing prerequisite is an error, never a skip.
Everything a test creates belongs to its ``Lab`` and is removed at teardown,
also when the test fails.

Topology of the ``topo`` fixture (addresses are the kernel's, in A and B;
R's are given to the agent by the tests)::

    A: a0 10.1.0.2/24 ── ra  R (vrc-agent)  rb ── b0 10.2.0.2/24 :B
       default via 10.1.0.1                       default via 10.2.0.1
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.netns import (
    Lab,
    LabError,
    Netns,
    require_root_and_tools,
    script_argv,
    wait_until,
)
from vrc.v1 import agent_pb2, agent_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("nshelper.py")
A_ADDR, R_A_ADDR = "10.1.0.2", "10.1.0.1"
B_ADDR, R_B_ADDR = "10.2.0.2", "10.2.0.1"
AGENT_START_TIMEOUT = 20.0


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root_and_tools()
    with Lab() as made:
        yield made


class NsHelper:
    """Client of ``nshelper.py`` running in one namespace (see that module)."""

    def __init__(self, lab: Lab, ns: Netns) -> None:
        self.ns = ns
        self.proc = subprocess.Popen(
            ns.argv("python3", str(HELPER)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        lab.processes.append(self.proc)  # type: ignore[arg-type]
        assert self._read(15.0) == {"ready": True}

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise LabError(f"helper in {self.ns.name} did not answer within {timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise LabError(f"helper in {self.ns.name} exited: {err}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Run ``op`` in the helper; the answer is awaited 30 s beyond its own timeout."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        reply = self._read(30.0 + float(args.get("timeout", 0.0)))
        if "error" in reply:
            raise LabError(f"helper {op}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Topology:
    lab: Lab
    a: Netns
    r: Netns
    b: Netns
    a0: str
    ra: str
    rb: str
    b0: str


@pytest.fixture
def topo(lab: Lab) -> Topology:
    a, r, b = lab.netns("a"), lab.netns("r"), lab.netns("b")
    a0, ra = lab.veth(a, "a0", r, "ra")
    rb, b0 = lab.veth(r, "rb", b, "b0")
    a.ip("addr", "add", f"{A_ADDR}/24", "dev", a0)
    a.ip("route", "add", "default", "via", R_A_ADDR)
    b.ip("addr", "add", f"{B_ADDR}/24", "dev", b0)
    b.ip("route", "add", "default", "via", R_B_ADDR)
    for ns, ifname in ((a, a0), (b, b0)):
        # no IPv6 chatter from the peers: the tests count frames
        ns.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "1")
    return Topology(lab, a, r, b, a0, ra, rb, b0)


class AgentProc:
    """A ``vrc-agent`` subprocess in namespace R, reached over a unix socket."""

    def __init__(self, topo: Topology, *extra: str, interfaces: tuple[str, ...] = ()) -> None:
        self.topo = topo
        self.dir = Path(tempfile.mkdtemp(prefix="vrct", dir="/tmp"))
        self.socket = self.dir / "agent.sock"
        self.log = self.dir / "agent.log"
        self.target = f"unix:{self.socket}"
        argv = [*script_argv("vrc-agent"), "--listen", self.target, "--host-id", "r",
                "--log-format", "json", "--log-level", "debug", *extra]
        if "--run-dir" not in extra:
            argv += ["--run-dir", str(self.dir / "run")]  # never the host's /run/vrc-agent
        for ifname in interfaces or (topo.ra, topo.rb):
            argv += ["--interface", ifname]
        self.proc = topo.lab.spawn(topo.r, *argv, log=self.log)
        self.channel = grpc.insecure_channel(self.target)
        self.stub = agent_pb2_grpc.AgentStub(self.channel)
        try:
            self._wait_ready()
        except BaseException:
            self.cleanup()
            raise

    def _wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                tail = self.logs()[-4000:]
                raise LabError(f"vrc-agent exited {self.proc.returncode}:\n{tail}")
            if not self.socket.exists():
                return False
            try:
                self.stub.ListInterfaces(agent_pb2.ListInterfacesRequest(), timeout=2)
            except grpc.RpcError:
                return False
            return True

        try:
            wait_until(ready, AGENT_START_TIMEOUT, 0.1, "vrc-agent to serve its API")
        except LabError as exc:
            raise LabError(f"{exc}\n{self.logs()[-4000:]}") from None

    def logs(self) -> str:
        try:
            return self.log.read_text()
        except OSError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.logs().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def cli(self, *args: str, check: bool = True, timeout: float = 30.0
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*script_argv("vrc"), "--agent", self.target, *args],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise LabError(f"vrc {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
        return proc

    def alias(self, ifname: str, address: str) -> None:
        self.stub.AddAlias(agent_pb2.AddAliasRequest(ifname=ifname, address=address), timeout=10)

    def stop(self) -> int:
        self.channel.close()
        code = self.topo.lab.stop(self.proc, timeout=15.0)
        return code

    def cleanup(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.topo.lab.stop(self.proc, timeout=15.0)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def agent(topo: Topology) -> Iterator[AgentProc]:
    """vrc-agent on R's two veths, with 10.1.0.1/24 on ra and 10.2.0.1/24 on rb."""
    proc = AgentProc(topo)
    try:
        proc.alias(topo.ra, f"{R_A_ADDR}/24")
        proc.alias(topo.rb, f"{R_B_ADDR}/24")
        yield proc
    finally:
        proc.cleanup()


@pytest.fixture
def bare_agent(topo: Topology) -> Iterator[AgentProc]:
    """vrc-agent on R's two veths with no addresses yet."""
    proc = AgentProc(topo)
    try:
        yield proc
    finally:
        proc.cleanup()


def ping(ns: Netns, address: str, *extra: str, count: int = 3,
         timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """``ping -c count`` bounded by ``-w`` and a subprocess timeout; never raises on loss."""
    deadline = str(max(2, int(timeout) - 1))
    return ns.run("ping", "-n", "-c", str(count), "-i", "0.2", "-w", deadline, *extra, address,
                  check=False, timeout=timeout + 5)


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "") -> None:
    wait_until(predicate, timeout, 0.05, what)


def now() -> float:
    return time.monotonic()

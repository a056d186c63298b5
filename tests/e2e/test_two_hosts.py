"""The whole product on one machine: vrc-controller, two vrc-agents, the vrc CLI, the kernel.

    A (kernel) ── h1 (vrc-agent) ── segment ── h2 (vrc-agent) ── B (kernel)
    10.1.0.2/24   10.1.0.1 | 10.0.12.1      10.0.12.2 | 10.2.0.1   10.2.0.2/24

A controller with its private etcd listens on a Unix socket; each agent runs
in a network namespace of its own and dials that socket (``--controller
unix:...``). Everything the agents hold is configured through ``vrc
--controller``: the aliases of both hosts and a prefix claim for each kernel
host's subnet, from which the controller computes the routes across the
segment. Then A pings B through both agents. Root; part of the test command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.controller.processes import ControllerProcess, start_controller
from tests.netns import Lab, Netns, require_root_and_tools, script_argv, wait_until

pytestmark = pytest.mark.integration

A_ADDR, H1_A = "10.1.0.2", "10.1.0.1"
B_ADDR, H2_B = "10.2.0.2", "10.2.0.1"
H1_S, H2_S = "10.0.12.1", "10.0.12.2"


@dataclass
class Cluster:
    lab: Lab
    directory: Path
    controller: ControllerProcess
    a: Netns
    b: Netns
    names: dict[str, str]  # role -> interface name (per-run unique)

    def vrc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*script_argv("vrc"), "--controller", self.controller.target,
                               *args], capture_output=True, text=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"vrc {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.vrc("-o", "json", *args).stdout)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    require_root_and_tools()
    directory = Path(tempfile.mkdtemp(prefix="vrce", dir="/tmp"))
    with Lab() as lab:
        (directory / "controller").mkdir()
        controller = start_controller(directory / "controller")
        try:
            yield _build(lab, directory, controller)
        finally:
            lab.close()  # the agents (stopped by PID) and the namespaces first
            controller.stop()
            shutil.rmtree(directory, ignore_errors=True)


def _build(lab: Lab, directory: Path, controller: ControllerProcess) -> Cluster:
    a, h1, h2, b = (lab.netns(role) for role in ("a", "h1", "h2", "b"))
    a0, h1a = lab.veth(a, "a0", h1, "1a")
    h1s, h2s = lab.veth(h1, "1s", h2, "2s")
    h2b, b0 = lab.veth(h2, "2b", b, "b0")
    a.ip("addr", "add", f"{A_ADDR}/24", "dev", a0)
    a.ip("route", "add", "default", "via", H1_A)
    b.ip("addr", "add", f"{B_ADDR}/24", "dev", b0)
    b.ip("route", "add", "default", "via", H2_B)
    for ns, ifname in ((a, a0), (b, b0)):
        ns.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "1")
    for host, ns, nics in (("h1", h1, (h1a, h1s)), ("h2", h2, (h2s, h2b))):
        argv = [*script_argv("vrc-agent"), "--host-id", host,
                "--listen", f"unix:{directory}/{host}.sock",
                "--controller", controller.target, "--state-dir", str(directory / host),
                "--arp-probes", "0", "--log-format", "json"]
        for nic in nics:
            argv += ["--interface", nic]
        lab.spawn(ns, *argv, log=directory / f"{host}.log")
    return Cluster(lab, directory, controller, a, b,
                   {"h1a": h1a, "h1s": h1s, "h2s": h2s, "h2b": h2b})


def _ping(ns: Netns, address: str) -> subprocess.CompletedProcess[str]:
    return ns.run("ping", "-n", "-c", "3", "-i", "0.2", "-w", "9", address, check=False,
                  timeout=20)


def test_two_agents_configured_only_through_the_controller_forward_between_kernel_hosts(
        cluster: Cluster) -> None:
    names = cluster.names

    def both_up() -> bool:
        hosts = cluster.json("hosts")
        return sorted((h["id"], h.get("up", False)) for h in hosts) == [("h1", True),
                                                                        ("h2", True)]

    wait_until(both_up, 60, 0.2, "both agents registered and up")
    for host, ifname, address in (("h1", names["h1a"], f"{H1_A}/24"),
                                  ("h1", names["h1s"], f"{H1_S}/24"),
                                  ("h2", names["h2s"], f"{H2_S}/24"),
                                  ("h2", names["h2b"], f"{H2_B}/24")):
        cluster.vrc("alias", "add", host, ifname, address)
    cluster.vrc("prefix", "add", "10.1.0.0/24", "--host", "h1", "--iface", names["h1a"])
    written = cluster.json("prefix", "add", "10.2.0.0/24", "--host", "h2",
                           "--iface", names["h2b"])
    revision = int(written["revision"])

    def applied() -> bool:
        fleet = cluster.json("status")["fleet"]
        return int(fleet.get("watermark", 0)) >= revision

    wait_until(applied, 60, 0.2, "every agent at the last write")
    routes = cluster.json("--host", "h1", "routes")  # through the controller to h1's agent
    via = {r["prefix"]: r.get("gateway") for r in routes}
    assert via.get("10.2.0.0/24") == H2_S, routes
    result = _ping(cluster.a, B_ADDR)
    assert result.returncode == 0 and " 0% packet loss" in result.stdout, result.stdout
    status = cluster.vrc("status", "h1").stdout
    assert "host h1: up" in status and "route/10.2.0.0/24" in status

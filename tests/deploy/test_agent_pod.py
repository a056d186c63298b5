"""The DaemonSet's own agent command line and capabilities, run in a namespace playing the node.

Root: namespace N gets an uplink veth holding the default route and the node's
address (what status.hostIP is) and a data-plane veth; the agent starts with
the rendered DaemonSet's args (the downward API and ConfigMap values filled in
as kubelet would, the socket moved to a temp dir, /host/proc/sys being this
namespace's /proc/sys) under a bounding set of exactly the DaemonSet's
capabilities. It must isolate its NIC with tcx, answer kubelet-style gRPC
health checks on the node IP, and refuse the uplink. The root namespace is
never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from serving.pki import make_dev_pki
from tests.deploy.manifests import container_env, expand, one, pod_spec
from tests.netns import Lab, Netns, require_root_and_tools, script_argv, wait_until

pytestmark = pytest.mark.integration

NODE_IP, GATEWAY = "10.77.0.2", "10.77.0.1"
HEALTH_CHECK = """
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=sys.argv[2]), timeout=3)
print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
"""


@dataclass
class Node:
    lab: Lab
    ns: Netns
    uplink: str
    data_nic: str
    dir: Path


@pytest.fixture
def node() -> Iterator[Node]:
    require_root_and_tools(("ip", "tc", "setpriv"))
    with Lab() as lab:
        ns, peer = lab.netns("node"), lab.netns("net")
        uplink, _ = lab.veth(ns, "up", peer, "pu")
        data_nic, _ = lab.veth(ns, "dp", peer, "pd")
        ns.ip("addr", "add", f"{NODE_IP}/24", "dev", uplink)
        ns.ip("route", "add", "default", "via", GATEWAY)
        directory = Path(tempfile.mkdtemp(prefix="vrcpod", dir="/tmp"))
        try:
            yield Node(lab, ns, uplink, data_nic, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def daemonset_container() -> dict[str, Any]:
    (container,) = pod_spec(one("base", "DaemonSet", "vrc-agent"))["containers"]
    return container


def node_certificates(node: Node) -> dict[str, str]:
    """What the pod's TLS volumes hold on this node (the node's agent pair, the CA), made
    in the test's directory: mount path -> where the files are here."""
    made = make_dev_pki(node.dir / "pki", ["node-1"])
    tls, ca = node.dir / "tls", node.dir / "ca"
    tls.mkdir()
    ca.mkdir()
    shutil.copy(made.agents["node-1"].cert, tls / "tls.crt")
    shutil.copy(made.agents["node-1"].key, tls / "tls.key")
    shutil.copy(made.ca, ca / "ca.crt")
    return {"/etc/vrc/tls/": f"{tls}/", "/etc/vrc/ca/": f"{ca}/"}


def pod_argv(node: Node, interfaces: str) -> list[str]:
    """The DaemonSet's args as kubelet would expand them on this node (its volumes'
    files in the test's directory)."""
    container = daemonset_container()
    mounts = node_certificates(node)
    env = container_env("base", container, {"spec.nodeName": "node-1",
                                            "status.hostIP": NODE_IP})
    env["VRC_INTERFACES"] = interfaces
    env["VRC_ARP_PROBES"] = "0"
    args = [expand(arg, env) for arg in container["args"]]
    args = [f"--listen=unix:{node.dir / 'agent.sock'}" if arg.startswith("--listen=") else arg
            for arg in args]
    args = [arg.replace("/host/proc/sys", "/proc/sys") for arg in args]
    for mount, here in mounts.items():
        args = [arg.replace(mount, here) for arg in args]
    return args


def bounding_set() -> str:
    capabilities = daemonset_container()["securityContext"]["capabilities"]
    assert capabilities["drop"] == ["ALL"]
    return "-all," + ",".join(f"+{name.lower()}" for name in capabilities["add"])


def with_capabilities(argv: list[str], caps: str) -> list[str]:
    return ["setpriv", f"--bounding-set={caps}", "--inh-caps=-all", *argv]


def health(node: Node, service: str) -> str:
    proc = node.ns.run(sys.executable, "-c", HEALTH_CHECK, f"{NODE_IP}:9641", service,
                       check=False, timeout=15)
    return proc.stdout.strip() if proc.returncode == 0 else f"error: {proc.stderr[-300:]}"


def records(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_the_daemonsets_agent_runs_with_exactly_its_capabilities(node: Node) -> None:
    log = node.dir / "agent.log"
    argv = with_capabilities([*script_argv("vrc-agent"), *pod_argv(node, node.data_nic)],
                             bounding_set())
    proc = node.lab.spawn(node.ns, *argv, log=log)

    def serving() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"agent exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        return health(node, "vrc.v1.Agent") == "SERVING"

    wait_until(serving, 30.0, 0.2, "the agent's health port on the node IP")
    assert health(node, "") == "SERVING"
    isolated = [r for r in records(log) if r.get("event") == "isolated"]
    assert [(r["ifname"], r["method"]) for r in isolated] == [(node.data_nic, "tcx")]
    assert node.lab.stop(proc, timeout=15.0) == 0
    assert "NOARP" not in node.ns.run("ip", "-o", "link", "show", "dev", node.data_nic).stdout


def test_without_bpf_the_tcx_drop_is_not_possible(node: Node) -> None:
    log = node.dir / "agent.log"
    caps = bounding_set().replace(",+bpf", "")
    argv = with_capabilities([*script_argv("vrc-agent"), *pod_argv(node, node.data_nic)], caps)
    proc = node.lab.spawn(node.ns, *argv, log=log)
    try:
        wait_until(lambda: proc.poll() is not None or any(
            r.get("event") in ("isolated", "agent failed to start") for r in records(log)),
            30.0, 0.2, "the agent to isolate or fail")
    finally:
        node.lab.stop(proc, timeout=15.0)
    methods = [r["method"] for r in records(log) if r.get("event") == "isolated"]
    # the tc fallback where the kernel has cls_matchall, else a start failure; never tcx
    assert "tcx" not in methods
    assert methods == ["tc"] or "bpf(2) command 5: Operation not permitted" in log.read_text()


def test_the_daemonsets_agent_refuses_the_nodes_uplink(node: Node) -> None:
    log = node.dir / "agent.log"
    argv = with_capabilities(
        [*script_argv("vrc-agent"), *pod_argv(node, f"{node.data_nic},{node.uplink}")],
        bounding_set())
    proc = node.lab.spawn(node.ns, *argv, log=log)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        node.lab.stop(proc)
        raise AssertionError(f"the agent did not exit:\n{log.read_text()}") from None
    text = log.read_text()
    assert code == 1, text
    assert f"--interface {node.uplink}: refusing the node's primary interface" in text
    assert f"holds the node's address {NODE_IP} (--node-ip)" in text
    assert f"default route 0.0.0.0/0 via {GATEWAY}" in text

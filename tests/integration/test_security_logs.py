"""No secret in any log line: a full run with mutual TLS everywhere and etcd authentication.

Two controllers (one on an external etcd with user authentication, whose password
comes from the environment; one with its private etcd, which has certificates of its
own), an agent in namespace R serving its API over mutual TLS on R's loopback, and the
CLI against all three — as an admin, a reader that is refused, a client whose
certificate expired — with a certificate rotation in the middle. Then every log line
(the daemons' at debug level, the private etcd's, the CLI's output) is searched for PEM
markers, the bytes of every private key involved (base64 as in the files, and raw),
and the etcd password.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.etcd import embedded as emb
from serving import pki
from tests.controller.processes import ControllerProcess, start_controller
from tests.etcd import TestEtcd, running_etcd
from tests.integration.conftest import Topology
from tests.netns import LabError, script_argv, wait_until
from tests.security import TestPki, make_test_pki

pytestmark = pytest.mark.integration

WAIT = 30.0
AGENT_PORT = 50761  # on R's own loopback, inside the namespace this test made


@pytest.fixture
def workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="vrcsec", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def enable_auth(etcd: TestEtcd, password: str) -> None:
    ctl = os.path.join(os.path.dirname(emb.wheel_binary() or emb.DEBIAN_ETCD), "etcdctl")
    for command in (["user", "add", f"root:{password}"], ["user", "grant-role", "root", "root"],
                    ["auth", "enable"]):
        subprocess.run([ctl, f"--endpoints={etcd.url}", *command], check=True,
                       capture_output=True, timeout=30)


def tcp_of(controller: ControllerProcess) -> str:
    match = re.search(r"['\"](127\.0\.0\.1:\d+)['\"]", controller.log_text())
    assert match, controller.log_text()
    return match.group(1)


def key_material(path: Path) -> list[str]:
    """What must never be logged of a private key: its PEM body lines, the whole body
    joined, and the DER bytes as hex."""
    text = path.read_text()
    body = [line for line in text.splitlines() if line and not line.startswith("-----")]
    joined = "".join(body)
    der = base64.b64decode(joined)
    return [*body, joined, der.hex(), der[-32:].hex()]


class Run:
    """Collects what the CLI printed."""

    def __init__(self) -> None:
        self.outputs: list[str] = []

    def vrc(self, *argv: str, ns: object = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VRC_CONTROLLER",
                                                                        "VRC_TLS_"))}
        command = [*script_argv("vrc"), *argv]
        if ns is not None:
            command = ns.argv(*command)  # type: ignore[attr-defined]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=WAIT, env=env)
        self.outputs += [proc.stdout, proc.stderr]
        return proc


def identity_args(certs: TestPki, who: str) -> list[str]:
    files = certs.files(who)
    return ["--tls-ca", certs.ca, "--tls-cert", str(files.cert), "--tls-key", str(files.key)]


def test_no_secret_or_key_material_reaches_any_log_of_a_full_run(
        topo: Topology, workdir: Path) -> None:
    certs = make_test_pki(workdir / "pki", agents=("r",))
    password = "pw-" + secrets.token_hex(12)
    run = Run()
    with running_etcd() as etcd:
        enable_auth(etcd, password)
        external = workdir / "c1"
        private = workdir / "c2"
        external.mkdir()
        private.mkdir()
        server = certs.files("controller")
        cert, key = external / "server.crt", external / "server.key"
        shutil.copy(server.cert, cert)
        shutil.copy(server.key, key)
        common = ["--listen", "127.0.0.1:0", "--log-level", "debug", "--tls-ca", certs.ca]
        one = start_controller(external, etcd=etcd.url, env={
            "VRC_ETCD_USER": "root", "VRC_ETCD_PASSWORD": password},
            args=[*common, "--listen", f"unix+tls:{external}/tls.sock",
                  "--tls-cert", str(cert), "--tls-key", str(key)])
        two = start_controller(private, args=[*common, "--log-format", "json",
                                              "--tls-cert", str(server.cert),
                                              "--tls-key", str(server.key)])
        agent_log = workdir / "agent.log"
        agent_files = certs.files("agent-r")
        agent = topo.lab.spawn(topo.r, *script_argv("vrc-agent"), "--interface", topo.ra,
                               "--host-id", "r", "--listen", f"127.0.0.1:{AGENT_PORT}",
                               "--tls-cert", str(agent_files.cert), "--tls-key",
                               str(agent_files.key), "--tls-ca", certs.ca,
                               "--controller", f"unix+tls:{external}/tls.sock",
                               "--log-format", "json",
                               "--log-level", "debug", "--arp-probes", "0", log=agent_log)
        try:
            admin_agent = ["--agent", f"127.0.0.1:{AGENT_PORT}", *identity_args(certs, "admin")]

            def agent_up() -> bool:
                if agent.poll() is not None:
                    raise LabError(f"vrc-agent exited:\n{agent_log.read_text()[-3000:]}")
                return run.vrc(*admin_agent, "ifaces", ns=topo.r).returncode == 0

            wait_until(agent_up, WAIT, 0.2, "the agent's API over mutual TLS")
            assert run.vrc(*admin_agent, "alias", "add", topo.ra, "10.1.0.1/24",
                           ns=topo.r).returncode == 0
            reader_agent = ["--agent", f"127.0.0.1:{AGENT_PORT}",
                            *identity_args(certs, "reader")]
            assert run.vrc(*reader_agent, "alias", "add", topo.ra, "10.1.0.9/24",
                           ns=topo.r).returncode == 1
            # the agent Syncs with controller one over unix+tls as spiffe://vrc/agent/r
            wait_until(lambda: " up " in run.vrc("--controller", tcp_of(one),
                                                 *identity_args(certs, "admin"), "hosts",
                                                 "r").stdout, WAIT, 0.2, "host r up")
            assert run.vrc("--controller", tcp_of(two), *identity_args(certs, "admin"),
                           "host", "add", "r").returncode == 0
            for controller in (one, two):
                target = ["--controller", tcp_of(controller)]
                admin = [*target, *identity_args(certs, "admin")]
                assert run.vrc(*admin, "alias", "add", "r", topo.ra, "10.0.0.1/24"
                               ).returncode == 0
                assert run.vrc(*target, *identity_args(certs, "reader"), "host", "add", "x"
                               ).returncode == 1
                assert run.vrc(*target, *identity_args(certs, "expired"), "hosts"
                               ).returncode == 1
                assert run.vrc(*target, *identity_args(certs, "stranger"), "hosts"
                               ).returncode == 1
                assert run.vrc(*admin, "history", "--changes").returncode == 0
            # a rotation, half-written first (a mismatched pair is refused and logged)
            new = certs.authority.issue(pki.CertRole.CONTROLLER, "rotated", ips=["127.0.0.1"])
            pki.write_atomic(cert, new.cert, 0o644)
            run.vrc("--controller", tcp_of(one), *identity_args(certs, "admin"), "hosts")
            pki.write_atomic(key, new.key, 0o600)
            assert run.vrc("--controller", tcp_of(one), *identity_args(certs, "admin"),
                           "hosts").returncode == 0
            wait_until(lambda: "TLS certificate reloaded" in one.log_text(), WAIT, 0.1,
                       "the reload to be logged")
        finally:
            topo.lab.stop(agent, timeout=15.0)
            assert one.stop() == 0
            assert two.stop() == 0
        logs = {"controller (external etcd)": one.log_text(),
                "controller (private etcd)": two.log_text(),
                "private etcd": (private / "etcd.log").read_text(errors="replace"),
                "agent": agent_log.read_text(errors="replace"),
                "cli": "\n".join(run.outputs)}
    assert "TLS files changed but are not usable yet" in logs["controller (external etcd)"]
    assert "spiffe://vrc/reader/bob" in logs["cli"]  # the denials were seen and named
    assert "controller stream up" in logs["agent"]  # the agent's Sync ran over mutual TLS
    keys = [certs.files(who).key for who in ("controller", "admin", "reader", "agent-r",
                                              "expired", "stranger")]
    keys += [key, private / "pki" / "etcd.key", private / "pki" / "client.key",
             certs.directory / "ca" / "ca.key"]
    secrets_ = {str(path): key_material(path) for path in keys}
    for name, text in logs.items():
        assert text, f"no {name} log: the test would prove nothing"
        assert "-----BEGIN" not in text, f"a PEM block in the {name} log"
        assert "PRIVATE KEY" not in text, f"a private key in the {name} log"
        assert password not in text, f"the etcd password in the {name} log"
        for path, pieces in secrets_.items():
            for piece in pieces:
                assert piece not in text, f"bytes of {path} in the {name} log"

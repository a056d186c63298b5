"""vrc-controller as a process with mutual TLS: the CLI with certificates, the private etcd's
own TLS, certificates rotated under an open stream, the health-only port, flag errors."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.etcd import Endpoint, EtcdClient, EtcdConfig, EtcdUnavailable
from serving import pki
from serving.tls import TlsConfig
from tests.controller.processes import ControllerProcess, start_controller
from tests.netns import script_argv
from tests.security import TestPki, channel_to, make_test_pki, server_certificate
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

WAIT = 30.0


@pytest.fixture
def short_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="vrc-t-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def tls_args(certs: TestPki, cert: Path, key: Path) -> list[str]:
    return ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", certs.ca]


def tcp_address(controller: ControllerProcess) -> str:
    """The TCP address from the "controller started" line (which the daemon writes just
    after it starts serving: a bounded wait for it)."""
    pattern = r"controller started.*listen=(\[[^\]]*\])"
    deadline = time.monotonic() + WAIT
    while not (match := re.search(pattern, controller.log_text())) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert match, controller.log_text()
    listens = [a for a in ast.literal_eval(match.group(1)) if not a.startswith("unix:")]
    return str(listens[0])


def vrc(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VRC_CONTROLLER",
                                                                    "VRC_TLS_"))}
    return subprocess.run([*script_argv("vrc"), *argv], capture_output=True, text=True,
                          timeout=WAIT, env=env)


def as_(certs: TestPki, who: str) -> list[str]:
    files = certs.files(who)
    return ["--tls-ca", certs.ca, "--tls-cert", str(files.cert), "--tls-key", str(files.key)]


@pytest.fixture
def secure(short_dir: Path, certs: TestPki) -> Iterator[tuple[ControllerProcess, Path]]:
    """A controller with its private etcd, a Unix socket and 127.0.0.1:0 over mutual TLS,
    its server pair in files of its own (so a test can rotate them)."""
    cert, key = short_dir / "server.crt", short_dir / "server.key"
    shutil.copy(certs.files("controller").cert, cert)
    shutil.copy(certs.files("controller").key, key)
    controller = start_controller(short_dir, args=["--listen", "127.0.0.1:0",
                                                   "--health-listen", "127.0.0.1:0",
                                                   *tls_args(certs, cert, key)])
    try:
        yield controller, short_dir
    finally:
        assert controller.stop() == 0, controller.log_text()


def test_the_cli_talks_mutual_tls_and_each_identity_gets_its_role(
        secure: tuple[ControllerProcess, Path], certs: TestPki) -> None:
    controller, _ = secure
    target = tcp_address(controller)
    who = vrc("--controller", target, *as_(certs, "admin"), "whoami")
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() == "spiffe://vrc/admin/admin: admin (from certificate)"
    assert vrc("--controller", target, *as_(certs, "admin"), "host", "add", "h1"
               ).returncode == 0
    denied = vrc("--controller", target, *as_(certs, "reader"), "host", "add", "h2")
    assert denied.returncode == 1
    assert denied.stderr.startswith("vrc: PERMISSION_DENIED: spiffe://vrc/reader/bob")
    assert "vrc.v1.Controller/AddHost" in denied.stderr
    listed = vrc("--controller", target, *as_(certs, "reader"), "hosts")
    assert listed.returncode == 0 and "h1" in listed.stdout
    # environment variables work like the flags
    env_run = subprocess.run(
        [*script_argv("vrc"), "--controller", target, "whoami"], capture_output=True,
        text=True, timeout=WAIT,
        env={**os.environ, "VRC_TLS_CA": certs.ca, "VRC_TLS_CERT": str(certs.dev.reader.cert),
             "VRC_TLS_KEY": str(certs.dev.reader.key)})  # type: ignore[union-attr]
    assert "spiffe://vrc/reader/bob: reader" in env_run.stdout, env_run.stderr
    # no certificate, another CA's: the handshake fails, and the CLI says what to check
    for argv in (["--tls-ca", certs.ca], as_(certs, "stranger"), as_(certs, "expired")):
        refused = vrc("--controller", target, *argv, "hosts")
        assert refused.returncode == 1
        assert "UNAVAILABLE" in refused.stderr and "with TLS" in refused.stderr


def test_access_and_history_through_the_cli(secure: tuple[ControllerProcess, Path],
                                            certs: TestPki) -> None:
    controller, _ = secure
    target = tcp_address(controller)
    admin = ["--controller", target, *as_(certs, "admin")]
    assert vrc(*admin, "alias", "add", "h1", "eth1", "10.0.0.1/24").returncode == 1  # no h1
    assert vrc(*admin, "host", "add", "h1").returncode == 0
    assert vrc(*admin, "alias", "add", "h1", "eth1", "10.0.0.1/24").returncode == 0
    assert vrc(*admin, "alias", "add", "h1", "eth1", "10.0.0.1/16").returncode == 0
    grant = vrc(*admin, "access", "grant", "spiffe://vrc/reader/bob", "none")
    assert grant.returncode == 0, grant.stderr
    assert vrc("--controller", target, *as_(certs, "reader"), "hosts").returncode == 1
    listed = vrc(*admin, "-o", "json", "access", "ls")
    entries = json.loads(listed.stdout)
    assert [(e["identity"], e["role"]) for e in entries] == [
        ("spiffe://vrc/reader/bob", "ACCESS_ROLE_NONE")]
    history = vrc(*admin, "history", "--host", "h1", "--since", "1h", "--changes")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    heads = [line for line in lines if line.startswith("#")]
    assert len(heads) == 3  # the host, the alias, its replacement; not the refused one
    assert all("spiffe://vrc/admin/admin" in line for line in heads)
    assert any('"10.0.0.1/24"' in line and '"10.0.0.1/16"' in line for line in lines)
    as_json = vrc(*admin, "-o", "json", "history", "--limit", "1")
    (entry,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert entry["operation"] == "grant_access"


def test_rotated_server_files_are_used_by_new_connections_and_a_watch_stays_open(
        secure: tuple[ControllerProcess, Path], certs: TestPki) -> None:
    controller, directory = secure
    target = tcp_address(controller)
    host, _, port = target.rpartition(":")
    admin = certs.tls("admin")
    before = server_certificate(host, int(port), admin)
    with channel_to(target, admin) as channel:
        stub = controller_pb2_grpc.ControllerStub(channel)
        stream = stub.WatchConfig(pb.WatchConfigRequest(), timeout=120)
        assert next(stream).snapshot
        new = certs.authority.issue(pki.CertRole.CONTROLLER, "rotated", ips=["127.0.0.1"])
        pki.write_atomic(directory / "server.key", new.key, 0o600)
        pki.write_atomic(directory / "server.crt", new.cert, 0o644)
        after = server_certificate(host, int(port), admin)
        assert after != before
        assert hashlib.sha256(after).hexdigest() == pki.describe(new.cert).fingerprint
        assert vrc("--controller", controller.target, "host", "add", "after").returncode == 0
        change = next(stream).changes[0]
        assert change.host.id == "after"  # the stream opened before the rotation goes on
        stream.cancel()
    assert "TLS certificate reloaded" in controller.log_text()
    assert "spiffe://vrc/controller/rotated" in controller.log_text()


def test_the_private_etcd_takes_only_clients_with_its_own_certificate(
        secure: tuple[ControllerProcess, Path]) -> None:
    _, directory = secure
    ports = json.loads((directory / "etcd.json").read_text())
    endpoint = Endpoint("127.0.0.1", int(ports["client"]), secure=True)
    pki_dir = directory / "pki"
    assert oct((pki_dir / "client.key").stat().st_mode & 0o777) == "0o600"
    assert oct(pki_dir.stat().st_mode & 0o777) == "0o700"
    plaintext = EtcdConfig((Endpoint("127.0.0.1", int(ports["client"])),))
    without_certificate = EtcdConfig((endpoint,), cacert=str(pki_dir / "ca.crt"))
    for config in (plaintext, without_certificate):
        client = EtcdClient(config, connect_timeout=1.0)
        try:
            with pytest.raises(EtcdUnavailable):
                client.wait_healthy(timeout=1.0)
        finally:
            client.close()
    good = EtcdClient(EtcdConfig((endpoint,), cacert=str(pki_dir / "ca.crt"),
                                 cert=str(pki_dir / "client.crt"),
                                 key=str(pki_dir / "client.key")))
    try:
        assert good.status().leader
    finally:
        good.close()


def test_the_health_only_port_answers_in_plaintext(secure: tuple[ControllerProcess, Path]
                                                   ) -> None:
    controller, _ = secure
    match = re.search(r"health\s.*listen=(127\.0\.0\.1:\d+)", controller.log_text())
    assert match, controller.log_text()
    with grpc.insecure_channel(match.group(1)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="vrc.v1.Controller"), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(("argv", "text"), [
    (["--listen", "127.0.0.1:0", "--tls-cert", "C", "--tls-key", "K"], "--tls-ca"),
    (["--tls-no-client-auth"], "--tls-no-client-auth needs --tls-cert"),
    (["--tls-cert", "C"], "--tls-cert needs --tls-key"),
    (["--bootstrap-admin", "a b"], "--bootstrap-admin"),
    (["--history-max-age", "soon"], "--history-max-age"),
    (["--write-rate", "0"], "--write-rate"),
])
def test_bad_tls_and_security_flags_exit_2_naming_the_flag(
        short_dir: Path, argv: list[str], text: str) -> None:
    result = subprocess.run([*script_argv("vrc-controller"), "--data-dir", str(short_dir),
                             *argv], capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2, result.stderr
    assert text in result.stderr
    assert not (short_dir / "etcd").exists()


def test_a_key_that_is_not_the_certificates_is_refused_at_start(short_dir: Path,
                                                                certs: TestPki) -> None:
    result = subprocess.run(
        [*script_argv("vrc-controller"), "--data-dir", str(short_dir), "--listen",
         "127.0.0.1:0", "--tls-cert", str(certs.files("controller").cert), "--tls-key",
         str(certs.files("admin").key), "--tls-ca", certs.ca],
        capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2
    assert "the key is not the certificate's" in result.stderr


def test_the_old_client_ca_flag_still_works_with_a_warning(short_dir: Path,
                                                           certs: TestPki) -> None:
    files = certs.files("controller")
    controller = start_controller(short_dir, args=[
        "--listen", "127.0.0.1:0", "--tls-cert", str(files.cert), "--tls-key", str(files.key),
        "--tls-client-ca", certs.ca])
    try:
        assert "--tls-client-ca is deprecated" in controller.log_text()
        who = vrc("--controller", tcp_address(controller), *as_(certs, "admin"), "whoami")
        assert who.returncode == 0, who.stderr
    finally:
        controller.stop()


def test_server_tls_without_client_certificates_needs_saying_so_and_logs_it(
        short_dir: Path, certs: TestPki) -> None:
    files = certs.files("controller")
    controller = start_controller(short_dir, args=[
        "--listen", "127.0.0.1:0", "--tls-cert", str(files.cert), "--tls-key", str(files.key),
        "--tls-no-client-auth"])
    try:
        assert "--tls-no-client-auth" in controller.log_text()
        who = vrc("--controller", tcp_address(controller), "--tls-ca", certs.ca, "whoami")
        assert who.returncode == 0, who.stderr
        assert who.stdout.startswith("anonymous:ipv4:127.0.0.1: admin")
    finally:
        controller.stop()


def test_an_https_etcd_without_etcd_flags_uses_the_shared_tls_files(certs: TestPki) -> None:
    from argparse import Namespace

    from controller.options import etcd_config

    args = Namespace(etcd="https://etcd.example:2379", etcd_cacert=None, etcd_cert=None,
                     etcd_key=None, etcd_user=None, etcd_password=None)
    config = etcd_config(args, certs.tls("controller"))
    assert config is not None
    assert (config.cacert, config.cert) == (certs.ca, str(certs.files("controller").cert))
    plain = etcd_config(Namespace(**{**vars(args), "etcd": "http://etcd.example:2379"}),
                        certs.tls("controller"))
    assert plain is not None and plain.cacert is None
    assert TlsConfig().client_side() is None

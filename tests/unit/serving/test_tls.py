"""The shared TLS flags and credentials: the rules, env defaults, and rotation without a restart."""

from __future__ import annotations

import argparse
import hashlib
import shutil
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from serving import pki
from serving.server import bind, parse_listen
from serving.tls import ServerCredentials, TlsConfig, add_tls_arguments, tls_from_args
from tests.security import TestPki, channel_to, make_test_pki, server_certificate

TIMEOUT = 10


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def parse(argv: list[str], *, server: bool = True, client: bool = True) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_tls_arguments(parser, server=server, client=client)
    return parser.parse_args(argv)


def test_the_flags_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRC_TLS_CERT", "/e/c.pem")
    monkeypatch.setenv("VRC_TLS_KEY", "/e/k.pem")
    monkeypatch.setenv("VRC_TLS_CA", "/e/ca.pem")
    monkeypatch.setenv("VRC_TLS_SERVER_NAME", "vrc-controller")
    tls = tls_from_args(parse([]))
    assert tls == TlsConfig("/e/c.pem", "/e/k.pem", "/e/ca.pem", server_name="vrc-controller")
    assert tls_from_args(parse(["--tls-ca", "/f/ca.pem"])).ca == "/f/ca.pem"  # a flag wins


def test_the_old_client_ca_flag_is_an_alias_that_warns() -> None:
    warnings: list[str] = []
    tls = tls_from_args(parse(["--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca"]),
                        warn=warnings.append)
    assert tls.ca == "ca"
    assert warnings and "--tls-ca" in warnings[0]
    with pytest.raises(ValueError, match="old name of --tls-ca"):
        tls_from_args(parse(["--tls-ca", "a", "--tls-client-ca", "b"]))


def test_a_server_pair_without_a_ca_needs_the_explicit_insecure_flag() -> None:
    with pytest.raises(ValueError, match="--tls-no-client-auth"):
        TlsConfig("c", "k").server_side()
    lax = tls_from_args(parse(["--tls-cert", "c", "--tls-key", "k", "--tls-no-client-auth"]))
    assert lax.server_side() is lax and not lax.client_auth


def test_no_pair_means_no_server_tls_and_a_ca_alone_is_a_client_config() -> None:
    assert TlsConfig().server_side() is None
    assert TlsConfig(ca="ca").server_side() is None
    assert TlsConfig().client_side() is None
    assert TlsConfig(ca="ca").client_side() == TlsConfig(ca="ca")


def test_a_key_that_is_not_the_certificates_is_refused_naming_both(certs: TestPki) -> None:
    admin, reader = certs.files("admin"), certs.files("reader")
    with pytest.raises(ValueError, match=r"--tls-cert .*admin\.crt and --tls-key .*reader\.key"):
        TlsConfig(str(admin.cert), str(reader.key), certs.ca).check_readable()


# --- a real server, rotated -------------------------------------------------------------


class Served:
    def __init__(self, directory: Path, certs: TestPki) -> None:
        self.cert, self.key, self.ca = (directory / "server.crt", directory / "server.key",
                                        directory / "ca.crt")
        shutil.copy(certs.files("controller").cert, self.cert)
        shutil.copy(certs.files("controller").key, self.key)
        shutil.copy(certs.ca, self.ca)
        self.credentials = ServerCredentials(TlsConfig(str(self.cert), str(self.key),
                                                       str(self.ca)))
        self.server = grpc.server(futures.ThreadPoolExecutor(8))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.address = bind(self.server, parse_listen("127.0.0.1:0"), self.credentials)
        self.port = int(self.address.rpartition(":")[2])
        self.server.start()

    def rotate(self, issued: pki.Issued) -> None:
        """Rewrite the files in place, as an operator (or cert-manager) would."""
        pki.write_atomic(self.key, issued.key, 0o600)
        pki.write_atomic(self.cert, issued.cert, 0o644)


@pytest.fixture
def served(tmp_path: Path, certs: TestPki) -> Iterator[Served]:
    running = Served(tmp_path, certs)
    try:
        yield running
    finally:
        running.server.stop(None).wait()


def test_rotated_files_are_used_by_new_connections_and_open_streams_survive(
        served: Served, certs: TestPki) -> None:
    admin = certs.tls("admin")
    before = server_certificate("127.0.0.1", served.port, admin)
    with channel_to(served.address, admin) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        served.health.set("svc", health_pb2.HealthCheckResponse.SERVING)
        stream = stub.Watch(health_pb2.HealthCheckRequest(service="svc"), timeout=60)
        assert next(stream).status == health_pb2.HealthCheckResponse.SERVING

        new = certs.authority.issue(pki.CertRole.CONTROLLER, "controller-2", dns=["localhost"],
                                    ips=["127.0.0.1"])
        served.rotate(new)
        after = server_certificate("127.0.0.1", served.port, admin)
        assert after != before
        assert hashlib.sha256(after).hexdigest() == pki.describe(new.cert).fingerprint
        assert served.credentials.reloads == 1

        # the stream opened before the rotation still carries news
        served.health.set("svc", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert next(stream).status == health_pb2.HealthCheckResponse.NOT_SERVING
        stream.cancel()
    with channel_to(served.address, admin) as fresh:  # a new client trusts the same CA
        reply = health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(),
                                                        timeout=TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_half_written_pair_is_ignored_until_it_matches(served: Served,
                                                         certs: TestPki) -> None:
    admin = certs.tls("admin")
    before = server_certificate("127.0.0.1", served.port, admin)
    new = certs.authority.issue(pki.CertRole.CONTROLLER, "controller-3", ips=["127.0.0.1"])
    pki.write_atomic(served.cert, new.cert, 0o644)  # the key is still the old one
    assert server_certificate("127.0.0.1", served.port, admin) == before
    pki.write_atomic(served.key, new.key, 0o600)
    assert hashlib.sha256(server_certificate("127.0.0.1", served.port, admin)
                          ).hexdigest() == pki.describe(new.cert).fingerprint


def test_a_new_ca_file_changes_which_clients_are_accepted(served: Served,
                                                          certs: TestPki) -> None:
    def check(tls: TlsConfig) -> grpc.StatusCode:
        with channel_to(served.address, tls) as channel:
            try:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=TIMEOUT)
            except grpc.RpcError as error:
                return error.code()
        return grpc.StatusCode.OK

    stranger = TlsConfig(str(certs.stranger.cert), str(certs.stranger.key), certs.ca)
    assert check(stranger) is grpc.StatusCode.UNAVAILABLE
    shutil.copy(certs.stranger_ca, served.ca)  # trust the other CA instead
    assert check(stranger) is grpc.StatusCode.OK
    assert check(certs.tls("admin")) is grpc.StatusCode.UNAVAILABLE


def test_clients_read_their_files_for_every_new_channel(served: Served, certs: TestPki,
                                                        tmp_path: Path) -> None:
    cert, key = tmp_path / "me.crt", tmp_path / "me.key"
    shutil.copy(certs.stranger.cert, cert)
    shutil.copy(certs.stranger.key, key)
    mine = TlsConfig(str(cert), str(key), certs.ca)
    seen: list[grpc.StatusCode] = []
    for source in (certs.stranger, certs.files("admin")):
        shutil.copy(source.cert, cert)
        shutil.copy(source.key, key)
        with channel_to(served.address, mine) as channel:
            try:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=TIMEOUT)
                seen.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                seen.append(error.code())
    assert seen == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK]


def test_handshakes_from_many_threads_during_rotation_all_see_a_whole_pair(
        served: Served, certs: TestPki) -> None:
    admin = certs.tls("admin")
    fingerprints = {pki.describe(certs.files("controller").cert.read_bytes()).fingerprint}
    problems: list[str] = []

    def connect() -> None:
        for _ in range(5):
            try:
                der = server_certificate("127.0.0.1", served.port, admin)
            except OSError as error:
                problems.append(str(error))
                return
            seen = hashlib.sha256(der).hexdigest()
            if seen not in fingerprints:
                problems.append(f"unknown certificate {seen}")

    new = certs.authority.issue(pki.CertRole.CONTROLLER, "controller-4", ips=["127.0.0.1"])
    fingerprints.add(pki.describe(new.cert).fingerprint)
    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    served.rotate(new)
    for thread in threads:
        thread.join(30)
    assert problems == []

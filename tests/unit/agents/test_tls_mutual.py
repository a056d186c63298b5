"""TLS and mutual TLS on the Agent API, with certificates the test makes itself."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agents.gate import Gate
from agents.server import build_server
from serving.tls import TlsConfig
from tests.unit.agents.support import sample_engine
from vrc.v1 import agent_pb2, agent_pb2_grpc

TIMEOUT = 10


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, stem: str) -> tuple[str, str]:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return str(cert_path), str(key_path)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca: Issued, common_name: str, *, server: bool) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    else:  # the identity the agent authorizes on: a reader may list interfaces
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.UniformResourceIdentifier(f"spiffe://vrc/reader/{common_name}")]),
            critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


@dataclass
class Pki:
    """Files of one test PKI: a CA, a server, a good client and a stranger's client."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    stranger_cert: str
    stranger_key: str


def make_pki(directory: Path) -> Pki:
    ca, other_ca = make_ca("vrc test CA"), make_ca("someone else's CA")
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    server = issue(ca, "agent", server=True).write(directory, "server")
    client = issue(ca, "operator", server=False).write(directory, "client")
    stranger = issue(other_ca, "operator", server=False).write(directory, "stranger")
    return Pki(str(ca_path), *server, *client, *stranger)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mtls_address(pki: Pki) -> Iterator[str]:
    server, address = build_server(Gate(sample_engine()), "127.0.0.1:0",
                                   tls=TlsConfig(pki.server_cert, pki.server_key, pki.ca))
    server.start()
    try:
        yield address
    finally:
        server.stop(None).wait()


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def list_interfaces(address: str, credentials: grpc.ChannelCredentials) -> list[str]:
    with grpc.secure_channel(address, credentials) as channel:
        stub = agent_pb2_grpc.AgentStub(channel)
        reply = stub.ListInterfaces(agent_pb2.ListInterfacesRequest(), timeout=TIMEOUT)
        return [i.name for i in reply.interfaces]


def test_mtls_client_with_valid_certificate_succeeds(pki: Pki, mtls_address: str) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(pki.ca), private_key=_read(pki.client_key),
        certificate_chain=_read(pki.client_cert))
    assert list_interfaces(mtls_address, credentials) == ["eth0", "eth1"]


def test_mtls_client_without_certificate_is_refused(pki: Pki, mtls_address: str) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=_read(pki.ca))
    with pytest.raises(grpc.RpcError) as info:
        list_interfaces(mtls_address, credentials)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_mtls_client_with_certificate_of_another_ca_is_refused(
        pki: Pki, mtls_address: str) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(pki.ca), private_key=_read(pki.stranger_key),
        certificate_chain=_read(pki.stranger_cert))
    with pytest.raises(grpc.RpcError) as info:
        list_interfaces(mtls_address, credentials)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_cannot_talk_to_a_tls_server(mtls_address: str) -> None:
    with grpc.insecure_channel(mtls_address) as channel, pytest.raises(grpc.RpcError) as info:
        agent_pb2_grpc.AgentStub(channel).ListInterfaces(agent_pb2.ListInterfacesRequest(),
                                                         timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_server_tls_without_client_auth_accepts_clients_without_certificate(pki: Pki) -> None:
    server, address = build_server(Gate(sample_engine()), "127.0.0.1:0",
                                   tls=TlsConfig(pki.server_cert, pki.server_key,
                                                 client_auth=False))
    server.start()
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=_read(pki.ca))
        assert list_interfaces(address, credentials) == ["eth0", "eth1"]
    finally:
        server.stop(None).wait()


def test_with_mutual_tls_a_client_is_its_certificate(pki: Pki) -> None:
    """The stream budget counts a certificate's subject, not an address (serving/streams.py)."""
    from agents.server import stream_budget

    server, address = build_server(Gate(sample_engine()), "127.0.0.1:0",
                                   tls=TlsConfig(pki.server_cert, pki.server_key, pki.ca),
                                   streams=stream_budget(4, 1))
    server.start()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(pki.ca), private_key=_read(pki.client_key),
        certificate_chain=_read(pki.client_cert))
    try:
        with grpc.secure_channel(address, credentials) as channel:
            stub = agent_pb2_grpc.AgentStub(channel)
            first = stub.WatchEvents(agent_pb2.WatchEventsRequest(), timeout=TIMEOUT)
            next(first)
            second = stub.WatchEvents(agent_pb2.WatchEventsRequest(), timeout=TIMEOUT)
            with pytest.raises(grpc.RpcError) as info:
                next(second)
            first.cancel()
    finally:
        server.stop(None).wait()
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.details().startswith("spiffe://vrc/reader/operator already has 1")

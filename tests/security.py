"""Certificates for tests, made with the project's own PKI (serving/pki.py).

:func:`make_test_pki` gives a CA with a controller, an agent per host, an admin
and a reader, plus the certificates a server must refuse: an expired one from
the same CA and one from another CA. :func:`channel_to` dials with any pair.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from serving import pki
from serving.tls import TlsConfig


@dataclass(frozen=True)
class TestPki:
    __test__ = False

    directory: Path
    authority: pki.CertificateAuthority
    dev: pki.DevPki
    expired: pki.CertFiles  # an admin certificate whose validity ended yesterday
    stranger: pki.CertFiles  # an admin certificate from another CA
    stranger_ca: Path

    @property
    def ca(self) -> str:
        return str(self.dev.ca)

    def files(self, who: str) -> pki.CertFiles:
        """``controller``, ``admin``, ``reader``, ``agent-HOST``, ``expired``, ``stranger``."""
        if who.startswith("agent-"):
            return self.dev.agents[who[len("agent-"):]]
        if who == "reader":
            assert self.dev.reader is not None
            return self.dev.reader
        return {"controller": self.dev.controller, "admin": self.dev.admin,
                "expired": self.expired, "stranger": self.stranger}[who]

    def tls(self, who: str, *, server_name: str | None = None) -> TlsConfig:
        files = self.files(who)
        return TlsConfig(str(files.cert), str(files.key), self.ca, server_name=server_name)

    def issue(self, role: pki.CertRole, name: str, **options: object) -> pki.CertFiles:
        """Another certificate from the test CA, written next to the others."""
        issued = self.authority.issue(role, name, **options)  # type: ignore[arg-type]
        return issued.write(self.directory, f"{role.value}-{name}-extra")


def make_test_pki(directory: Path, agents: tuple[str, ...] = ("h1", "h2")) -> TestPki:
    dev = pki.make_dev_pki(directory, agents, reader="bob")
    authority = pki.CertificateAuthority.load(directory / "ca")
    now = datetime.datetime.now(datetime.UTC)
    expired = authority.issue(pki.CertRole.ADMIN, "old", not_before=now - datetime.timedelta(
        days=10), not_after=now - datetime.timedelta(days=1)).write(directory, "expired")
    other = pki.CertificateAuthority.create("someone else's CA")
    other_files = other.write(directory / "other-ca")
    stranger = other.issue(pki.CertRole.ADMIN, "admin").write(directory, "stranger")
    return TestPki(directory, authority, dev, expired, stranger, other_files.cert)


def channel_to(target: str, tls: TlsConfig | None) -> grpc.Channel:
    """A channel with ``tls`` (None: plaintext); certificates read now."""
    from serving.tls import dial

    return dial(target, tls)


def server_certificate(host: str, port: int, tls: TlsConfig) -> bytes:
    """The DER certificate a TLS server presents to a new connection (the client shows
    ``tls``'s pair, as a server asking for one requires)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we only look at what is presented
    assert tls.cert is not None and tls.key is not None
    context.load_cert_chain(tls.cert, tls.key)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as wrapped:
        der = wrapped.getpeercert(binary_form=True)
    assert der is not None
    return der


def fingerprint(pem_path: Path | str) -> str:
    return pki.describe(Path(pem_path).read_bytes()).fingerprint

"""Certificates for vrc: a CA, and one certificate per identity with its SPIFFE ID.

Every vrc certificate names its holder in one URI SAN,
``spiffe://vrc/{role}/{name}`` (:func:`spiffe_id`), which is what the daemons
authorize on (docs/security.md):

* ``admin/NAME`` and ``reader/NAME`` — people and scripts (client only);
* ``agent/HOST`` — the agent of host HOST: it may Sync as HOST only, and its
  certificate also serves its Agent API (DNS SAN HOST, plus any names and
  addresses given);
* ``controller/NAME`` — a controller replica (a server certificate; give the
  DNS names and addresses clients dial).

Keys are ECDSA P-256 (fast to make, accepted by grpc's BoringSSL and etcd);
private keys are written 0600, certificates 0644, each file atomically (a
reader never sees half a file). :func:`make_dev_pki` builds a throw-away CA
and every component's certificate in one directory, for ``vrc up`` and tests.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import hashlib
import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "vrc"
SPIFFE_PREFIX = f"spiffe://{TRUST_DOMAIN}/"
CA_DAYS = 3650
CERT_DAYS = 365
BACKDATE = datetime.timedelta(minutes=5)  # clocks a little behind still accept a new cert
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
# A name in a SPIFFE path: a host id (DNS name) or a person's or script's name.
NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")


class CertRole(enum.Enum):
    """What a certificate's SPIFFE path says its holder is."""

    ADMIN = "admin"
    READER = "reader"
    AGENT = "agent"
    CONTROLLER = "controller"


CLIENT_ONLY = frozenset({CertRole.ADMIN, CertRole.READER})
USAGE_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
               ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}


class PkiError(ValueError):
    """A bad name, an unreadable CA, a certificate that is not what was asked for."""


def check_name(name: str, what: str = "--name") -> str:
    if not NAME.fullmatch(name):
        raise PkiError(f"{what} {name!r}: 1..253 letters, digits, '.', '_' or '-', starting "
                       "and ending with a letter or digit")
    return name


def spiffe_id(role: CertRole, name: str) -> str:
    """``spiffe://vrc/{role}/{name}``: the identity a certificate carries."""
    return f"{SPIFFE_PREFIX}{role.value}/{check_name(name)}"


def parse_spiffe_id(identity: str) -> tuple[CertRole, str] | None:
    """(role, name) of a vrc SPIFFE ID; None for anything else (another trust domain,
    another path shape, an unknown role)."""
    if not identity.startswith(SPIFFE_PREFIX):
        return None
    role_text, sep, name = identity[len(SPIFFE_PREFIX):].partition("/")
    if not sep or not NAME.fullmatch(name):
        return None
    try:
        return CertRole(role_text), name
    except ValueError:
        return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, PEM."""

    cert: bytes
    key: bytes
    identity: str

    def write(self, directory: Path, name: str) -> CertFiles:
        """``DIR/NAME.crt`` (0644) and ``DIR/NAME.key`` (0600)."""
        files = CertFiles(directory / f"{name}.crt", directory / f"{name}.key")
        write_atomic(files.key, self.key, 0o600)
        write_atomic(files.cert, self.cert, 0o644)
        return files


@dataclass(frozen=True, slots=True)
class CertFiles:
    cert: Path
    key: Path


@dataclass(slots=True)
class CertificateAuthority:
    """A CA certificate and its key; issues the certificates of one vrc cluster."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str = "vrc CA", days: int = CA_DAYS) -> CertificateAuthority:
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """The CA in ``DIR/ca.crt`` and ``DIR/ca.key``; PkiError naming what is wrong."""
        base = Path(directory)
        try:
            cert = x509.load_pem_x509_certificate((base / CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((base / CA_KEY).read_bytes(), None)
        except OSError as error:
            raise PkiError(f"--ca {base}: cannot read {error.filename}: "
                           f"{error.strerror}") from None
        except (ValueError, TypeError):
            raise PkiError(f"--ca {base}: {CA_CERT} and {CA_KEY} must be a PEM certificate "
                           "and an unencrypted PEM key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"--ca {base}: {CA_KEY} is not an ECDSA key (vrc certs init-ca "
                           "makes one)")
        if not _same_public_key(cert, key):
            raise PkiError(f"--ca {base}: {CA_KEY} is not the key of {CA_CERT}")
        return cls(cert, key)

    def write(self, directory: str | os.PathLike[str]) -> CertFiles:
        """``DIR/ca.crt`` (0644) and ``DIR/ca.key`` (0600); the directory is made 0700."""
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = CertFiles(base / CA_CERT, base / CA_KEY)
        write_atomic(files.key, key_pem(self.key), 0o600)
        write_atomic(files.cert, cert_pem(self.cert), 0o644)
        return files

    @property
    def pem(self) -> bytes:
        return cert_pem(self.cert)

    def issue(self, role: CertRole, name: str, *, dns: Sequence[str] = (),
              ips: Sequence[str] = (), days: int = CERT_DAYS,
              not_before: datetime.datetime | None = None,
              not_after: datetime.datetime | None = None) -> Issued:
        """A certificate for ``role``/``name`` signed by this CA.

        SANs: the URI ``spiffe://vrc/{role}/{name}``, then the DNS names
        (an agent's host id is always one) and IP addresses. Admin and reader
        certificates are for clients only; agent and controller ones for both
        ends. ``not_before``/``not_after`` override the validity (tests make
        expired certificates with them).
        """
        identity = spiffe_id(role, name)
        names = list(dict.fromkeys([name, *dns] if role is CertRole.AGENT else dns))
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity)]
        sans += [x509.DNSName(check_dns(d)) for d in names]
        sans += [x509.IPAddress(parse_ip(a)) for a in ips]
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if role not in CLIENT_ONLY:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        key = _new_key()
        now = _now()
        start = not_before or now - BACKDATE
        end = not_after or now + datetime.timedelta(days=days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        f"{role.value}/{name}"[:64])]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=False, crl_sign=False,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256()))
        return Issued(cert_pem(cert), key_pem(key), identity)


def check_dns(name: str) -> str:
    labels = name.split(".")
    if not name or len(name) > 253 or not all(
            re.fullmatch(r"[A-Za-z0-9*](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", label)
            for label in labels):
        raise PkiError(f"--dns {name!r}: not a DNS name")
    return name


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise PkiError(f"--ip {text!r}: not an IP address") from None


# --- reading certificates -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What a certificate says, for ``vrc certs show`` and checks."""

    identity: str  # the vrc SPIFFE ID, else the first URI SAN, else "cn:..."
    role: CertRole | None
    uris: tuple[str, ...]
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str  # SHA-256 of the DER, hex
    is_ca: bool = False
    usages: tuple[str, ...] = field(default=())


def describe(pem: bytes) -> CertInfo:
    """The first certificate in ``pem``; PkiError if there is none."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise PkiError("not a PEM certificate") from None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        uris, dns, ips = (), (), ()
    try:
        is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usages = tuple(USAGE_NAMES.get(oid, oid.dotted_string) for oid in eku)
    except x509.ExtensionNotFound:
        usages = ()
    ours = next((u for u in uris if parse_spiffe_id(u) is not None), None)
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    identity = ours or (uris[0] if uris else f"cn:{common[0].value!s}" if common else "")
    parsed = parse_spiffe_id(ours) if ours else None
    return CertInfo(
        identity=identity, role=parsed[0] if parsed else None, uris=uris, dns=dns, ips=ips,
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        fingerprint=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        is_ca=is_ca, usages=usages)


def _spki(public: Any) -> bytes:
    data: bytes = public.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def _same_public_key(cert: x509.Certificate, key: Any) -> bool:
    return _spki(cert.public_key()) == _spki(key.public_key())


def pair_matches(cert: bytes, key: bytes) -> bool:
    """The private key in ``key`` belongs to the first certificate in ``cert`` (both PEM)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert)
        private = serialization.load_pem_private_key(key, None)
    except (ValueError, TypeError):
        return False
    return _same_public_key(certificate, private)


# --- a throw-away PKI for one machine ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevPki:
    """Where :func:`make_dev_pki` put everything: give each component its files."""

    directory: Path
    ca: Path  # the CA certificate every component trusts (--tls-ca)
    controller: CertFiles
    admin: CertFiles
    agents: dict[str, CertFiles]
    reader: CertFiles | None = None

    def flags(self, files: CertFiles) -> list[str]:
        """The shared TLS flags for a component holding ``files``."""
        return ["--tls-cert", str(files.cert), "--tls-key", str(files.key),
                "--tls-ca", str(self.ca)]

    def controller_flags(self) -> list[str]:
        return self.flags(self.controller)

    def agent_flags(self, host: str) -> list[str]:
        return self.flags(self.agents[host])

    def admin_flags(self) -> list[str]:
        return self.flags(self.admin)


def make_dev_pki(directory: str | os.PathLike[str], agents: Sequence[str], *,
                 controller: str = "controller", admin: str = "admin",
                 reader: str | None = None,
                 server_names: Sequence[str] = ("localhost",),
                 server_ips: Sequence[str] = ("127.0.0.1", "::1"),
                 days: int = 30) -> DevPki:
    """A new CA in ``DIR/ca`` and one certificate per component in ``DIR``.

    ``DIR/controller.{crt,key}`` (DNS ``server_names`` and ``controller``, IPs
    ``server_ips``), ``DIR/agent-HOST.{crt,key}`` per agent host (DNS HOST and
    ``server_names``, IPs ``server_ips``: its Agent API can be dialled on
    loopback), ``DIR/admin.{crt,key}`` for the CLI, and a reader when asked.
    The CA key stays in ``DIR/ca/ca.key`` (0600) so more can be issued with
    ``vrc certs issue --ca DIR/ca``. Everything is replaced if it exists.
    """
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base, 0o700)
    ca = CertificateAuthority.create("vrc throw-away CA", days=days)
    ca_files = ca.write(base / "ca")
    made_controller = ca.issue(CertRole.CONTROLLER, controller,
                               dns=[controller, *server_names], ips=server_ips,
                               days=days).write(base, "controller")
    made_admin = ca.issue(CertRole.ADMIN, admin, days=days).write(base, "admin")
    made_reader = (ca.issue(CertRole.READER, reader, days=days).write(base, "reader")
                   if reader else None)
    made_agents = {host: ca.issue(CertRole.AGENT, host, dns=server_names, ips=server_ips,
                                  days=days).write(base, f"agent-{host}")
                   for host in agents}
    return DevPki(base, ca_files.cert, made_controller, made_admin, made_agents, made_reader)

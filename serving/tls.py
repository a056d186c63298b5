"""TLS on every vrc gRPC link: one flag set, server credentials that reload, client channels.

``vrc``, ``vrc-agent`` and ``vrc-controller`` take the same flags
(:func:`add_tls_arguments`), each with an environment variable:

=====================  ======================  ===========================================
flag                   env                     what
=====================  ======================  ===========================================
``--tls-cert FILE``    ``VRC_TLS_CERT``        this component's certificate (PEM chain)
``--tls-key FILE``     ``VRC_TLS_KEY``         its private key (PEM)
``--tls-ca FILE``      ``VRC_TLS_CA``          the CA that signs every vrc certificate: it
                                               verifies clients (servers) and servers
                                               (clients)
``--tls-server-name``  ``VRC_TLS_SERVER_NAME``  clients: the name the server's certificate
                                               must carry, when it is not the host dialled
=====================  ======================  ===========================================

Servers serve every TCP address with **mutual** TLS once a pair is given: a
client must present a certificate signed by ``--tls-ca``. A pair without a CA
is refused unless ``--tls-no-client-auth`` says so explicitly (any client may
then connect, and is trusted as an admin: insecure). Unix sockets are never
TLS: their 0600 mode is the authentication (docs/security.md).

Rotation: a server re-reads its files when they change (checked at every TLS
handshake, a ``stat`` of three files) and new connections get the new pair;
connections already open keep theirs, so streams survive. A half-written
pair (a certificate whose key does not match yet) is ignored until the pair
matches again. Clients read their files whenever they make a channel, so a
reconnect presents the new pair. File contents never reach a log line: only
paths, identities and fingerprints do.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from serving import pki

ENV_CERT = "VRC_TLS_CERT"
ENV_KEY = "VRC_TLS_KEY"
ENV_CA = "VRC_TLS_CA"
ENV_SERVER_NAME = "VRC_TLS_SERVER_NAME"

_log = logging.getLogger("vrc.tls")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """The TLS files of one component (any may be None: not given)."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    server_name: str | None = None
    client_auth: bool = True  # servers: require a client certificate signed by ``ca``

    def __post_init__(self) -> None:
        if self.cert is None and self.key is not None:
            raise ValueError("--tls-key needs --tls-cert")
        if self.cert is not None and self.key is None:
            raise ValueError("--tls-cert needs --tls-key")

    @property
    def has_pair(self) -> bool:
        return self.cert is not None and self.key is not None

    @property
    def configured(self) -> bool:
        return self.has_pair or self.ca is not None

    def server_side(self) -> TlsConfig | None:
        """The config to serve with, or None (no pair: TCP stays plaintext, local only).

        ValueError when clients could not be verified and nobody said that is fine.
        """
        if not self.has_pair:
            if not self.client_auth:
                raise ValueError("--tls-no-client-auth needs --tls-cert and --tls-key")
            return None
        if self.ca is None and self.client_auth:
            raise ValueError(
                "--tls-cert/--tls-key without --tls-ca: clients could not be verified; give "
                "--tls-ca for mutual TLS, or --tls-no-client-auth to let any client connect "
                "(insecure: it is then trusted as an admin)")
        return self

    def client_side(self) -> TlsConfig | None:
        """The config to dial with, or None (plaintext)."""
        return self if self.configured else None

    def check_readable(self) -> None:
        """Every file given can be read and the pair matches (ValueError naming the flag)."""
        if self.has_pair:
            assert self.cert is not None and self.key is not None
            cert = read_file("--tls-cert", self.cert)
            key = read_file("--tls-key", self.key)
            if not pki.pair_matches(cert, key):
                raise ValueError(f"--tls-cert {self.cert} and --tls-key {self.key}: the key "
                                 "is not the certificate's (or either is not PEM)")
        ca = read_file("--tls-ca", self.ca) if self.ca else None
        if ca is not None:
            try:
                pki.describe(ca)
            except pki.PkiError:
                raise ValueError(f"--tls-ca {self.ca}: not a PEM certificate") from None


def read_file(flag: str, path: str) -> bytes:
    """A file a flag names; ValueError naming the flag (never the content) when it fails."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ValueError(f"{flag} {path}: cannot read: {error.strerror}") from None


# --- flags --------------------------------------------------------------------------------


def add_tls_arguments(parser: argparse.ArgumentParser, *, server: bool,
                      client: bool) -> None:
    """The shared TLS flags; ``server`` adds --tls-no-client-auth (and the deprecated
    --tls-client-ca), ``client`` adds --tls-server-name."""
    env = os.environ.get
    parser.add_argument("--tls-cert", default=env(ENV_CERT), metavar="FILE",
                        help=f"this component's certificate, PEM (env {ENV_CERT}); "
                             "TCP addresses are then served with mutual TLS")
    parser.add_argument("--tls-key", default=env(ENV_KEY), metavar="FILE",
                        help=f"its private key, PEM (env {ENV_KEY})")
    parser.add_argument("--tls-ca", default=env(ENV_CA), metavar="FILE",
                        help=f"the CA that signs vrc certificates, PEM (env {ENV_CA}): "
                             "verifies clients and servers")
    if client:
        parser.add_argument("--tls-server-name", default=env(ENV_SERVER_NAME), metavar="NAME",
                            help="the name the server's certificate must carry when it is not "
                                 f"the host dialled (env {ENV_SERVER_NAME})")
    if server:
        parser.add_argument("--tls-no-client-auth", action="store_true",
                            help="serve TLS without asking clients for a certificate: any "
                                 "client may connect and is trusted as an admin (insecure)")
        parser.add_argument("--tls-client-ca", default=None, metavar="FILE",
                            help=argparse.SUPPRESS)  # deprecated: --tls-ca


def tls_from_args(args: argparse.Namespace, *, warn: Callable[[str], Any] | None = None
                  ) -> TlsConfig:
    """The TLS config the flags describe (ValueError naming the flag when they disagree)."""
    ca = args.tls_ca
    legacy = getattr(args, "tls_client_ca", None)
    if legacy is not None:
        if ca is not None and ca != legacy:
            raise ValueError("--tls-client-ca is the old name of --tls-ca: give one of them")
        ca = legacy
        if warn is not None:
            warn("--tls-client-ca is deprecated: use --tls-ca (the same file)")
    return TlsConfig(cert=args.tls_cert, key=args.tls_key, ca=ca,
                     server_name=getattr(args, "tls_server_name", None),
                     client_auth=not getattr(args, "tls_no_client_auth", False))


# --- servers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Loaded:
    signature: tuple[Any, ...]
    config: grpc.ServerCertificateConfiguration
    identity: str
    fingerprint: str


def _signature(paths: Sequence[str]) -> tuple[Any, ...]:
    stats = [os.stat(path) for path in paths]
    return tuple((s.st_ino, s.st_dev, s.st_mtime_ns, s.st_size) for s in stats)


class ServerCredentials:
    """The server side of one TLS config: grpc credentials per bound port, each of which
    asks :meth:`_current` at every handshake and switches to a changed pair."""

    def __init__(self, tls: TlsConfig, *, log: Any = None) -> None:
        if not tls.has_pair:
            raise ValueError("server TLS needs --tls-cert and --tls-key")
        self.tls = tls
        self.log = log if log is not None else _log
        self._lock = threading.Lock()
        self._paths = [p for p in (tls.cert, tls.key, tls.ca) if p is not None]
        tls.check_readable()  # ValueError naming the flag, before any stat
        self._loaded = self._load(_signature(self._paths))
        self._refused: tuple[Any, ...] | None = None
        self.reloads = 0

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate in use (for logs and tests)."""
        return self._loaded.fingerprint

    @property
    def identity(self) -> str:
        return self._loaded.identity

    def _load(self, signature: tuple[Any, ...]) -> _Loaded:
        assert self.tls.cert is not None and self.tls.key is not None
        cert = read_file("--tls-cert", self.tls.cert)
        key = read_file("--tls-key", self.tls.key)
        ca = read_file("--tls-ca", self.tls.ca) if self.tls.ca else None
        if not pki.pair_matches(cert, key):
            raise ValueError(f"--tls-cert {self.tls.cert} and --tls-key {self.tls.key}: the "
                             "key is not the certificate's")
        info = pki.describe(cert)
        config = grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)
        return _Loaded(signature, config, info.identity, info.fingerprint)

    def _current(self) -> _Loaded:
        """The pair to hand out now: re-read if the files changed and the new pair is whole;
        otherwise the last good one (a refusal is logged once per state of the files)."""
        with self._lock:
            try:
                signature = _signature(self._paths)
            except OSError as error:
                self._refuse(("missing", error.filename), f"{error.filename}: {error.strerror}")
                return self._loaded
            if signature == self._loaded.signature:
                return self._loaded
            try:
                loaded = self._load(signature)
            except (ValueError, pki.PkiError) as error:
                self._refuse(signature, str(error))
                return self._loaded
            self._loaded = loaded
            self._refused = None
            self.reloads += 1
        self.log.info(f"TLS certificate reloaded, new connections use it: {loaded.identity} "
                      f"(sha256 {loaded.fingerprint[:16]})")
        return loaded

    def _refuse(self, state: tuple[Any, ...], why: str) -> None:
        if self._refused == state:
            return
        self._refused = state
        self.log.warning(f"TLS files changed but are not usable yet, keeping the old pair: {why}")

    def for_port(self) -> grpc.ServerCredentials:
        """Credentials for one bound port (grpc's fetcher state is per port)."""
        seen = [self._loaded.signature]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            try:
                loaded = self._current()
            except Exception:  # never let a reload problem break a handshake
                return None
            if loaded.signature == seen[0]:
                return None
            seen[0] = loaded.signature
            return loaded.config

        # grpc's stub types say the fetcher never returns None; grpc itself documents None
        # as "no change", which is what it returns between rotations.
        fetcher: Callable[[], Any] = fetch
        return grpc.dynamic_ssl_server_credentials(
            self._loaded.config, fetcher, require_client_authentication=self.tls.client_auth)


# --- clients ------------------------------------------------------------------------------


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """Client credentials from the files as they are now (a new channel re-reads them)."""
    return grpc.ssl_channel_credentials(
        root_certificates=read_file("--tls-ca", tls.ca) if tls.ca else None,
        private_key=read_file("--tls-key", tls.key) if tls.key else None,
        certificate_chain=read_file("--tls-cert", tls.cert) if tls.cert else None)


UNIX_TLS = "unix+tls:"


def dial(target: str, tls: TlsConfig | None, *,
         options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A channel to ``target``: a Unix socket in plaintext (its mode is the authentication),
    ``unix+tls:PATH`` and anything else with TLS when ``tls`` is configured, plaintext
    otherwise. (grpc checks a Unix socket's server certificate against ``localhost``
    unless ``--tls-server-name`` names another.)"""
    opts = list(options)
    if target.startswith(UNIX_TLS):
        if tls is None or not tls.configured:
            raise ValueError(f"{target}: a unix+tls: target needs --tls-ca (and a client "
                             "certificate)")
        target = "unix:" + target[len(UNIX_TLS):]
        if not tls.server_name:  # grpc's authority for a socket is its path
            opts.append(("grpc.ssl_target_name_override", "localhost"))
    elif target.startswith("unix:") or tls is None or not tls.configured:
        return grpc.insecure_channel(target, options=opts)
    if tls.server_name:
        opts.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, channel_credentials(tls), options=opts)

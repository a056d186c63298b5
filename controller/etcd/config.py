"""Where etcd is and how to talk to it: endpoints, TLS files, credentials.

``--etcd`` takes a comma-separated list of client URLs (``http://H:P``,
``https://H:P``, or a bare ``H:P`` meaning ``http``). TLS is on for every
endpoint as soon as one URL is ``https`` or ``--etcd-cacert`` is given; a
client certificate needs its key. Every problem is a ``ValueError`` naming the
flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc

from serving.server import is_ascii_number, read_file

DEFAULT_TIMEOUT = 5.0  # seconds for one unary etcd request


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One etcd client URL."""

    host: str
    port: int
    secure: bool = False

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.netloc}"


def parse_endpoints(text: str, flag: str = "--etcd") -> tuple[Endpoint, ...]:
    """``URL[,URL...]`` into endpoints; ValueError naming ``flag`` and the bad URL."""
    endpoints: list[Endpoint] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ValueError(f"{flag} {text!r}: an empty URL in the list")
        endpoints.append(_parse_one(item, flag))
    return tuple(dict.fromkeys(endpoints))


def _parse_one(item: str, flag: str) -> Endpoint:
    url = item if "://" in item else f"http://{item}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{flag} {item!r}: the scheme must be http or https")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{flag} {item!r}: expected SCHEME://HOST:PORT and nothing more")
    host = parts.hostname or ""
    port_text = parts.netloc.rpartition(":")[2] if ":" in parts.netloc.rpartition("]")[2] else ""
    if not host:
        raise ValueError(f"{flag} {item!r}: no host")
    if not is_ascii_number(port_text) or not 0 < int(port_text) <= 65535:
        raise ValueError(f"{flag} {item!r}: the port must be 1..65535")
    return Endpoint(host, int(port_text), parts.scheme == "https")


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    """Everything needed to open connections to one etcd cluster."""

    endpoints: tuple[Endpoint, ...]
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    user: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("--etcd: at least one endpoint")
        if (self.cert is None) != (self.key is None):
            raise ValueError("--etcd-cert and --etcd-key go together")
        if (self.user is None) != (self.password is None):
            raise ValueError("--etcd-user and --etcd-password go together")
        if self.timeout <= 0:
            raise ValueError(f"etcd request timeout {self.timeout}: must be more than 0")

    @property
    def secure(self) -> bool:
        return self.cacert is not None or any(e.secure for e in self.endpoints)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials for every endpoint, or None for plaintext."""
        if not self.secure:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=read_file("--etcd-cacert", self.cacert) if self.cacert else None,
            private_key=read_file("--etcd-key", self.key) if self.key else None,
            certificate_chain=read_file("--etcd-cert", self.cert) if self.cert else None)

    def describe(self) -> str:
        """The endpoints for messages (never a credential)."""
        return ",".join(e.url for e in self.endpoints)

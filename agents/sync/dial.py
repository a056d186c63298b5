"""Dialling the controller: the target, TLS, keepalive pings.

The access rule mirrors the servers' (:mod:`serving.server`): a Unix
socket or a loopback address needs nothing; any other address needs TLS
(``--controller-ca``, with ``--controller-cert``/``--controller-key`` for
mutual TLS) or an explicit ``--controller-insecure``.

Keepalive: the channel pings the controller every ``keepalive_time`` seconds,
also while the stream is idle, and drops the connection when a ping is not
answered within ``keepalive_timeout`` — so a controller that vanished
without closing the TCP connection (a crashed host, a partition) is noticed
and the agent redials instead of waiting forever. The controller's server
permits pings that often (``controller.sync`` server options).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from serving.server import ListenAddress, parse_listen

MAX_MESSAGE = 64 * 1024 * 1024  # a snapshot chunk is far smaller; never the limit


@dataclass(frozen=True, slots=True)
class Tls:
    ca: str | None = None       # verifies the controller (None: the system roots)
    cert: str | None = None     # the agent's client certificate (mutual TLS)
    key: str | None = None
    server_name: str | None = None  # expected name in the controller's certificate


def parse_target(target: str) -> ListenAddress:
    """``unix:PATH`` or ``HOST:PORT``; ValueError naming ``--controller``."""
    return parse_listen(target, "--controller")


def split_targets(target: str) -> list[str]:
    """``--controller`` may name several replicas, comma-separated; each redial takes the
    next (so a reconnect reaches any replica that is up)."""
    targets = [part.strip() for part in target.split(",") if part.strip()]
    if not targets:
        raise ValueError(f"--controller {target!r}: no address")
    return targets


def check_targets(target: str, tls: Tls | None, insecure: bool) -> list[str]:
    """Every address of ``--controller``, checked (ValueError naming the flag)."""
    targets = split_targets(target)
    for one in targets:
        check_target(one, tls, insecure)
    return targets


def check_target(target: str, tls: Tls | None, insecure: bool) -> ListenAddress:
    address = parse_target(target)
    if tls is None and not address.is_local and not insecure:
        raise ValueError(
            f"--controller {target} is not on this host: give --controller-ca (TLS; "
            "--controller-cert and --controller-key for mutual TLS) or --controller-insecure")
    if tls is not None and (tls.cert is None) != (tls.key is None):
        raise ValueError("--controller-cert and --controller-key go together")
    return address


def _read(flag: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ValueError(f"{flag} {path}: cannot read: {error.strerror}") from None


def channel_options(keepalive_time: float,
                    keepalive_timeout: float) -> list[tuple[str, int | str]]:
    return [
        ("grpc.keepalive_time_ms", int(keepalive_time * 1000)),
        ("grpc.keepalive_timeout_ms", int(keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]


def open_channel(target: str, *, tls: Tls | None = None, insecure: bool = False,
                 keepalive_time: float = 10.0, keepalive_timeout: float = 5.0) -> grpc.Channel:
    """A new channel to the controller (one per session: our backoff, not grpc's, decides
    when to redial)."""
    address = check_target(target, tls, insecure)
    options = channel_options(keepalive_time, keepalive_timeout)
    if tls is None:
        return grpc.insecure_channel(address.target(), options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read("--controller-ca", tls.ca),
        private_key=_read("--controller-key", tls.key),
        certificate_chain=_read("--controller-cert", tls.cert))
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(address.target(), credentials, options=options)

"""Dialling the controller: the target, TLS, keepalive pings.

TLS comes from the flags every vrc component shares (:mod:`serving.tls`):
``--tls-ca`` verifies the controller, ``--tls-cert``/``--tls-key`` are this
host's agent certificate (``spiffe://vrc/agent/HOST``: the controller lets it
Sync as HOST only). The access rule mirrors the servers' (:mod:`serving.server`):
a Unix socket (plaintext: its mode is the authentication; ``unix+tls:PATH``
for mutual TLS over one) or a loopback address needs nothing; any other
address needs TLS or an explicit ``--controller-insecure``. Each session
dials a new channel, which reads the certificate files again: a rotated pair
is used from the next reconnect on.

Keepalive: the channel pings the controller every ``keepalive_time`` seconds,
also while the stream is idle, and drops the connection when a ping is not
answered within ``keepalive_timeout`` — so a controller that vanished
without closing the TCP connection (a crashed host, a partition) is noticed
and the agent redials instead of waiting forever. The controller's server
permits pings that often (``controller.sync`` server options).
"""

from __future__ import annotations

import grpc

from serving.server import ListenAddress, parse_listen
from serving.tls import TlsConfig, dial

MAX_MESSAGE = 64 * 1024 * 1024  # a snapshot chunk is far smaller; never the limit


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


def check_targets(target: str, tls: TlsConfig | None, insecure: bool) -> list[str]:
    """Every address of ``--controller``, checked (ValueError naming the flag)."""
    targets = split_targets(target)
    for one in targets:
        check_target(one, tls, insecure)
    return targets


def check_target(target: str, tls: TlsConfig | None, insecure: bool) -> ListenAddress:
    address = parse_target(target)
    secured = tls is not None and tls.configured
    if not secured and not address.is_local and not insecure:
        raise ValueError(
            f"--controller {target} is not on this host: give --tls-ca (and this host's "
            "agent certificate, --tls-cert and --tls-key) or --controller-insecure")
    if address.tls and not secured:
        raise ValueError(f"--controller {target}: a unix+tls: address needs --tls-ca, "
                         "--tls-cert and --tls-key")
    return address


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


def open_channel(target: str, *, tls: TlsConfig | None = None, insecure: bool = False,
                 keepalive_time: float = 10.0, keepalive_timeout: float = 5.0) -> grpc.Channel:
    """A new channel to the controller (one per session: our backoff, not grpc's, decides
    when to redial; the TLS files are read now)."""
    address = check_target(target, tls, insecure)
    options = channel_options(keepalive_time, keepalive_timeout)
    plain = address.is_unix and not address.tls
    return dial(address.spelled(), None if plain else tls, options=options)

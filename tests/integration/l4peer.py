"""TCP and UDP end points for the traffic tests, run inside a namespace.

``python3 l4peer.py MODE ARGS...`` prints one JSON object on stdout and
exits. Every socket operation has a timeout and every loop a bound, so a
broken path makes the peer fail in seconds, never hang:

* ``tcp-sink PORT TIMEOUT``: accept one connection, read to EOF, print the
  byte count and the SHA-256 of what arrived;
* ``tcp-source ADDR PORT NBYTES SEED TIMEOUT``: connect, send ``NBYTES`` of
  a pseudo-random stream made from ``SEED``, close, print its count and
  SHA-256 (the sink's must match: every byte checked);
* ``udp-echo PORT SECONDS``: send every datagram back to where it came from
  until ``SECONDS`` have passed;
* ``udp-probe ADDR PORT SIZES TIMEOUT [SEGMENT]``: for each size (a comma
  list) send one datagram with a size-specific pattern and wait for its echo
  (three tries); print which sizes came back intact. With ``SEGMENT`` the
  datagrams go out with ``UDP_SEGMENT`` (UDP GSO): one send of a buffer the
  kernel cuts into datagrams of ``SEGMENT`` bytes, each echoed on its own;
* ``udp-order-sink PORT COUNT SECONDS`` / ``udp-order-source ADDR PORT COUNT``:
  a burst of numbered datagrams (some sent as GSO super-datagrams) and the
  numbers in the order they arrived.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sys
import time

CHUNK = 1 << 16
SOL_UDP = 17
UDP_SEGMENT = 103


def stream(nbytes: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(nbytes)


def tcp_sink(port: int, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    with socket.create_server(("0.0.0.0", port)) as server:
        server.settimeout(timeout)
        print(json.dumps({"listening": port}), flush=True)
        conn, _peer = server.accept()
        digest = hashlib.sha256()
        count = 0
        with conn:
            while time.monotonic() < deadline:
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                data = conn.recv(CHUNK)
                if not data:
                    break
                digest.update(data)
                count += len(data)
    return {"bytes": count, "sha256": digest.hexdigest()}


def tcp_source(addr: str, port: int, nbytes: int, seed: int, timeout: float) -> dict[str, object]:
    data = stream(nbytes, seed)
    started = time.monotonic()
    with socket.create_connection((addr, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # the sink closes once it read everything
    elapsed = time.monotonic() - started
    return {"bytes": nbytes, "sha256": hashlib.sha256(data).hexdigest(), "seconds": elapsed}


def udp_echo(port: int, seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    echoed = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        print(json.dumps({"listening": port}), flush=True)
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data, peer = sock.recvfrom(CHUNK)
            except TimeoutError:
                break
            sock.sendto(data, peer)
            echoed += 1
    return {"echoed": echoed}


def pattern(size: int) -> bytes:
    return bytes((size * 7 + i * 13) & 0xFF for i in range(size))


def udp_probe(addr: str, port: int, sizes: list[int], timeout: float,
              segment: int = 0) -> dict[str, object]:
    intact: list[int] = []
    wrong: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        if segment:
            sock.setsockopt(SOL_UDP, UDP_SEGMENT, segment)
        for size in sizes:
            want = [pattern(size)[i : i + segment] for i in range(0, size, segment)] if segment \
                else [pattern(size)]
            for _attempt in range(3):
                sock.sendto(pattern(size), (addr, port))
                got: list[bytes] = []
                try:
                    while len(got) < len(want):
                        data, _peer = sock.recvfrom(CHUNK)
                        got.append(data)
                except TimeoutError:
                    pass
                if sorted(got) == sorted(want):
                    intact.append(size)
                    break
                if got:
                    wrong.append(size)
    return {"intact": intact, "wrong": wrong}


def udp_order_sink(port: int, count: int, seconds: float) -> dict[str, object]:
    """Receive up to ``count`` numbered datagrams; report their numbers in arrival order."""
    deadline = time.monotonic() + seconds
    seen: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("0.0.0.0", port))
        print(json.dumps({"listening": port}), flush=True)
        while len(seen) < count and time.monotonic() < deadline:
            sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                data = sock.recv(CHUNK)
            except TimeoutError:
                if seen:
                    break  # the burst is over
                continue
            seen.append(int.from_bytes(data[:4], "big"))
    return {"seen": seen}


def udp_order_source(addr: str, port: int, count: int) -> dict[str, object]:
    """A burst of ``count`` numbered datagrams, as fast as the socket takes them; every
    fifth send is a UDP GSO super-datagram of three numbered 1200-byte segments (larger
    than a receive slot: it reaches the agent by the copy path, between ring frames)."""
    number = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gso:
        gso.setsockopt(SOL_UDP, UDP_SEGMENT, 1200)
        while number < count:
            if number % 5 == 0 and number + 3 <= count:
                gso.sendto(b"".join(n.to_bytes(4, "big") + bytes(1196)
                                    for n in range(number, number + 3)), (addr, port))
                number += 3
            else:
                plain.sendto(number.to_bytes(4, "big") + bytes(60), (addr, port))
                number += 1
    return {"sent": number}


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
    if mode == "tcp-sink":
        result = tcp_sink(int(args[0]), float(args[1]))
    elif mode == "tcp-source":
        result = tcp_source(args[0], int(args[1]), int(args[2]), int(args[3]), float(args[4]))
    elif mode == "udp-echo":
        result = udp_echo(int(args[0]), float(args[1]))
    elif mode == "udp-probe":
        segment = int(args[4]) if len(args) > 4 else 0
        result = udp_probe(args[0], int(args[1]), [int(s) for s in args[2].split(",")],
                           float(args[3]), segment)
    elif mode == "udp-order-sink":
        result = udp_order_sink(int(args[0]), int(args[1]), float(args[2]))
    elif mode == "udp-order-source":
        result = udp_order_source(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

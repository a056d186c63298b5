"""UDP and TCP flows for the multipath test, run inside a test namespace.

``python3 flows.py sink SECONDS``: serve UDP port 5000 and TCP port 6000 and,
until a line (or EOF) on stdin or SECONDS at most, record on which
interface every arriving IPv4 datagram of those flows came in (an
``AF_PACKET`` socket sees each with its ifindex); then print
``{"flows": [[proto, sport, ifname], ...]}``, one entry per datagram.

``python3 flows.py send DST UDP_PORTS TCP_PORTS COUNT``: from each listed
UDP source port send COUNT datagrams to DST:5000, and over a TCP
connection from each listed TCP source port send COUNT segments to
DST:6000 (pausing so they leave as separate segments).

Every loop is bounded in count and time; traffic goes only to DST, an
address in the test's own namespaces.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time

UDP_PORT, TCP_PORT = 5000, 6000
ETH_P_IP = 0x0800


def sink(seconds: float) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", UDP_PORT))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", TCP_PORT))
    tcp.listen(64)
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    seen: list[tuple[int, int, str]] = []
    open_conns: list[socket.socket] = []
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sys.stdin, udp, tcp, sniff, *open_conns], [], [], 0.05)
        if sys.stdin in readable:
            break
        for sock in readable:
            if sock is sniff:
                packet, address = sniff.recvfrom(65535)
                if len(packet) < 24 or packet[9] not in (6, 17):
                    continue
                header = (packet[0] & 0x0F) * 4
                sport = int.from_bytes(packet[header : header + 2], "big")
                dport = int.from_bytes(packet[header + 2 : header + 4], "big")
                if dport in (UDP_PORT, TCP_PORT):
                    seen.append((packet[9], sport, address[0]))  # (ifname, proto, ...)
            elif sock is udp:
                udp.recv(65535)
            elif sock is tcp:
                conn, _ = tcp.accept()
                open_conns.append(conn)
            elif not sock.recv(65535):
                open_conns.remove(sock)
                sock.close()
    print(json.dumps({"flows": seen}), flush=True)


def send(dst: str, udp_ports: list[int], tcp_ports: list[int], count: int) -> None:
    udps = []
    for port in udp_ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))
        udps.append(sock)
    tcps = []
    for port in tcp_ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("0.0.0.0", port))
        sock.settimeout(10)
        sock.connect((dst, TCP_PORT))
        tcps.append(sock)
    for round_ in range(count):
        for sock in udps:
            sock.sendto(b"u%05d" % round_, (dst, UDP_PORT))
        for sock in tcps:
            sock.sendall(b"t%05d" % round_)
        time.sleep(0.02)
    for sock in tcps:
        sock.close()
    for sock in udps:
        sock.close()
    print(json.dumps({"sent": count * (len(udps) + len(tcps))}), flush=True)


def _ports(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p]


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        sink(float(sys.argv[2]))
    else:
        send(sys.argv[2], _ports(sys.argv[3]), _ports(sys.argv[4]), int(sys.argv[5]))

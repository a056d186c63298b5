"""What authorization and the audit trail cost a Controller call, against raw etcd.

One etcd and one in-process controller listening on a Unix socket (the peer is
``local``: no role lookup) and on loopback TCP with mutual TLS (a certificate:
the role is one etcd read per call). It times, best of ``--rounds`` rounds of
``--calls`` calls each:

* a one-key etcd read on the controller's own client (the reference: what the
  role lookup adds at least);
* ``ListHosts`` over the Unix socket, and over mutual TLS as an admin;
* ``AddHost`` + ``RemoveHost`` pairs over the Unix socket and over mutual TLS
  (each write's transaction also carries its audit record), against the same
  pair of etcd puts in raw transactions.

and prints microseconds per call and the ratios TLS/Unix. A TLS channel is
opened once per series: handshakes are a per-connection cost, not per call.

Run:  python3 bench/security.py [--calls N] [--rounds R]
Timing never decides a test; this only prints figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.daemon import Controller, ControllerOptions
from controller.etcd import EtcdConfig, Txn
from serving.logs import configure_logging, get_logger
from serving.pki import DevPki, make_dev_pki
from serving.tls import TlsConfig, dial
from tests.etcd import running_etcd
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc


def best(series: Callable[[int], None], calls: int, rounds: int) -> float:
    """Best microseconds per call over ``rounds`` runs of ``calls`` calls."""
    times = []
    for round_index in range(rounds):
        start = time.perf_counter()
        series(round_index)
        times.append((time.perf_counter() - start) / calls * 1e6)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    configure_logging("text", "warning")
    directory = Path(tempfile.mkdtemp(prefix="vrc-bench-"))
    try:
        dev = make_dev_pki(directory / "pki", ["h1"])
        with running_etcd() as etcd:
            options = ControllerOptions(
                listen=f"unix:{directory}/c.sock", also_listen=("127.0.0.1:0",),
                data_dir=str(directory), etcd=EtcdConfig((etcd.endpoint,)), replica_id="bench",
                store_root=f"/b{uuid.uuid4().hex[:8]}/v1/",
                tls=TlsConfig(str(dev.controller.cert), str(dev.controller.key), str(dev.ca)),
                write_rate=1e6, write_burst=1_000_000)
            controller = Controller(options, log=get_logger("bench"))
            controller.start()
            try:
                report(controller, dev, args.calls, args.rounds)
            finally:
                controller.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def report(controller: Controller, dev: DevPki, calls: int, rounds: int) -> None:
    assert controller.store is not None
    store = controller.store
    admin = TlsConfig(str(dev.admin.cert), str(dev.admin.key), str(dev.ca))
    unix = dial(controller.addresses[0], None)
    tls = dial(controller.addresses[1], admin)
    local_stub = controller_pb2_grpc.ControllerStub(unix)
    tls_stub = controller_pb2_grpc.ControllerStub(tls)
    for stub in (local_stub, tls_stub):  # connect (and handshake) before timing
        stub.ListHosts(pb.ListHostsRequest(), timeout=10)
    key = store.keys.access("spiffe://vrc/admin/admin")

    def etcd_read(_: int) -> None:
        for _ in range(calls):
            store.etcd.get(key)

    def lists(stub: controller_pb2_grpc.ControllerStub) -> Callable[[int], None]:
        def run(_: int) -> None:
            for _ in range(calls):
                stub.ListHosts(pb.ListHostsRequest(), timeout=10)
        return run

    def writes(stub: controller_pb2_grpc.ControllerStub, tag: str) -> Callable[[int], None]:
        def run(round_index: int) -> None:
            for index in range(calls // 2):
                host = f"{tag}-{round_index}-{index}"
                stub.AddHost(pb.AddHostRequest(id=host), timeout=10)
                stub.RemoveHost(pb.RemoveHostRequest(id=host), timeout=10)
        return run

    def raw_puts(round_index: int) -> None:
        for index in range(calls // 2):
            name = f"{store.keys.root}raw/{round_index}-{index}"
            store.etcd.txn(Txn().require_absent(name).put(name, b"{}"))
            store.etcd.txn(Txn().delete(name))

    figures = {
        "etcd one-key read": best(etcd_read, calls, rounds),
        "ListHosts, Unix socket (local)": best(lists(local_stub), calls, rounds),
        "ListHosts, mutual TLS (admin)": best(lists(tls_stub), calls, rounds),
        "raw etcd txn (put or delete)": best(raw_puts, calls, rounds),
        "write, Unix socket (audited)": best(writes(local_stub, "u"), calls, rounds),
        "write, mutual TLS (audited)": best(writes(tls_stub, "t"), calls, rounds),
    }
    for name, micros in figures.items():
        print(f"{name:34s} {micros:9.1f} us/call")
    ratios = (("ListHosts TLS/Unix", "ListHosts, mutual TLS (admin)",
               "ListHosts, Unix socket (local)"),
              ("write TLS/Unix", "write, mutual TLS (audited)", "write, Unix socket (audited)"),
              ("write (audited, Unix) / raw etcd txn", "write, Unix socket (audited)",
               "raw etcd txn (put or delete)"))
    for label, over, under in ratios:
        print(f"ratio {label}: {figures[over] / figures[under]:.2f}")
    unix.close()
    tls.close()


if __name__ == "__main__":
    sys.exit(main())

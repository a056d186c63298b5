"""Real ``vrc-controller`` processes for tests: started from this checkout, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.netns import script_argv

START_TIMEOUT = 40.0


@dataclass
class ControllerProcess:
    process: subprocess.Popen[bytes]
    target: str  # grpc target: unix:PATH
    directory: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal our process (by PID), wait for it; SIGKILL if it does not go."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return int(self.process.returncode)


def serving(target: str, timeout: float = 2.0) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def start_controller(directory: Path, *, etcd: str | None = None, args: Sequence[str] = (),
                     env: dict[str, str] | None = None, listen: bool = True
                     ) -> ControllerProcess:
    """Start one controller and wait until its health check answers SERVING."""
    socket = directory / "c.sock"
    argv = script_argv("vrc-controller")
    if listen:
        argv += ["--listen", f"unix:{socket}", "--data-dir", str(directory)]
    if etcd:
        argv += ["--etcd", etcd]
    argv += list(args)
    log = directory / "controller.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                   env={**os.environ, **(env or {})})
    target = f"unix:{socket}" if listen else ""
    started = ControllerProcess(process, target, directory, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"vrc-controller exited {process.returncode} at start:\n"
                                 f"{started.log_text()[-3000:]}")
        if target and socket.exists() and serving(target):
            return started
        if not target and "controller started" in started.log_text():
            return started
        if time.monotonic() > deadline:
            started.stop(signal.SIGKILL)
            raise AssertionError(f"vrc-controller not serving after {START_TIMEOUT:g} s:\n"
                                 f"{started.log_text()[-3000:]}")
        time.sleep(0.05)


@contextlib.contextmanager
def controllers(count: int, etcd: str, args: Sequence[str] = ()
                ) -> Iterator[list[ControllerProcess]]:
    """``count`` controllers on one etcd, each in a directory of its own; all stopped after."""
    made: list[ControllerProcess] = []
    directories = [Path(tempfile.mkdtemp(prefix="vrc-c-")) for _ in range(count)]
    try:
        for directory in directories:
            made.append(start_controller(directory, etcd=etcd, args=args))
        yield made
    finally:
        for controller in made:
            controller.stop()
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)

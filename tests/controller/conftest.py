"""Fixtures for the controller tests: a real etcd (never a mock) and stores on it.

``etcd`` is one etcd for the whole session (tests isolate themselves with a
store root of their own); ``private_etcd`` is a fresh one for a test that
kills, restarts or compacts it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from controller.daemon import Controller, ControllerOptions
from controller.etcd import EtcdConfig
from controller.store import Store
from serving.logs import get_logger
from tests.etcd import TestEtcd, running_etcd
from vrc.v1 import controller_pb2_grpc


@pytest.fixture(scope="session")
def etcd() -> Iterator[TestEtcd]:
    with running_etcd() as server:
        yield server


@pytest.fixture
def private_etcd() -> Iterator[TestEtcd]:
    with running_etcd() as server:
        yield server


@pytest.fixture
def store(etcd: TestEtcd) -> Store:
    return etcd.store()


@contextlib.contextmanager
def make_controller(etcd: TestEtcd) -> Iterator[Controller]:
    """A real controller in this process, on a Unix socket, with a store root of its own."""
    directory = Path(tempfile.mkdtemp(prefix="vrc-api-"))
    options = ControllerOptions(
        listen=f"unix:{directory}/c.sock", data_dir=str(directory),
        etcd=EtcdConfig((etcd.endpoint,)), replica_id="test",
        store_root=f"/t{uuid.uuid4().hex[:12]}/v1/", max_watch_streams=4,
        max_watch_streams_per_client=2)
    running = Controller(options, log=get_logger("test.controller"))
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def controller(etcd: TestEtcd) -> Iterator[Controller]:
    with make_controller(etcd) as running:
        yield running


@pytest.fixture
def stub(controller: Controller) -> Iterator[controller_pb2_grpc.ControllerStub]:
    with grpc.insecure_channel(controller.address) as channel:
        yield controller_pb2_grpc.ControllerStub(channel)

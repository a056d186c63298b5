"""Fixtures for the controller tests: a real etcd (never a mock) and stores on it.

``etcd`` is one etcd for the whole session (tests isolate themselves with a
store root of their own); ``private_etcd`` is a fresh one for a test that
kills, restarts or compacts it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.store import Store
from tests.etcd import TestEtcd, running_etcd


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

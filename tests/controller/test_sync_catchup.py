"""The pipeline's catch-up: watch batches that piled up come out as one, in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from controller.etcd import Batch, Change, ChangeKind
from controller.sync.catchup import coalesced, merge


def batch(revision: int, *, resync: bool = False) -> Batch:
    return Batch((Change(ChangeKind.PUT, f"/k/{revision}", b"v", revision),), revision,
                 resync=resync)


def test_batches_that_arrive_while_the_consumer_is_busy_come_out_as_one() -> None:
    release = threading.Event()
    sent = threading.Event()

    def source() -> Iterator[Batch]:
        yield batch(1)
        release.wait(10)  # the consumer is busy with the first one meanwhile
        yield batch(2)
        yield batch(3, resync=True)
        yield batch(4)
        sent.set()

    out = coalesced(source())
    first = next(out)
    assert first.revision == 1
    release.set()
    assert sent.wait(10)
    caught_up = next(out)
    assert [c.key for c in caught_up.changes] == ["/k/2", "/k/3", "/k/4"]
    assert caught_up.revision == 4 and caught_up.resync
    assert list(out) == []


def test_a_consumer_that_keeps_up_gets_every_batch_as_it_was() -> None:
    gate = threading.Semaphore(0)
    taken = threading.Semaphore(0)

    def source() -> Iterator[Batch]:
        for revision in range(1, 5):
            gate.acquire()
            yield batch(revision)
            taken.acquire()

    out = coalesced(source())
    seen = []
    for _ in range(4):
        gate.release()
        got = next(out)
        seen.append(got)
        taken.release()
    assert [b.revision for b in seen] == [1, 2, 3, 4]
    assert all(len(b.changes) == 1 and not b.resync for b in seen)


def test_an_error_of_the_source_is_raised_after_the_batches_before_it() -> None:
    def source() -> Iterator[Batch]:
        yield batch(1)
        raise RuntimeError("the watch broke")

    out = coalesced(source())
    assert next(out).revision == 1
    with pytest.raises(RuntimeError, match="the watch broke"):
        next(out)


def test_merge_keeps_a_single_batch_as_it_is() -> None:
    one = batch(7)
    assert merge([one]) is one

"""Watch batches that piled up while the pipeline was busy are stepped as one.

Typha's lesson again: a control plane that falls behind should catch up in
one step, not replay every intermediate state. The pipeline steps each
watch batch through the whole slice computation (routes included), so when
a burst arrives — a thousand agents registering at once, each a host
record, a live record and a status record — stepping them one by one costs
O(batches x cluster). :func:`coalesced` reads the watch on a thread of its
own and hands the pipeline everything that arrived since its last step as
one batch: the changes in etcd's order, the revision of the last one, a
resync if any of them was. The result is the same (the pipeline is
level-triggered: its slices are a function of the state), only the versions
in between are skipped — an agent is sent the state at the newest revision,
which is what it would have converged to anyway.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

from controller.etcd import Batch

_END = object()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def coalesced(batches: Iterable[Batch], *, name: str = "vrc-sync-watch") -> Iterator[Batch]:
    """The batches of ``batches``, those waiting merged into one (see the module docstring).

    The source is read on a daemon thread; it ends when the source ends (close
    the watcher to stop it). An exception raised by the source is raised here,
    after the batches that came before it.
    """
    waiting: queue.SimpleQueue[object] = queue.SimpleQueue()

    def read() -> None:
        try:
            for batch in batches:
                waiting.put(batch)
        except BaseException as error:  # handed to the consumer, which raises it
            waiting.put(_Failed(error))
        else:
            waiting.put(_END)

    threading.Thread(target=read, name=name, daemon=True).start()
    while True:
        group: list[Batch] = []
        item = waiting.get()
        while isinstance(item, Batch):
            group.append(item)
            try:
                item = waiting.get_nowait()
            except queue.Empty:
                item = None
                break
        if group:
            yield merge(group)
        if item is _END:
            return
        if isinstance(item, _Failed):
            raise item.error


def merge(group: list[Batch]) -> Batch:
    """One batch with the changes of ``group`` in order (``group`` in revision order)."""
    if len(group) == 1:
        return group[0]
    return Batch(tuple(change for batch in group for change in batch.changes),
                 group[-1].revision, resync=any(batch.resync for batch in group))

"""Stop signals for a foreground run: Ctrl-C, SIGTERM and SIGHUP end it through its clean-up.

:func:`install` makes each of them raise :class:`StopRequested` in the main
thread, so the ``finally`` of whatever is running removes what was made.
Two places must not be cut in half: between starting a process and writing
it down (:func:`uninterrupted` holds the signal until the block ends; a
blocked signal mask would be inherited by the child, so it is done in
Python), and the clean-up itself (:func:`cleaning_up`: further signals only
say that it is under way).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(Exception):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_state = threading.local()
_pending: list[int] = []


def _depth() -> int:
    return int(getattr(_state, "depth", 0))


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    if _depth() > 0:
        _pending.append(signum)
        return
    raise StopRequested(signum)


def install() -> None:
    """From now on a stop signal raises :class:`StopRequested` (main thread only)."""
    _pending.clear()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """A block a stop signal does not cut: one that arrives is raised when it ends."""
    _state.depth = _depth() + 1
    try:
        yield
    finally:
        _state.depth = _depth() - 1
        if _depth() == 0 and _pending and threading.current_thread() is threading.main_thread():
            signum = _pending.pop(0)
            _pending.clear()
            if signal.getsignal(signum) is _raise_stop:
                raise StopRequested(signum)


def cleaning_up(message: str = "cleaning up, one moment") -> None:
    """From now on stop signals only print ``message`` (once): the clean-up runs whole."""
    told: list[bool] = []

    def note(_signum: int, _frame: FrameType | None) -> None:
        if not told:
            told.append(True)
            print(f"\n{message}", file=sys.stderr, flush=True)

    for signum in STOP_SIGNALS:
        signal.signal(signum, note)


def restore() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT
                      else signal.default_int_handler)

"""``--state-dir``: the last applied slice on disk.

One file, ``sync-state.pb``: an ``AgentSyncState`` message (the items the
agent applied from the controller, the version, the host id). Written
atomically — a temporary file in the same directory, ``fsync``, ``rename``
over the old one, ``fsync`` of the directory — so a crash at any moment
leaves either the old file or the new one, never a torn one.

A file that cannot be read is moved aside (``sync-state.pb.bad``) and the
agent starts without it, saying so: the controller holds the desired state,
and a corrupt cache must not keep a host from forwarding.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from agents.sync.items import Item, Spec
from agents.sync.wire import BadItem, item_from_pb, item_to_pb
from vrc.v1 import controller_pb2

STATE_FILE = "sync-state.pb"
FORMAT = 1


class StateFileError(Exception):
    """The state file exists and cannot be used; the text says why."""


@dataclass(frozen=True, slots=True)
class SavedState:
    version: int
    items: dict[str, Item]
    controller: str = ""
    saved_at: float = 0.0


def state_path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / STATE_FILE


def save(directory: str | os.PathLike[str], host_id: str, version: int,
         items: list[tuple[str, Spec, str]], controller: str = "") -> Path:
    """Write the state atomically; returns the file's path."""
    path = state_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    message = controller_pb2.AgentSyncState(
        format=FORMAT, host_id=host_id, version=version, controller=controller,
        saved_at=time.time(), items=[item_to_pb(key, spec, fp) for key, spec, fp in items])
    data = message.SerializeToString()
    temp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(directory: str | os.PathLike[str], host_id: str) -> SavedState | None:
    """The saved state; None if there is none. :class:`StateFileError` if unusable."""
    path = state_path(directory)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateFileError(f"{path}: cannot read: {error.strerror}") from None
    message = controller_pb2.AgentSyncState()
    try:
        message.ParseFromString(data)
    except DecodeError:
        raise StateFileError(f"{path}: not a vrc state file (cannot be parsed)") from None
    if message.format != FORMAT:
        raise StateFileError(f"{path}: format {message.format}, expected {FORMAT}")
    if message.host_id != host_id:
        raise StateFileError(f"{path}: saved by host {message.host_id!r}, this is {host_id!r}")
    items: dict[str, Item] = {}
    for raw in message.items:
        try:
            item = item_from_pb(raw)
        except BadItem as error:
            raise StateFileError(f"{path}: item {raw.key!r}: {error}") from None
        items[item.key] = item
    return SavedState(message.version, items, message.controller, message.saved_at)


def set_aside(directory: str | os.PathLike[str]) -> Path | None:
    """Move an unusable state file out of the way (kept for a post-mortem)."""
    path = state_path(directory)
    if not path.exists():
        return None
    bad = path.with_name(STATE_FILE + ".bad")
    os.replace(path, bad)
    return bad

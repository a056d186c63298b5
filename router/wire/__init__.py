"""Header views over bytes, one module per header (smoltcp ``wire/`` style).

Each module has its field offsets as constants, precompiled ``struct.Struct``
objects, a length check and a parse/emit pair. Nothing on the packet path
allocates an object per field. A parse failure raises :class:`Malformed`,
which the input path turns into a counted drop with a reason.
"""

from __future__ import annotations


class Malformed(ValueError):
    """A header failed its length or sanity check; ``reason`` names the check."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

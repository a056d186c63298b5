"""Numbers typed by people or sent by programs: ASCII digits only (every command
line and API edge of vrc parses numbers here).

``str.isdigit`` is true for superscripts (``"²"``) that ``int`` then refuses,
and ``int`` itself takes Arabic-Indic and other Unicode digits, surrounding
blanks, a sign and ``_`` separators. None of that belongs in a prefix
length, an MTU, a port or a count: every number vrc parses from text
goes through :func:`ascii_int`, which takes ``[0-9]+`` and nothing else, with
a bound on the digit count so a megabyte of digits is refused before ``int``
sees it (Python refuses over 4,300 digits with a ``ValueError`` of its own).
The test is :func:`serving.server.is_ascii_number`, shared with the
listen and metrics addresses of both daemons.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from serving.server import is_ascii_number

MAX_DIGITS = 20  # 2**64 has 20 digits
MAX_SECONDS = 1_000_000.0  # 11.6 days; grpc's deadline arithmetic overflows far above
_SECONDS = re.compile(r"[0-9]{1,7}(\.[0-9]{0,9})?|\.[0-9]{1,9}")


def ascii_int(text: str) -> int | None:
    """``text`` as a non-negative integer if it is 1-20 ASCII digits, else None."""
    if not isinstance(text, str) or not is_ascii_number(text, MAX_DIGITS):
        return None
    return int(text)


def in_range(text: str, low: int, high: int) -> int | None:
    """``ascii_int(text)`` when it lies in ``low..high``, else None."""
    value = ascii_int(text)
    return value if value is not None and low <= value <= high else None


def argparse_count(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: ASCII digits in ``low..high`` (no upper bound for None).

    argparse names the flag in the usage error; the message names the value
    and the range.
    """

    def parse(text: str) -> int:
        value = ascii_int(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (digits 0-9)")
        if value < low or (high is not None and value > high):
            bound = f"{low} or more" if high is None else f"{low}..{high}"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {bound}")
        return value

    parse.__name__ = "whole number"
    return parse


def positive_seconds(text: str) -> float:
    """An argparse ``type``: seconds as ``10``, ``2.5`` or ``.5``, more than 0 and at
    most :data:`MAX_SECONDS` (``float`` alone takes ``inf``, ``1e20``, Arabic-Indic digits)."""
    if _SECONDS.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (digits 0-9 and one '.')")
    value = float(text)
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 and at most "
                                         f"{MAX_SECONDS:.0f}")
    return value

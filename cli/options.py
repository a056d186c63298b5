"""What every command group of the CLI shares: the user-error type and argparse helpers.

Numbers are ASCII digits only: ``int`` and ``float`` also take Unicode digits
(Arabic-Indic, fullwidth), blanks, a sign, ``_`` separators, ``inf`` and
``nan``, none of which belongs in an MTU, a count or a timeout (the agent's
own parsers say the same, ``agents/numbers.py``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1
MAX_TIMEOUT = 1_000_000.0  # seconds (11.6 days); grpc's deadline overflows far above
_WHOLE = re.compile(r"[0-9]{1,20}")
_SECONDS = re.compile(r"[0-9]{1,7}(\.[0-9]{0,9})?|\.[0-9]{1,9}")


class CliError(Exception):
    """A problem the user can fix (an unreadable TLS file): ``vrc: message``, exit 1."""


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``low..high``, else a usage error that says so."""

    def parse(text: str) -> int:
        if _WHOLE.fullmatch(text) is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (digits 0-9)")
        value = int(text)
        if not low <= value <= high:
            bound = f"{low} or more" if high >= UINT32_MAX else f"{low}..{high}"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {bound}")
        return value

    parse.__name__ = "whole number"
    return parse


def positive_seconds(text: str) -> float:
    """Seconds as ``10``, ``2.5`` or ``.5``: more than 0, at most :data:`MAX_TIMEOUT`."""
    if _SECONDS.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (digits 0-9 and one '.')")
    value = float(text)
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 and at most "
                                         f"{MAX_TIMEOUT:.0f}")
    return value


def output_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("-o", "--output", choices=("table", "json"), default=default,
                        help="output format (default: table)")


def subcommand(parent: Any, name: str, func: str, help: str,
               common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A subcommand parser that runs ``Commands.<func>``, with the flags every command takes."""
    sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help,
                                                    parents=[common])
    sub.set_defaults(func=func)
    return sub

"""What every command group of the CLI shares: the user-error type and argparse helpers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1


class CliError(Exception):
    """A problem the user can fix (an unreadable TLS file): ``vrc: message``, exit 1."""


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``low..high``, else a usage error that says so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            bound = f"{low} or more" if high >= UINT32_MAX else f"{low}..{high}"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {bound}")
        return value

    parse.__name__ = "whole number"
    return parse


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
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

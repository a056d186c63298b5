"""What every command group of the CLI shares: the user-error type and argparse helpers.

Numbers are ASCII digits only: ``int`` and ``float`` also take Unicode digits
(Arabic-Indic, fullwidth), blanks, a sign, ``_`` separators, ``inf`` and
``nan``, none of which belongs in an MTU, a count or a timeout (the agent's
parsers, ``serving/numbers.py``, where these live).
"""

from __future__ import annotations

import argparse
from typing import Any

from serving.numbers import MAX_SECONDS as MAX_TIMEOUT
from serving.numbers import argparse_count as whole_number
from serving.numbers import positive_seconds

__all__ = ["MAX_TIMEOUT", "CliError", "output_flag", "positive_seconds", "subcommand",
           "whole_number"]

UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1


class CliError(Exception):
    """A problem the user can fix (an unreadable TLS file): ``vrc: message``, exit 1."""




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

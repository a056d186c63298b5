"""What every command group of the CLI shares: the user-error type and argparse helpers.

Numbers are ASCII digits only: ``int`` and ``float`` also take Unicode digits
(Arabic-Indic, fullwidth), blanks, a sign, ``_`` separators, ``inf`` and
``nan``, none of which belongs in an MTU, a count or a timeout (the agent's
parsers, ``serving/numbers.py``, where these live).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import grpc

from serving.numbers import MAX_SECONDS as MAX_TIMEOUT
from serving.numbers import argparse_count as whole_number
from serving.numbers import positive_seconds
from serving.tls import dial, tls_from_args

__all__ = ["MAX_TIMEOUT", "CliError", "first_command", "open_channel", "output_flag",
           "positive_seconds", "subcommand", "uses_tls", "whole_number"]

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


def open_channel(target: str, args: argparse.Namespace) -> grpc.Channel:
    """A channel to ``target`` with the shared TLS flags: a Unix socket in plaintext, any
    other target with (mutual) TLS when ``--tls-ca``/``--tls-cert`` are given."""
    try:
        tls = tls_from_args(args)
        client = tls.client_side()
        if client is not None and not target.startswith("unix:"):  # unix+tls: too
            client.check_readable()
        return dial(target, client)
    except ValueError as error:
        raise CliError(str(error)) from None


def uses_tls(target: str, args: argparse.Namespace) -> bool:
    """The channel to ``target`` is TLS (for the advice in error messages)."""
    return (target.startswith("unix+tls:") or not target.startswith("unix:")) and bool(
        args.tls_ca or args.tls_cert)


def first_command(argv: Sequence[str], flags_with_values: Sequence[str]) -> str | None:
    """The first word of ``argv`` that is not a flag or a flag's value."""
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in flags_with_values
            continue
        return word
    return None

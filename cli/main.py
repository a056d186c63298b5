"""``vrc``: the entry point — the root parser, the channel, errors and exit codes.

    vrc [--agent unix:/run/vrc/agent.sock | HOST:PORT] [--tls-ca F --tls-cert F --tls-key F]
        [-o table|json] COMMAND ...
    vrc certs ...       (certificates: cli/certs.py)

The TLS flags (and ``VRC_TLS_CA``, ``VRC_TLS_CERT``, ``VRC_TLS_KEY``) are the
ones every vrc component shares (:mod:`serving.tls`): a TCP target is dialled
with mutual TLS when they are given, a Unix socket always in plaintext.

Tables for people, ``-o json`` for programs (streams print one JSON object a
line). A gRPC error prints as ``vrc: STATUS: message`` on stderr and exits 1,
never a traceback; usage errors exit 2 (argparse). The commands themselves
live in :mod:`cli.agent` (the agent half of the CLI); with ``--controller``
(or ``$VRC_CONTROLLER``) the whole command line goes to :mod:`cli.cluster`;
``vrc up`` and ``vrc down`` (a cluster on this machine) to :mod:`cli.up`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import grpc

from cli import agent, certs, cluster
from cli.options import CliError, first_command, output_flag, positive_seconds, uses_tls
from cli.options import open_channel as open_tls_channel
from cli.output import Output
from serving.tls import add_tls_arguments
from vrc.v1 import agent_pb2_grpc

DEFAULT_AGENT = "unix:/run/vrc/agent.sock"
GLOBAL_FLAGS_WITH_VALUES = ("--agent", "--controller", "--tls-ca", "--tls-cert", "--tls-key",
                            "--tls-server-name", "--timeout", "-o", "--output")


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to the agent (:func:`cli.options.open_channel`)."""
    return open_tls_channel(args.agent, args)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: "-o json" after the subcommand wins, its absence does not reset it.
    output_flag(common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="vrc", description="Talk to one vrc agent. 'vrc COMMAND -h' explains a command.",
        epilog="examples: vrc ifaces; vrc alias add eth1 10.0.0.1/24; vrc -o json routes; "
               "vrc capture eth1 -c 100 -w eth1.pcap. Errors exit 1, usage errors 2. "
               "'vrc up' runs a whole cluster on this machine (vrc up -h), 'vrc down' "
               "removes what a run left.")
    parser.add_argument("--agent", default=DEFAULT_AGENT, metavar="unix:PATH|HOST:PORT",
                        help=f"the agent's API address (default {DEFAULT_AGENT})")
    add_tls_arguments(parser, server=False, client=True)
    parser.add_argument("--timeout", type=positive_seconds, default=10.0, metavar="SECONDS",
                        help="seconds to wait for a reply (default 10)")
    parser.add_argument("--controller", metavar="unix:PATH|HOST:PORT",
                        help="talk to the cluster controller instead (env VRC_CONTROLLER): "
                             "'vrc --controller TARGET -h' lists its commands")
    output_flag(parser, "table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    agent.add_commands(commands, common)
    return parser


LAB_COMMANDS = ("up", "down")  # vrc up / vrc down: cli/up.py, neither agent nor controller


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in LAB_COMMANDS:
        from cli import up  # the lab (namespaces, processes) loads only for these

        return up.main(words)
    if first_command(words, GLOBAL_FLAGS_WITH_VALUES) == "certs":
        index = words.index("certs")
        return certs.main(words[:index] + words[index + 1:])
    if cluster.wants_controller(words):
        return cluster.main(argv)
    args = build_parser().parse_args(argv)
    if args.func == "query" and args.kind == "broadcast" and not args.iface:
        args.command_parser.error("broadcast needs IFACE (the interface to ask about)")
    out = Output(args.output, sys.stdout)
    commands: agent.Commands | None = None
    try:
        with open_channel(args) as channel:
            commands = agent.Commands(agent_pb2_grpc.AgentStub(channel), out, args.timeout)
            getattr(commands, args.func)(args)
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.CANCELLED:
            return 0  # we cancelled it (-c N reached)
        streaming = commands is not None and commands.streaming
        print(f"vrc: {error.code().name}: {rpc_error_text(error, args, streaming)}",
              file=sys.stderr)
        return 1
    except CliError as error:
        print(f"vrc: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


def rpc_error_text(error: Any, args: argparse.Namespace, streaming: bool = False) -> str:
    """The status message; for a call that never reached the agent, say so and why.

    Engine refusals carry ``vrc-errno`` in their trailers; an UNAVAILABLE or
    DEADLINE_EXCEEDED without it is the connection, not the router. A stream
    that was running (``streaming``) and goes UNAVAILABLE lost an agent that
    stopped, which is not the same advice as one never reached.
    """
    details = str(error.details() or "")
    trailers = dict(error.trailing_metadata() or ())
    if "vrc-errno" in trailers:
        return details
    code = error.code()
    if code is grpc.StatusCode.UNAVAILABLE:
        cause = details.rstrip("]").rsplit(": ", 1)[-1].strip() or "unavailable"
        if streaming:
            return f"the agent at {args.agent} went away ({cause}); did vrc-agent stop?"
        if uses_tls(args.agent, args):
            return (f"cannot reach the agent at {args.agent}: {cause} (is vrc-agent running "
                    "there? with TLS: does --tls-ca sign its certificate, and --tls-cert come "
                    "from its CA and is it still valid?)")
        return (f"cannot reach the agent at {args.agent}: {cause} "
                "(is vrc-agent running there? --agent names another)")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from the agent at {args.agent} within {args.timeout:g} s (--timeout)"
    return details


if __name__ == "__main__":
    sys.exit(main())

"""``vrc --controller T --host H COMMAND``: look at one host's agent through the controller.

The controller knows where every agent's API listens (the endpoint its
agent registered in its Sync hello). ``--host H`` with one of the agent's
inspection commands (``ifaces``, ``routes``, ``arp``, ``capture``,
``events``) asks the controller for host H's endpoint and runs the agent half
of the CLI (:mod:`cli.agent`) against it, with the same output format,
timeout and TLS flags — so the output is exactly ``vrc --agent ENDPOINT
COMMAND``'s. Configuration goes through the controller, so nothing that
changes an agent is offered this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

INSPECT = ("ifaces", "routes", "arp", "capture", "events")
# the controller half's flags that take a value (anything else before the command is one)
VALUED = {"--controller", "--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name",
          "--timeout", "-o", "--output", "--host"}
PASSED = {"--tls-ca", "--tls-cert", "--tls-key", "--timeout", "-o", "--output"}


@dataclass(slots=True)
class Through:
    """A command line that asks for a host's agent: the host, and the agent's argv
    without ``--agent`` (the caller adds the endpoint)."""

    host: str
    controller_argv: list[str] = field(default_factory=list)  # what reaches the controller
    agent_argv: list[str] = field(default_factory=list)


def split(argv: Sequence[str]) -> Through | None:
    """The command line's parts when it is ``--host H`` with an inspection command; None
    for anything else (the controller's own commands, or no ``--host`` before it)."""
    host = None
    controller: list[str] = []
    passed: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if not arg.startswith("-"):
            break
        name, has_value, value = arg.partition("=")
        if name in VALUED and not has_value:
            if index + 1 >= len(argv):
                return None  # argparse will say what is missing
            value = argv[index + 1]
            index += 1
        index += 1
        if name == "--host":
            host = value
            continue
        controller += [name, value] if name in VALUED else [arg]
        if name in PASSED:
            passed += [name, value]
    if host is None or index >= len(argv) or argv[index] not in INSPECT:
        return None
    return Through(host, controller, [*passed, *argv[index:]])

"""``vrc --controller TARGET``: the cluster half of the CLI (the Controller API).

    vrc --controller unix:/var/lib/vrc-controller/controller.sock [-o table|json] COMMAND ...

``TARGET`` may also come from ``VRC_CONTROLLER``. Commands: ``hosts``, ``host
add|del``, ``alias add|del|ls``, ``prefix add|del|ls``, ``policy same-prefix``,
``watch``, ``status [HOST]`` (:mod:`cli.status`), ``access ls|grant|revoke``,
``whoami``, ``history``; ``--host H ifaces|routes|arp|capture|events`` looks at
host H's agent through the endpoint it registered (:mod:`cli.through`). Writes
print the revision they created and take ``--expected-revision``. TLS: the
shared ``--tls-ca/--tls-cert/--tls-key`` (:mod:`serving.tls`; a Unix socket is
always plaintext). Tables for people, ``-o json`` for scripts (``watch``
prints one JSON object a line). A refusal prints ``vrc: STATUS: message`` on
stderr and exits 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

import grpc

from cli import status as cluster_status
from cli import through
from cli.options import (
    UINT64_MAX,
    CliError,
    output_flag,
    positive_seconds,
    subcommand,
    uses_tls,
    whole_number,
)
from cli.options import open_channel as open_tls_channel
from cli.output import Output
from serving.tls import add_tls_arguments
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc
from vrc.v1 import types_pb2 as tpb

ENV = "VRC_CONTROLLER"
DEFAULT_CONTROLLER = "unix:/var/lib/vrc-controller/controller.sock"
MODES = {"allow": tpb.POLICY_ALLOW, "refuse": tpb.POLICY_REFUSE,
         "multipath": tpb.POLICY_MULTIPATH}
MODE_NAMES = {number: name for name, number in MODES.items()}
ROLES = {pb.CLAIM_ROLE_OWNER: "owner", pb.CLAIM_ROLE_STANDBY: "standby",
         pb.CLAIM_ROLE_DOWN: "down"}


def mode_name(number: int) -> str:
    return MODE_NAMES.get(number, "unspecified")


ACCESS_ROLES = {"admin": pb.ACCESS_ROLE_ADMIN, "reader": pb.ACCESS_ROLE_READER,
                "none": pb.ACCESS_ROLE_NONE}
ACCESS_ROLE_NAMES = {pb.ACCESS_ROLE_ADMIN: "admin", pb.ACCESS_ROLE_READER: "reader",
                     pb.ACCESS_ROLE_AGENT: "agent", pb.ACCESS_ROLE_NONE: "none"}
AGO = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to the controller (:func:`cli.options.open_channel`)."""
    return open_tls_channel(args.controller, args)


def since_time(text: str, now: float | None = None) -> float:
    """``--since``: an age (``90s``, ``15m``, ``2h``, ``7d`` ago), a unix time, or an ISO
    8601 time (UTC unless it says). ASCII digits only."""
    clock = time.time() if now is None else now
    age = re.fullmatch(r"([0-9]{1,9})([smhd])", text)
    if age:
        return max(0.0, clock - float(age.group(1)) * AGO[age.group(2)])
    if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,9})?", text):
        return float(text)
    try:
        moment = datetime.datetime.fromisoformat(text) if text.isascii() else None
    except ValueError:
        moment = None
    if moment is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: an age (15m, 2h, 7d), a unix time or an ISO time (2026-01-31T12:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def time_text(stamp: float) -> str:
    if not stamp:
        return "-"
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def history_lines(entry: pb.HistoryEntry, changes: bool) -> list[str]:
    hosts = f" [{','.join(entry.hosts)}]" if entry.hosts else ""
    lines = [f"#{entry.revision} {time_text(entry.at)} {entry.identity} {entry.operation}: "
             f"{entry.subject}{hosts}"]
    if changes:
        for change in entry.changes:
            lines.append(f"    {change.key}: {change.previous or '(none)'} -> "
                         f"{change.value or '(deleted)'}")
        if entry.omitted:
            lines.append(f"    ... and {entry.omitted} more")
    return lines


class AccessCommands:
    """``access``, ``whoami`` and ``history``: mixed into :class:`ClusterCommands`."""

    stub: controller_pb2_grpc.ControllerStub
    out: Output
    timeout: float
    streaming: bool

    def access_ls(self, args: argparse.Namespace) -> None:
        reply = self.stub.ListAccess(pb.ListAccessRequest(), timeout=self.timeout)
        self.out.listing(list(reply.entries), ("IDENTITY", "ROLE", "SOURCE", "GRANTED BY",
                                               "GRANTED", "REVISION"),
                         lambda e: (e.identity, ACCESS_ROLE_NAMES.get(e.role, "-"), e.source,
                                    e.granted_by or "-", time_text(e.granted_at),
                                    e.revision or "-"))

    def access_grant(self, args: argparse.Namespace) -> None:
        request = pb.GrantAccessRequest(identity=args.identity, role=ACCESS_ROLES[args.role])
        reply = self.stub.GrantAccess(self._expected(request, args), timeout=self.timeout)
        self._written(reply, f"{args.identity}: {args.role}")

    def access_revoke(self, args: argparse.Namespace) -> None:
        request = pb.RevokeAccessRequest(identity=args.identity)
        reply = self.stub.RevokeAccess(self._expected(request, args), timeout=self.timeout)
        self._written(reply, f"{args.identity}: revoked")

    def whoami(self, args: argparse.Namespace) -> None:
        entry = self.stub.WhoAmI(pb.WhoAmIRequest(), timeout=self.timeout)
        self.out.message(entry, f"{entry.identity}: {ACCESS_ROLE_NAMES.get(entry.role, '-')} "
                                f"(from {entry.source})")

    def history(self, args: argparse.Namespace) -> None:
        since = args.since or 0.0
        if args.follow:
            call = self.stub.WatchHistory(pb.WatchHistoryRequest(host=args.host or "",
                                                                 since=since))
            for batch in call:
                self.streaming = True
                for entry in batch.entries:
                    self.out.line(entry, "\n".join(history_lines(entry, args.changes)))
            return
        reply = self.stub.ListHistory(pb.ListHistoryRequest(
            host=args.host or "", since=since, limit=args.limit), timeout=self.timeout)
        for entry in reply.entries:  # JSON: one object a line, as the stream prints them
            self.out.line(entry, "\n".join(history_lines(entry, args.changes)))

    def _expected(self, request: Any, args: argparse.Namespace) -> Any:
        if args.expected_revision is not None:
            request.expected_revision = args.expected_revision
        return request

    def _written(self, reply: pb.WriteResponse, what: str) -> None:
        self.out.message(reply, f"{what} (revision {reply.revision})")


class ClusterCommands(AccessCommands):
    """One method per subcommand; each makes its call and prints the answer."""

    def __init__(self, stub: controller_pb2_grpc.ControllerStub, out: Output,
                 timeout: float) -> None:
        self.stub = stub
        self.out = out
        self.timeout = timeout
        self.streaming = False

    # --- hosts -----------------------------------------------------------------------

    def hosts(self, args: argparse.Namespace) -> None:
        if args.id:
            hosts = [self.stub.GetHost(pb.GetHostRequest(id=args.id), timeout=self.timeout)]
        else:
            hosts = list(self.stub.ListHosts(pb.ListHostsRequest(),
                                             timeout=self.timeout).hosts)
        self.out.listing(hosts, ("HOST", "STATE", "NICS", "AGENT", "CONTROLLER", "REVISION"),
                         lambda h: (h.id, "up" if h.up else "down",
                                    ",".join(n.name for n in h.nics) or "-",
                                    h.agent_endpoint or "-", h.controller or "-", h.revision))

    def host_add(self, args: argparse.Namespace) -> None:
        reply = self.stub.AddHost(self._expected(pb.AddHostRequest(id=args.id), args),
                                  timeout=self.timeout)
        self._written(reply, f"host {args.id} added")

    def host_del(self, args: argparse.Namespace) -> None:
        reply = self.stub.RemoveHost(self._expected(
            pb.RemoveHostRequest(id=args.id, cascade=args.cascade), args), timeout=self.timeout)
        self._written(reply, f"host {args.id} removed")

    # --- aliases ---------------------------------------------------------------------

    def alias_add(self, args: argparse.Namespace) -> None:
        request = pb.PutAliasRequest(alias=pb.Alias(
            host=args.host, ifname=args.iface, address=args.address,
            broadcast=args.broadcast or "", destination=args.dest or ""))
        reply = self.stub.PutAlias(self._expected(request, args), timeout=self.timeout)
        self._written(reply, f"alias {args.address} on {args.host}/{args.iface}")

    def alias_del(self, args: argparse.Namespace) -> None:
        request = pb.DeleteClusterAliasRequest(host=args.host, ifname=args.iface,
                                               address=args.address)
        reply = self.stub.DeleteAlias(self._expected(request, args), timeout=self.timeout)
        self._written(reply, f"alias {args.address} on {args.host}/{args.iface} deleted")

    def alias_ls(self, args: argparse.Namespace) -> None:
        reply = self.stub.ListAliases(pb.ListAliasesRequest(host=args.host or ""),
                                      timeout=self.timeout)
        self.out.listing(list(reply.aliases),
                         ("HOST", "IFACE", "ADDRESS", "BROADCAST", "DESTINATION", "REVISION"),
                         lambda a: (a.host, a.ifname, a.address, a.broadcast or "-",
                                    a.destination or "-", a.revision))

    # --- prefix claims ---------------------------------------------------------------

    def prefix_add(self, args: argparse.Namespace) -> None:
        request = pb.PutPrefixRequest(prefix=args.prefix, host=args.host, ifname=args.iface)
        reply = self.stub.PutPrefix(self._expected(request, args), timeout=self.timeout)
        self._written(reply, f"prefix {args.prefix} claimed by {args.host}/{args.iface}")

    def prefix_del(self, args: argparse.Namespace) -> None:
        request = pb.DeletePrefixRequest(prefix=args.prefix, host=args.host or "",
                                         ifname=args.iface or "")
        reply = self.stub.DeletePrefix(self._expected(request, args), timeout=self.timeout)
        self._written(reply, f"claims of {args.prefix} deleted")

    def prefix_ls(self, args: argparse.Namespace) -> None:
        reply = self.stub.ListPrefixes(pb.ListPrefixesRequest(prefix=args.prefix or ""),
                                       timeout=self.timeout)
        self.out.listing(list(reply.claims), ("PREFIX", "HOST", "IFACE", "ROLE", "REVISION"),
                         lambda c: (c.prefix, c.host, c.ifname, ROLES.get(c.role, "-"),
                                    c.revision))

    # --- policy ----------------------------------------------------------------------

    def policy(self, args: argparse.Namespace) -> None:
        if args.clear and args.mode:
            raise CliError("give a MODE or --clear, not both")
        if args.clear and not args.host:
            raise CliError("--clear removes a host's override: give --host")
        if args.mode or args.clear:
            request = pb.SetClusterPolicyRequest(same_prefix=MODES.get(args.mode or "", 0),
                                                 host=args.host or "", clear=args.clear)
            reply = self.stub.SetPolicy(self._expected(request, args), timeout=self.timeout)
            where = f"host {args.host}" if args.host else "the cluster"
            what = "override cleared" if args.clear else f"same-prefix {args.mode}"
            self._written(reply, f"{where}: {what}")
            return
        policy = self.stub.GetPolicy(pb.GetClusterPolicyRequest(host=args.host or ""),
                                     timeout=self.timeout)
        lines = [f"same-prefix: {mode_name(policy.same_prefix)} (cluster)"]
        lines += [f"  {host}: {mode_name(mode)} (override)"
                  for host, mode in sorted(policy.host_overrides.items())]
        if args.host:
            lines.append(f"{args.host}: {mode_name(policy.effective)} (effective)")
        self.out.message(policy, "\n".join(lines))

    # --- status ----------------------------------------------------------------------

    def status(self, args: argparse.Namespace) -> None:
        cluster_status.show(self.stub, self.out, args.host, self.timeout)

    # --- watch -----------------------------------------------------------------------

    def watch(self, args: argparse.Namespace) -> None:
        call = self.stub.WatchConfig(pb.WatchConfigRequest(after_revision=args.after or 0))
        shown = 0
        for batch in call:
            self.streaming = True
            for change in batch.changes:
                self.out.line(change, change_text(change, batch))
                shown += 1
                if args.count is not None and shown >= args.count:
                    call.cancel()
                    return


def change_text(change: pb.ConfigChange, batch: pb.ConfigBatch) -> str:
    action = "put" if change.action == pb.ConfigChange.ACTION_PUT else "delete"
    kind = change.WhichOneof("record")
    if kind == "host":
        what = f"host {change.host.id}"
    elif kind == "alias":
        a = change.alias
        what = f"alias {a.address} on {a.host}/{a.ifname or '?'}"
    elif kind == "claim":
        what = f"prefix {change.claim.prefix} by {change.claim.host}/{change.claim.ifname}"
    else:
        policy = change.policy
        overrides = ", ".join(f"{h}={mode_name(m) if m else 'cleared'}"
                              for h, m in sorted(policy.host_overrides.items()))
        what = f"policy {overrides}" if overrides else \
            f"policy same-prefix={mode_name(policy.same_prefix)}"
    flags = " (snapshot)" if batch.snapshot else " (resync)" if batch.resync else ""
    return f"#{change.revision} {action} {what}{flags}"


# --- argument parsing -----------------------------------------------------------------------


def _expected_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--expected-revision", type=whole_number(0, UINT64_MAX), metavar="REV",
                        help="write only if the record is still at this revision "
                             "(0: only if it does not exist)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    output_flag(common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="vrc", description="Talk to the vrc cluster controller (--controller or "
                                f"${ENV}). 'vrc --controller T COMMAND -h' explains a command.",
        epilog="examples: vrc --controller unix:/tmp/vrc/controller.sock hosts; "
               "vrc --controller T alias add h1 eth1 10.0.0.1/24; vrc --controller T -o json "
               "prefix ls. Errors exit 1, usage errors 2.")
    parser.add_argument("--controller", default=os.environ.get(ENV) or DEFAULT_CONTROLLER,
                        metavar="unix:PATH|HOST:PORT",
                        help=f"the controller's API address (env {ENV})")
    add_tls_arguments(parser, server=False, client=True)
    parser.add_argument("--timeout", type=positive_seconds, default=10.0, metavar="SECONDS",
                        help="seconds to wait for a reply (default 10)")
    parser.add_argument("--host", dest="through_host", metavar="HOST",
                        help="with " + "|".join(through.INSPECT) + ": run that agent command "
                             "on HOST's agent, at the endpoint it registered")
    output_flag(parser, "table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, func: str, help: str,
                write: bool = False) -> argparse.ArgumentParser:
        sub = subcommand(parent, name, func, help, common)
        if write:
            _expected_flag(sub)
        return sub

    hosts = command(commands, "hosts", "hosts", "list hosts (or show one)")
    hosts.add_argument("id", nargs="?", metavar="HOST", help="only this host")

    host = commands.add_parser("host", help="add or remove a host")
    host_cmds = host.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(host_cmds, "add", "host_add", "add a host ahead of its agent", write=True
            ).add_argument("id", metavar="HOST", help="the host id (a DNS name)")
    host_del = command(host_cmds, "del", "host_del", "remove a host", write=True)
    host_del.add_argument("id", metavar="HOST", help="the host id")
    host_del.add_argument("--cascade", action="store_true",
                          help="also delete its aliases, prefix claims and policy override")

    alias = commands.add_parser("alias", help="address aliases of hosts' interfaces")
    alias_cmds = alias.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = command(alias_cmds, "add", "alias_add", "add or replace an alias", write=True)
    add.add_argument("host", metavar="HOST", help="the host")
    add.add_argument("iface", metavar="IFACE", help="its interface")
    add.add_argument("address", metavar="ADDR/LEN", help="address and prefix length")
    add.add_argument("--broadcast", metavar="A", help="broadcast address (default: derived)")
    add.add_argument("--dest", metavar="A", help="peer of a point-to-point interface")
    delete = command(alias_cmds, "del", "alias_del", "delete an alias", write=True)
    delete.add_argument("host", metavar="HOST", help="the host")
    delete.add_argument("iface", metavar="IFACE", help="its interface")
    delete.add_argument("address", metavar="ADDR", help="the address (/LEN optional)")
    command(alias_cmds, "ls", "alias_ls", "list aliases").add_argument(
        "--host", metavar="HOST", help="only this host")

    prefix = commands.add_parser("prefix", help="cluster prefixes claimed by interfaces")
    prefix_cmds = prefix.add_subparsers(dest="action", required=True, metavar="ACTION")
    padd = command(prefix_cmds, "add", "prefix_add", "claim a prefix for a host's interface",
                   write=True)
    padd.add_argument("prefix", metavar="PREFIX/LEN", help="the prefix, host bits clear")
    padd.add_argument("--host", required=True, metavar="HOST", help="the claiming host")
    padd.add_argument("--iface", required=True, metavar="IFACE", help="its interface")
    pdel = command(prefix_cmds, "del", "prefix_del", "delete claims of a prefix", write=True)
    pdel.add_argument("prefix", metavar="PREFIX/LEN", help="the prefix")
    pdel.add_argument("--host", metavar="HOST", help="only this host's claims")
    pdel.add_argument("--iface", metavar="IFACE", help="only this interface's (needs --host)")
    command(prefix_cmds, "ls", "prefix_ls", "list claims with their roles").add_argument(
        "prefix", nargs="?", metavar="PREFIX/LEN", help="only this prefix")

    policy = commands.add_parser("policy", help="the same-prefix policy")
    policy_cmds = policy.add_subparsers(dest="action", required=True, metavar="POLICY")
    same = command(policy_cmds, "same-prefix", "policy",
                   "show or set the same-prefix policy (cluster-wide or a host's override)",
                   write=True)
    same.add_argument("mode", nargs="?", choices=tuple(MODES),
                      help="the mode to set (omit to show the policy)")
    same.add_argument("--host", metavar="HOST", help="a host's override instead")
    same.add_argument("--clear", action="store_true", help="remove the host's override")

    status = command(commands, "status", "status",
                     "what the agents applied: the fleet, or one host item by item")
    status.add_argument("host", nargs="?", metavar="HOST", help="only this host, every item")

    watch = command(commands, "watch", "watch", "stream configuration changes until Ctrl-C")
    watch.add_argument("--after", type=whole_number(0, UINT64_MAX), metavar="REV",
                       help="changes after this revision (default: a snapshot first)")
    watch.add_argument("-c", "--count", type=whole_number(1, UINT64_MAX), metavar="N",
                       help="stop after N changes")

    access = commands.add_parser("access", help="who may do what (roles of identities)")
    access_cmds = access.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(access_cmds, "ls", "access_ls", "list the bootstrap admins and every grant")
    grant = command(access_cmds, "grant", "access_grant",
                    "give an identity a role (none: deny it)", write=True)
    grant.add_argument("identity", metavar="IDENTITY", help="e.g. spiffe://vrc/reader/bob")
    grant.add_argument("role", choices=tuple(ACCESS_ROLES))
    revoke = command(access_cmds, "revoke", "access_revoke",
                     "remove an identity's grant (and deny the role its certificate names)",
                     write=True)
    revoke.add_argument("identity", metavar="IDENTITY")
    command(commands, "whoami", "whoami", "who the controller says you are, and your role")
    history = command(commands, "history", "history",
                      "the audit trail: who wrote what, when, and what it replaced")
    history.add_argument("--host", metavar="HOST", help="only writes about this host")
    history.add_argument("--since", type=since_time, metavar="TIME",
                         help="only writes since TIME: an age (15m, 2h, 7d), an ISO time or "
                              "a unix time")
    history.add_argument("--limit", type=whole_number(1, 10_000), default=100, metavar="N",
                         help="the newest N (default 100)")
    history.add_argument("--changes", action="store_true",
                         help="also each record's value before and after")
    history.add_argument("-f", "--follow", action="store_true",
                         help="then keep printing new writes until Ctrl-C")
    return parser


def wants_controller(argv: Sequence[str]) -> bool:
    """The command line is for the controller: ``--controller`` given, or ``$VRC_CONTROLLER``
    set and no ``--agent``."""
    flags = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    if "--controller" in flags:
        return True
    return bool(os.environ.get(ENV)) and "--agent" not in flags


def rpc_error_text(error: Any, args: argparse.Namespace, streaming: bool) -> str:
    details = str(error.details() or "")
    if "vrc-reason" in dict(error.trailing_metadata() or ()):
        return details
    code = error.code()
    if code is grpc.StatusCode.UNAVAILABLE and "etcd" not in details:
        cause = details.rstrip("]").rsplit(": ", 1)[-1].strip() or "unavailable"
        if streaming:
            return f"the controller at {args.controller} went away ({cause})"
        if uses_tls(args.controller, args):
            return (f"cannot reach the controller at {args.controller}: {cause} (is "
                    "vrc-controller running there? with TLS: does --tls-ca sign its "
                    "certificate, and is --tls-cert from its CA and still valid?)")
        return (f"cannot reach the controller at {args.controller}: {cause} (is "
                f"vrc-controller running there? --controller or ${ENV} names another)")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return (f"no answer from the controller at {args.controller} within "
                f"{args.timeout:g} s (--timeout)")
    return details


def main(argv: Sequence[str] | None = None) -> int:
    line = list(sys.argv[1:] if argv is None else argv)
    on_host = through.split(line)
    if on_host is not None:
        return run_on_host(on_host)
    args = build_parser().parse_args(line)
    if args.through_host:
        print(f"vrc: --host goes with {', '.join(through.INSPECT)} (the agent's commands); "
              "the cluster's commands take the host as their own argument", file=sys.stderr)
        return 2
    out = Output(args.output, sys.stdout)
    commands: ClusterCommands | None = None
    try:
        with open_channel(args) as channel:
            commands = ClusterCommands(controller_pb2_grpc.ControllerStub(channel), out,
                                       args.timeout)
            getattr(commands, args.func)(args)
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.CANCELLED:
            return 0
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



def run_on_host(on_host: through.Through) -> int:
    """Ask the controller where the host's agent listens, then run the agent command there."""
    args = build_parser().parse_args([*on_host.controller_argv, "hosts", on_host.host])
    try:
        with open_channel(args) as channel:
            host = controller_pb2_grpc.ControllerStub(channel).GetHost(
                pb.GetHostRequest(id=on_host.host), timeout=args.timeout)
    except grpc.RpcError as error:
        print(f"vrc: {error.code().name}: {rpc_error_text(error, args, False)}",
              file=sys.stderr)
        return 1
    except CliError as error:
        print(f"vrc: {error}", file=sys.stderr)
        return 1
    if not host.agent_endpoint:
        print(f"vrc: host {on_host.host} has no registered Agent API endpoint (its agent has "
              "not connected to the controller yet)", file=sys.stderr)
        return 1
    if not host.up:
        print(f"vrc: note: host {on_host.host} is down; trying its last endpoint "
              f"{host.agent_endpoint}", file=sys.stderr)
    from cli import main as agent_main  # the agent half's entry (it imports this module)

    return agent_main.main(["--agent", host.agent_endpoint, *on_host.agent_argv])

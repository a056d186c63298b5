"""``vrc``: the command line for one agent (the agent half of the CLI).

    vrc [--agent unix:/run/vrc/agent.sock | HOST:PORT] [--tls-ca F [--tls-cert F --tls-key F]]
        [-o table|json] COMMAND ...

Tables for people, ``-o json`` for programs (streams print one JSON object a
line). A gRPC error prints as ``vrc: STATUS: message`` on stderr and exits 1,
never a traceback; usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import datetime
import json
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from router.events import EventKind
from router.ng.pcap import PcapWriter
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import agent_pb2_grpc
from vrc.v1 import types_pb2 as tpb

DEFAULT_AGENT = "unix:/run/vrc/agent.sock"
POLICIES = {"allow": tpb.POLICY_ALLOW, "refuse": tpb.POLICY_REFUSE,
            "multipath": tpb.POLICY_MULTIPATH}
QUERIES = {"local-subnet": pb.QUERY_KIND_LOCAL_SUBNET,
           "local-address": pb.QUERY_KIND_LOCAL_ADDRESS,
           "can-forward": pb.QUERY_KIND_CAN_FORWARD,
           "broadcast": pb.QUERY_KIND_BROADCAST}
EVENT_KINDS = tuple(sorted(kind.value for kind in EventKind))
UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1
EPOCH_2001 = 978307200.0  # a capture timestamp after this is UNIX time, else the engine's clock


class CliError(Exception):
    """A problem the user can fix (an unreadable TLS file): ``vrc: message``, exit 1."""


# --- output ------------------------------------------------------------------------------


_INT64_TYPES = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64,
                          FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED64,
                          FieldDescriptor.TYPE_SFIXED64})


def as_dict(message: Message) -> dict[str, Any]:
    """A message as JSON-ready data, with 64-bit integers as numbers.

    The protobuf JSON mapping writes 64-bit integers as strings (for
    JavaScript); people pipe ``vrc -o json`` into jq and compare counters and
    sequence numbers, so they come out as numbers here.
    """
    converted: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    _numbers_for_int64(message, converted)
    return converted


def _numbers_for_int64(message: Message, data: dict[str, Any]) -> None:
    for field in message.DESCRIPTOR.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        repeated = field.is_repeated
        if field.type in _INT64_TYPES:
            data[field.name] = [int(v) for v in value] if repeated else int(value)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            children = getattr(message, field.name)
            for child, child_data in (zip(children, value, strict=True) if repeated
                                      else ((children, value),)):
                _numbers_for_int64(child, child_data)


def table(rows: Iterable[Sequence[object]], headers: Sequence[str]) -> str:
    """Left-aligned columns two spaces apart, like ``ip -br`` or ``netstat -rn``."""
    text = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in text) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in text)


class Output:
    """Where results go, in the format the user asked for."""

    def __init__(self, fmt: str, out: TextIO) -> None:
        self.json = fmt == "json"
        self.out = out

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def message(self, message: Message, text: str) -> None:
        self.print(json.dumps(as_dict(message), indent=2) if self.json else text)

    def listing(self, messages: Sequence[Message], headers: Sequence[str],
                row: Callable[[Any], Sequence[object]]) -> None:
        if self.json:
            self.print(json.dumps([as_dict(m) for m in messages], indent=2))
        else:
            self.print(table((row(m) for m in messages), headers))

    def line(self, message: Message, text: str) -> None:
        """One item of a stream: a JSON line or a text line."""
        self.print(json.dumps(as_dict(message)) if self.json else text)


def address_text(address: tpb.Address) -> str:
    text = f"{address.address}/{address.prefix_len}"
    if address.broadcast:
        text += f" broadcast {address.broadcast}"
    if address.destination:
        text += f" --> {address.destination}"
    return text


def arp_flags(entry: tpb.ArpEntry) -> str:
    names = [n for n, on in (("static", entry.static), ("published", entry.published),
                             ("local", entry.local)) if on]
    return ",".join(names) or "-"


def event_text(event: tpb.Event) -> str:
    where = f" {event.ifname}" if event.ifname else ""
    data = " ".join(f"{k}={v}" for k, v in sorted(event.data.items()))
    return f"#{event.seq} {event.kind}{where} {data}".rstrip()


def timestamp_text(timestamp: float) -> str:
    """Local time of day like tcpdump for UNIX time; seconds as given for the engine's clock."""
    if timestamp < EPOCH_2001:
        return f"{timestamp:.6f}"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S.%f")


# --- frame summaries --------------------------------------------------------------

_ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q"}
_IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 2: "IGMP"}
_AF_NAMES = {2: "IPv4", 24: "IPv6", 28: "IPv6", 30: "IPv6"}


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ipv4(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def ipv4_summary(packet: bytes) -> str:
    if len(packet) < 20:
        return f"IPv4 truncated ({len(packet)} bytes)"
    proto = _IP_PROTOCOLS.get(packet[9], f"proto {packet[9]}")
    return f"IPv4 {_ipv4(packet[12:16])} > {_ipv4(packet[16:20])} {proto} ttl {packet[8]}"


def arp_summary(payload: bytes) -> str:
    if len(payload) < 28:
        return "ARP truncated"
    op = {1: "who-has", 2: "reply"}.get(payload[7], f"op {payload[7]}")
    sender, target = _ipv4(payload[14:18]), _ipv4(payload[24:28])
    if payload[7] == 2:
        return f"ARP reply {sender} is-at {_mac(payload[8:14])}"
    return f"ARP {op} {target} tell {sender}"


def frame_summary(frame: bytes, linktype: int) -> str:
    """A one-line description of a frame, tcpdump-like, without external dissectors."""
    if linktype == 0:
        if len(frame) < 4:
            return "truncated"
        family = struct.unpack("=I", frame[:4])[0]
        family = family if family < 256 else struct.unpack(">I", frame[:4])[0]
        payload = frame[4:]
        return ipv4_summary(payload) if family == 2 else _AF_NAMES.get(family, f"af {family}")
    if len(frame) < 14:
        return "truncated"
    ethertype = struct.unpack("!H", frame[12:14])[0]
    head = f"{_mac(frame[6:12])} > {_mac(frame[0:6])}"
    if ethertype == 0x0800:
        return f"{head} {ipv4_summary(frame[14:])}"
    if ethertype == 0x0806:
        return f"{head} {arp_summary(frame[14:])}"
    return f"{head} {_ETHERTYPES.get(ethertype, f'ethertype 0x{ethertype:04x}')}"


# --- connection ------------------------------------------------------------------------------


def _read(flag: str, path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise CliError(f"{flag} {path}: {error.strerror}") from None


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to the agent: plaintext unless a TLS flag is given."""
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return grpc.insecure_channel(args.agent)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError("--tls-cert and --tls-key go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read("--tls-ca", args.tls_ca) if args.tls_ca else None,
        private_key=_read("--tls-key", args.tls_key) if args.tls_key else None,
        certificate_chain=_read("--tls-cert", args.tls_cert) if args.tls_cert else None)
    return grpc.secure_channel(args.agent, credentials)


# --- commands --------------------------------------------------------------------------------


class Commands:
    """One method per subcommand; each makes its calls and prints the answer."""

    def __init__(self, stub: agent_pb2_grpc.AgentStub, out: Output, timeout: float) -> None:
        self.stub = stub
        self.out = out
        self.timeout = timeout
        self.streaming = False  # a stream got its first message: the agent was there

    def _received(self, call: Iterable[Any]) -> Iterator[Any]:
        for message in call:
            self.streaming = True
            yield message

    def ifaces(self, args: argparse.Namespace) -> None:
        if args.name:
            reply = self.stub.GetInterface(pb.GetInterfaceRequest(name=args.name),
                                           timeout=self.timeout)
            self._interfaces([reply])
            return
        reply = self.stub.ListInterfaces(pb.ListInterfacesRequest(), timeout=self.timeout)
        self._interfaces(list(reply.interfaces))

    def _interfaces(self, interfaces: list[tpb.Interface]) -> None:
        self.out.listing(
            interfaces, ("NAME", "INDEX", "STATE", "MTU", "MAC", "FLAGS", "ADDRESSES"),
            lambda i: (i.name, i.index, "UP" if "UP" in i.flags else "DOWN", i.mtu,
                       i.mac or "-", ",".join(i.flags) or "-",
                       " ".join(f"{a.address}/{a.prefix_len}" for a in i.addresses) or "-"))

    def iface_set(self, args: argparse.Namespace) -> None:
        request = pb.SetInterfaceRequest(name=args.name, mode=args.mode)
        if args.up is not None:
            request.up = args.up
        if args.mtu is not None:
            request.mtu = args.mtu
        self._interfaces([self.stub.SetInterface(request, timeout=self.timeout)])

    def ng_create(self, args: argparse.Namespace) -> None:
        reply = self.stub.CreateVirtualInterface(pb.CreateVirtualInterfaceRequest(),
                                                 timeout=self.timeout)
        self.out.message(reply, reply.name)

    def ng_destroy(self, args: argparse.Namespace) -> None:
        self.stub.DestroyVirtualInterface(pb.DestroyVirtualInterfaceRequest(name=args.name),
                                          timeout=self.timeout)

    def alias_add(self, args: argparse.Namespace) -> None:
        reply = self.stub.AddAlias(pb.AddAliasRequest(
            ifname=args.iface, address=args.address, broadcast=args.broadcast or "",
            destination=args.dest or ""), timeout=self.timeout)
        self.out.message(reply.address, f"{args.iface} {address_text(reply.address)}")

    def alias_del(self, args: argparse.Namespace) -> None:
        reply = self.stub.DeleteAlias(pb.DeleteAliasRequest(
            ifname=args.iface, address=args.address or ""), timeout=self.timeout)
        self.out.message(reply.address,
                         f"{args.iface} {address_text(reply.address)} deleted")

    def routes(self, args: argparse.Namespace) -> None:
        reply = self.stub.ListRoutes(pb.ListRoutesRequest(), timeout=self.timeout)
        self.out.listing(list(reply.routes), ("PREFIX", "GATEWAY", "IFACE", "FLAGS"),
                         lambda r: (r.prefix, r.gateway or "-", r.ifname or "-",
                                    ",".join(r.flags) or "-"))

    def route_add(self, args: argparse.Namespace) -> None:
        reply = self.stub.AddRoute(pb.AddRouteRequest(
            prefix=args.prefix, gateway=args.gateway or "", ifname=args.iface or ""),
            timeout=self.timeout)
        self.out.message(reply.route, f"{reply.route.prefix} added")

    def route_del(self, args: argparse.Namespace) -> None:
        self.stub.DeleteRoute(pb.DeleteRouteRequest(prefix=args.prefix), timeout=self.timeout)

    def arp(self, args: argparse.Namespace) -> None:
        reply = self.stub.ListArp(pb.ListArpRequest(ifname=args.iface or ""),
                                  timeout=self.timeout)
        self.out.listing(list(reply.entries), ("IFACE", "IP", "MAC", "STATE", "FLAGS"),
                         lambda e: (e.ifname, e.ip, e.mac or "(incomplete)", e.state or "-",
                                    arp_flags(e)))

    def arp_set(self, args: argparse.Namespace) -> None:
        reply = self.stub.SetArp(pb.SetArpRequest(ifname=args.iface, ip=args.ip, mac=args.mac,
                                                  published=args.publish),
                                 timeout=self.timeout)
        entry = reply.entry
        self.out.message(entry, f"{entry.ifname} {entry.ip} at {entry.mac} {arp_flags(entry)}")

    def arp_del(self, args: argparse.Namespace) -> None:
        self.stub.DeleteArp(pb.DeleteArpRequest(ifname=args.iface, ip=args.ip),
                            timeout=self.timeout)

    def arp_flush(self, args: argparse.Namespace) -> None:
        reply = self.stub.FlushArp(pb.FlushArpRequest(ifname=args.iface or ""),
                                   timeout=self.timeout)
        noun = "entry" if reply.flushed == 1 else "entries"
        self.out.message(reply, f"{reply.flushed} {noun} flushed")

    def policy(self, args: argparse.Namespace) -> None:
        if args.mode is None:
            reply = self.stub.GetPolicy(pb.GetPolicyRequest(), timeout=self.timeout)
        else:
            reply = self.stub.SetPolicy(pb.SetPolicyRequest(same_prefix=POLICIES[args.mode]),
                                        timeout=self.timeout)
        name = next((n for n, v in POLICIES.items() if v == reply.same_prefix), "unspecified")
        self.out.message(reply, f"same-prefix: {name}")

    def query(self, args: argparse.Namespace) -> None:
        reply = self.stub.Query(pb.QueryRequest(kind=QUERIES[args.kind], address=args.address,
                                                ifname=args.iface or ""),
                                timeout=self.timeout)
        self.out.message(reply, "yes" if reply.result else "no")

    def events(self, args: argparse.Namespace) -> None:
        request = pb.WatchEventsRequest(kinds=args.kind or [], ifname=args.iface or "")
        if args.after is not None:
            request.after_seq = args.after
        call = self.stub.WatchEvents(request)
        for event in _limited(_events_of(self._received(call), self.out), args.count, call):
            self.out.line(event, event_text(event))

    def capture(self, args: argparse.Namespace) -> None:
        call = self.stub.Capture(pb.CaptureRequest(ifname=args.iface, count=args.count or 0,
                                                   snaplen=args.snaplen or 0))
        if args.write:
            seen = self._capture_to_file(self._received(call), args.write)
        else:
            seen = self._capture_to_stdout(self._received(call))
        if args.count is None or seen < args.count:
            # the agent closes a tap only when its interface goes away
            raise CliError(f"capture on {args.iface} ended after {_frames(seen)}: "
                           "the interface is gone")

    def _capture_to_stdout(self, call: Iterable[tpb.CaptureBatch]) -> int:
        linktype = 1
        seen = 0
        for batch in call:
            linktype = batch.linktype
            seen += len(batch.frames)
            for frame in batch.frames:
                direction = "out" if frame.direction == tpb.DIRECTION_OUT else "in"
                self.out.line(frame, f"{timestamp_text(frame.timestamp)} {frame.ifname} "
                              f"{direction} "
                              f"{frame.length or len(frame.data)} "
                              f"{frame_summary(frame.data, linktype)}")
        return seen

    def _capture_to_file(self, call: Iterable[tpb.CaptureBatch], path: str) -> int:
        count = 0
        dropped = 0
        try:
            stream = open(path, "wb")  # noqa: SIM115 - closed in finally, also on Ctrl-C
        except OSError as error:
            raise CliError(f"-w {path}: {error.strerror}") from None
        try:
            writer: PcapWriter | None = None
            for batch in call:
                writer = writer or PcapWriter(stream, batch.linktype)
                dropped = batch.dropped
                for frame in batch.frames:
                    writer.write(frame.timestamp, frame.data, frame.length or None)
                    count += 1
                stream.flush()
        finally:
            stream.close()
            note = f", {dropped} dropped by the agent" if dropped else ""
            print(f"vrc: {_frames(count)} written to {path}{note}", file=sys.stderr)
        return count


def _frames(count: int) -> str:
    return f"{count} frame" if count == 1 else f"{count} frames"


def _events_of(call: Iterable[tpb.EventBatch], out: Output) -> Iterator[tpb.Event]:
    for batch in call:
        if batch.lost:
            print("vrc: some events were lost before this point; list the state again",
                  file=sys.stderr)
        yield from batch.events


def _limited(items: Iterator[tpb.Event], count: int | None, call: Any) -> Iterator[tpb.Event]:
    """At most ``count`` items, then cancel the stream (None: until it ends)."""
    if count is None:
        yield from items
        return
    if count <= 0:
        call.cancel()
        return
    for seen, item in enumerate(items, start=1):
        yield item
        if seen >= count:
            call.cancel()
            return


# --- argument parsing -------------------------------------------------------------------------


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


def _output_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("-o", "--output", choices=("table", "json"), default=default,
                        help="output format (default: table)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: "-o json" after the subcommand wins, its absence does not reset it.
    _output_flag(common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="vrc", description="Talk to one vrc agent. 'vrc COMMAND -h' explains a command.",
        epilog="examples: vrc ifaces; vrc alias add eth1 10.0.0.1/24; vrc -o json routes; "
               "vrc capture eth1 -c 100 -w eth1.pcap. Errors exit 1, usage errors 2.")
    parser.add_argument("--agent", default=DEFAULT_AGENT, metavar="unix:PATH|HOST:PORT",
                        help=f"the agent's API address (default {DEFAULT_AGENT})")
    parser.add_argument("--tls-ca", metavar="FILE",
                        help="CA certificate to verify the agent (turns on TLS)")
    parser.add_argument("--tls-cert", metavar="FILE", help="client certificate, for mutual TLS")
    parser.add_argument("--tls-key", metavar="FILE", help="client private key, for mutual TLS")
    parser.add_argument("--timeout", type=positive_seconds, default=10.0, metavar="SECONDS",
                        help="seconds to wait for a reply (default 10)")
    _output_flag(parser, "table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, func: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help,
                                                        parents=[common])
        sub.set_defaults(func=func)
        return sub

    ifaces = command(commands, "ifaces", "ifaces", "list interfaces (or show one)")
    ifaces.add_argument("name", nargs="?", metavar="NAME", help="only this interface")

    iface = commands.add_parser("iface", help="change an interface")
    iface_cmds = iface.add_subparsers(dest="action", required=True, metavar="ACTION")
    iface_set = command(iface_cmds, "set", "iface_set", "set up/down, MTU, mode")
    iface_set.add_argument("name", metavar="NAME", help="the interface")
    updown = iface_set.add_mutually_exclusive_group()
    updown.add_argument("--up", dest="up", action="store_true", default=None,
                        help="bring it up")
    updown.add_argument("--down", dest="up", action="store_false", help="take it down")
    iface_set.add_argument("--mtu", type=whole_number(1, UINT32_MAX), metavar="BYTES",
                           help="the MTU (the engine checks its bounds)")
    mode = iface_set.add_mutually_exclusive_group()
    mode.add_argument("--point-to-point", dest="mode", action="store_const",
                      const=pb.INTERFACE_MODE_POINT_TO_POINT,
                      help="point-to-point mode (the interface must be down)")
    mode.add_argument("--broadcast", dest="mode", action="store_const",
                      const=pb.INTERFACE_MODE_BROADCAST,
                      help="broadcast mode (the interface must be down)")
    iface_set.set_defaults(mode=pb.INTERFACE_MODE_UNSPECIFIED)

    ng = commands.add_parser("ng", help="virtual point-to-point interfaces ngN")
    ng_cmds = ng.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(ng_cmds, "create", "ng_create", "create the next ngN")
    command(ng_cmds, "destroy", "ng_destroy", "destroy an ngN").add_argument(
        "name", metavar="NAME", help="ngN")

    alias = commands.add_parser("alias", help="IPv4 address aliases")
    alias_cmds = alias.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = command(alias_cmds, "add", "alias_add", "add an address (SIOCAIFADDR)")
    add.add_argument("iface", metavar="IFACE", help="the interface")
    add.add_argument("address", metavar="ADDR/LEN",
                     help="address and prefix length (without /LEN: the classful mask, "
                          "as ifconfig)")
    add.add_argument("--broadcast", metavar="A",
                     help="broadcast address (default: the subnet's all-ones)")
    add.add_argument("--dest", metavar="A", help="peer of a point-to-point interface")
    delete = command(alias_cmds, "del", "alias_del",
                     "delete an address (the first one when none is given)")
    delete.add_argument("iface", metavar="IFACE", help="the interface")
    delete.add_argument("address", nargs="?", metavar="ADDR", help="the address (no /LEN)")

    command(commands, "routes", "routes", "list routes")
    route = commands.add_parser("route", help="static routes")
    route_cmds = route.add_subparsers(dest="action", required=True, metavar="ACTION")
    route_add = command(route_cmds, "add", "route_add", "add a static route")
    route_add.add_argument("prefix", metavar="PREFIX/LEN", help="destination, host bits clear")
    route_add.add_argument("--gw", dest="gateway", metavar="A",
                           help="next hop, on a connected network")
    route_add.add_argument("--dev", dest="iface", metavar="IFACE",
                           help="out this interface (--gw, --dev or both)")
    command(route_cmds, "del", "route_del", "delete a route").add_argument(
        "prefix", metavar="PREFIX/LEN", help="the route's destination")

    arp = command(commands, "arp", "arp", "list ARP entries (or change them)")
    arp.add_argument("-i", "--iface", help="only this interface")
    arp_cmds = arp.add_subparsers(dest="action", required=False, metavar="ACTION")
    arp_set = command(arp_cmds, "set", "arp_set", "add a static entry")
    arp_set.add_argument("iface", metavar="IFACE", help="the interface")
    arp_set.add_argument("ip", metavar="IP", help="IPv4 address on one of its subnets")
    arp_set.add_argument("mac", metavar="MAC", help="six hex bytes, aa:bb:cc:dd:ee:ff")
    arp_set.add_argument("--publish", action="store_true", help="answer requests for it too")
    arp_del = command(arp_cmds, "del", "arp_del", "delete an entry")
    arp_del.add_argument("iface", metavar="IFACE", help="the interface")
    arp_del.add_argument("ip", metavar="IP", help="the entry's IPv4 address")
    command(arp_cmds, "flush", "arp_flush", "flush entries").add_argument(
        "iface", nargs="?", metavar="IFACE", help="only this interface")

    policy = commands.add_parser("policy", help="the same-prefix policy")
    policy_cmds = policy.add_subparsers(dest="action", required=True, metavar="POLICY")
    same = command(policy_cmds, "same-prefix", "policy", "show or set the same-prefix policy")
    same.add_argument("mode", nargs="?", choices=tuple(POLICIES),
                      help="what adding an address whose prefix is already routed does "
                           "(omit to show the current one)")

    query = command(commands, "query", "query", "ask an address question")
    query.add_argument("kind", choices=tuple(QUERIES), metavar="KIND",
                       help=", ".join(QUERIES))
    query.add_argument("address", metavar="ADDR", help="the IPv4 address to ask about")
    query.add_argument("iface", nargs="?", metavar="IFACE",
                       help="the interface (needed by broadcast)")
    query.set_defaults(command_parser=query)

    events = command(commands, "events", "events", "stream events until Ctrl-C")
    events.add_argument("-c", "--count", type=whole_number(1, UINT64_MAX), metavar="N",
                        help="stop after N events")
    events.add_argument("--after", type=whole_number(0, UINT64_MAX), metavar="SEQ",
                        help="resume after this sequence number")
    events.add_argument("--kind", action="append", choices=EVENT_KINDS, metavar="KIND",
                        help="only this kind (repeatable): " + ", ".join(EVENT_KINDS))
    events.add_argument("-i", "--iface", help="only this interface")

    capture = command(commands, "capture", "capture", "capture frames on an interface")
    capture.add_argument("iface", metavar="IFACE", help="the interface (ngN too)")
    capture.add_argument("-c", "--count", type=whole_number(1, UINT32_MAX), metavar="N",
                         help="stop after N frames")
    capture.add_argument("-w", "--write", metavar="FILE.pcap", help="write a pcap file")
    capture.add_argument("-s", "--snaplen", type=whole_number(0, UINT32_MAX), metavar="BYTES",
                         help="cut frames to this length (0: whole frames)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func == "query" and args.kind == "broadcast" and not args.iface:
        args.command_parser.error("broadcast needs IFACE (the interface to ask about)")
    out = Output(args.output, sys.stdout)
    commands: Commands | None = None
    try:
        with open_channel(args) as channel:
            commands = Commands(agent_pb2_grpc.AgentStub(channel), out, args.timeout)
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
        return (f"cannot reach the agent at {args.agent}: {cause} "
                "(is vrc-agent running there? --agent names another)")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from the agent at {args.agent} within {args.timeout:g} s (--timeout)"
    return details


if __name__ == "__main__":
    sys.exit(main())

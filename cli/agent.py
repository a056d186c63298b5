"""The agent half of the ``vrc`` CLI: one command per agent API call.

:func:`add_commands` puts the subcommands on the root parser of
:mod:`cli.main`; :class:`Commands` has one method per subcommand that makes
its calls and prints the answer through :class:`cli.output.Output`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from cli.options import UINT32_MAX, UINT64_MAX, CliError, subcommand, whole_number
from cli.output import (
    Output,
    address_text,
    arp_flags,
    event_text,
    frame_summary,
    table,
    timestamp_text,
)
from router import EventKind, PcapWriter
from vrc.v1 import agent_pb2 as pb
from vrc.v1 import agent_pb2_grpc
from vrc.v1 import types_pb2 as tpb

POLICIES = {"allow": tpb.POLICY_ALLOW, "refuse": tpb.POLICY_REFUSE,
            "multipath": tpb.POLICY_MULTIPATH}
QUERIES = {"local-subnet": pb.QUERY_KIND_LOCAL_SUBNET,
           "local-address": pb.QUERY_KIND_LOCAL_ADDRESS,
           "can-forward": pb.QUERY_KIND_CAN_FORWARD,
           "broadcast": pb.QUERY_KIND_BROADCAST}
EVENT_KINDS = tuple(sorted(kind.value for kind in EventKind))


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
        request = pb.AddAliasRequest(
            ifname=args.iface, address=args.address, broadcast=args.broadcast or "",
            destination=args.dest or "")
        if args.probes is not None:
            request.probes = args.probes
        reply = self.stub.AddAlias(request, timeout=self.timeout)
        self.out.message(reply.address, f"{args.iface} {address_text(reply.address)}")

    def alias_del(self, args: argparse.Namespace) -> None:
        reply = self.stub.DeleteAlias(pb.DeleteAliasRequest(
            ifname=args.iface, address=args.address or ""), timeout=self.timeout)
        self.out.message(reply.address,
                         f"{args.iface} {address_text(reply.address)} deleted")

    def routes(self, args: argparse.Namespace) -> None:
        reply = self.stub.ListRoutes(pb.ListRoutesRequest(), timeout=self.timeout)
        self.out.listing(list(reply.routes), ("PREFIX", "GATEWAY", "IFACE", "FLAGS"),
                         lambda r: (r.prefix, *route_via(r), ",".join(r.flags) or "-"))

    def route_add(self, args: argparse.Namespace) -> None:
        legs = list(args.via or ())
        reply = self.stub.AddRoute(pb.AddRouteRequest(
            prefix=args.prefix, gateway=args.gateway or "", ifname=args.iface or "",
            next_hops=legs, replace=args.replace), timeout=self.timeout)
        self.out.message(reply.route, f"{reply.route.prefix} {'set' if args.replace else 'added'}")

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

    def stats(self, args: argparse.Namespace) -> None:
        reply = self.stub.GetStats(pb.GetStatsRequest(), timeout=self.timeout)
        if self.out.json:
            self.out.message(reply, "")
            return
        self.out.print(stats_text(reply, show_zero=args.all))

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
        batches = _announced(self._received(call), args.iface)
        if args.write:
            seen = self._capture_to_file(batches, args.write)
        else:
            seen = self._capture_to_stdout(batches)
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


def _announced(call: Iterable[tpb.CaptureBatch], ifname: str) -> Iterator[tpb.CaptureBatch]:
    """The batches of a capture, saying on stderr when it started (the agent's first
    batch comes once its tap is open): scripts wait for that line, not a sleep."""
    for number, batch in enumerate(call):
        if number == 0:
            print(f"vrc: capturing on {ifname}", file=sys.stderr, flush=True)
        yield batch


def stats_text(reply: pb.GetStatsResponse, show_zero: bool = False) -> str:
    """``vrc stats`` as tables: interfaces, drops, protocol counters, links, the loop.

    Drops and protocol counters that are zero are left out unless ``show_zero``.
    """
    parts = [table(
        ((i.ifname, "UP" if i.up else "DOWN", i.mtu, i.counters.ipackets, i.counters.ibytes,
          i.counters.ierrors, i.counters.iqdrops, i.counters.opackets, i.counters.obytes,
          i.counters.oerrors, i.counters.oqdrops, _arp_text(i)) for i in reply.interfaces),
        ("IFACE", "STATE", "MTU", "RX", "RX-BYTES", "IERRORS", "IQDROPS", "TX", "TX-BYTES",
         "OERRORS", "OQDROPS", "ARP"))]
    parts.append(f"fast path hits: {reply.fast_path_hits}")
    drops = [(d.reason, d.count) for d in reply.drops if show_zero or d.count]
    parts.append(table(drops, ("DROP", "COUNT")) if drops else "no drops")
    counters = [(c.name, c.value) for c in reply.protocols if show_zero or c.value]
    if counters:
        parts.append(table(counters, ("COUNTER", "VALUE")))
    if reply.links:
        parts.append(table(
            ((k.ifname, k.receive_frames, k.receive_local_frames, k.transmit_frames,
              k.transmit_errors, k.transmit_oversize, k.ring_drops, k.receive_offload_frames,
              k.receive_copies, k.receive_truncated, "yes" if k.promiscuous else "no")
             for k in reply.links),
            ("LINK", "RX-FRAMES", "RX-LOCAL", "TX-FRAMES", "TX-ERRORS", "OVERSIZE", "RING-DROPS",
             "RX-OFFLOAD", "RX-COPIES", "RX-CUT", "PROMISC")))
    if reply.HasField("dataplane"):
        loop = reply.dataplane
        parts.append(f"data plane: {loop.iterations} iterations, {loop.frames_in} frames in, "
                     f"{loop.frames_out} out, {loop.timer_runs} timer runs, "
                     f"{loop.unroutable} unroutable, {loop.transmit_failed} transmit failed, "
                     f"{loop.errors} errors, busy-poll {loop.busy_poll_hits} hits / "
                     f"{loop.busy_poll_misses} misses, {loop.rests} rests")
    return "\n\n".join(parts)


def _arp_text(ifp: pb.InterfaceStats) -> str:
    states = ", ".join(f"{s.state.lower()} {s.count}" for s in ifp.arp_states)
    return f"{ifp.arp_entries} ({states})" if states else str(ifp.arp_entries)


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


def next_hop_arg(text: str) -> tpb.RouteNextHop:
    """``GW@IFACE`` as a next hop (the agent checks the address and the interface)."""
    gateway, at, ifname = text.partition("@")
    if not at or not gateway or not ifname:
        raise argparse.ArgumentTypeError(f"{text!r}: expected GW@IFACE")
    return tpb.RouteNextHop(gateway=gateway, ifname=ifname)


def route_via(route: tpb.Route) -> tuple[str, str]:
    """The GATEWAY and IFACE cells: every leg of a multipath route, comma-separated."""
    if route.next_hops:
        return (",".join(h.gateway for h in route.next_hops),
                ",".join(h.ifname for h in route.next_hops))
    return route.gateway or "-", route.ifname or "-"


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The agent's subcommands, on the root parser's ``commands`` subparsers."""

    def command(parent: Any, name: str, func: str, help: str) -> argparse.ArgumentParser:
        return subcommand(parent, name, func, help, common)

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
    add.add_argument("--probes", type=whole_number(0, 255), metavar="N",
                     help="RFC 5227 probes before the address is used (default: the agent's "
                          "--arp-probes, 0: used at once and announced)")
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
    route_add.add_argument("--via", action="append", type=next_hop_arg, metavar="GW@IFACE",
                           help="a next hop on-link through IFACE; repeat it for a multipath "
                                "route (flows are spread by hash); instead of --gw/--dev")
    route_add.add_argument("--replace", action="store_true",
                           help="set the prefix's static route to exactly these next hops, "
                                "in one step (with --via, or --gw and --dev)")
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

    stats = command(commands, "stats", "stats",
                    "counters: drops by reason, interfaces, ARP tables, the fast path")
    stats.add_argument("--all", action="store_true",
                       help="also the drop reasons and counters that are zero")

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


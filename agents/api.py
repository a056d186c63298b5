"""The Agent gRPC servicer: request → validation → engine call through the gate → reply.

Handlers stay thin. Validation at the edge lives in :mod:`agents.convert`,
the errno → status mapping in :mod:`agents.errors` (applied to every RPC by
:func:`agents.errors.map_errors_of`), and all engine access goes through
:class:`agents.gate.Gate` so handler threads never race the data-plane loop.

Streams (events, captures, hooks) are batched: one message carries whatever
piled up since the previous one (DESIGN.md 4.1), and each stream first sends
one message at once (possibly empty) so a client knows it is subscribed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from agents import convert
from agents.convert import address_to_pb, arp_to_pb, interface_to_pb, require, route_to_pb
from agents.errors import invalid, map_errors_of
from agents.gate import Gate, Mailbox
from agents.stats import StatsSnapshot, StatsSource
from router import Event, EventKind, RouterError
from router.errors import EADDRNOTAVAIL, ENXIO
from vrc.v1 import agent_pb2, agent_pb2_grpc, types_pb2

POLL_SECONDS = 0.5  # how often an idle stream checks that its client is still there
EVENTS_PER_BATCH = 4096
FRAMES_PER_BATCH = 256  # 256 jumbo frames stay under grpc's 4 MB message limit
PACKETS_PER_BATCH = 256

_POLICY_NAMES = {
    types_pb2.POLICY_ALLOW: "allow",
    types_pb2.POLICY_REFUSE: "refuse",
    types_pb2.POLICY_MULTIPATH: "multipath",
}
_QUERY_NAMES = {
    agent_pb2.QUERY_KIND_LOCAL_SUBNET: "local-subnet",
    agent_pb2.QUERY_KIND_LOCAL_ADDRESS: "local-address",
    agent_pb2.QUERY_KIND_CAN_FORWARD: "can-forward",
    agent_pb2.QUERY_KIND_BROADCAST: "broadcast",
}
_MODES = {
    agent_pb2.INTERFACE_MODE_UNSPECIFIED: None,
    agent_pb2.INTERFACE_MODE_POINT_TO_POINT: True,
    agent_pb2.INTERFACE_MODE_BROADCAST: False,
}
_ADDRESS_FIELDS = {
    agent_pb2.ADDRESS_FIELD_ADDRESS: "address",
    agent_pb2.ADDRESS_FIELD_BROADCAST: "broadcast",
    agent_pb2.ADDRESS_FIELD_DESTINATION: "destination",
    agent_pb2.ADDRESS_FIELD_NETMASK: "netmask",
}
_EVENT_KINDS = {kind.value for kind in EventKind}


def policy_to_pb(policy: Any) -> types_pb2.Policy:
    """The engine's same-prefix policy (an enum or its name) as the API enum."""
    name = str(getattr(policy, "value", policy)).lower()
    for number, known in _POLICY_NAMES.items():
        if known == name:
            return number
    return types_pb2.Policy.POLICY_UNSPECIFIED


@map_errors_of
@convert.check_requests_of
class AgentService(agent_pb2_grpc.AgentServicer):
    """The vrc.v1.Agent service over one engine gate."""

    def __init__(self, gate: Gate, *, wall_offset: Callable[[], float] | None = None,
                 nic_mtu: Callable[[str], int | None] | None = None,
                 stats: StatsSource | None = None) -> None:
        """``wall_offset`` turns the engine's clock into UNIX time for captured frames
        (the agent's loop runs on ``time.monotonic``); None keeps the engine's clock.
        ``nic_mtu`` gives the MTU of the host NIC behind an engine interface (None
        for interfaces without one, such as ``ngN``). ``stats`` is what GetStats
        reads (the metrics endpoint's source in vrc-agent); by default the
        engine's numbers only."""
        self._gate = gate
        self._wall_offset = wall_offset
        self._nic_mtu = nic_mtu
        self._stats = stats if stats is not None else StatsSource(gate)

    # --- interfaces ------------------------------------------------------------------

    def ListInterfaces(self, request: agent_pb2.ListInterfacesRequest,
                       context: grpc.ServicerContext) -> agent_pb2.ListInterfacesResponse:
        return self._gate.call(lambda e: agent_pb2.ListInterfacesResponse(
            interfaces=[_interface_record(e, ifp) for ifp in e.interfaces()]))

    def GetInterface(self, request: agent_pb2.GetInterfaceRequest,
                     context: grpc.ServicerContext) -> types_pb2.Interface:
        name = require("name", request.name)
        return self._gate.call(lambda e: _interface_pb(e, name))

    def CreateVirtualInterface(self, request: agent_pb2.CreateVirtualInterfaceRequest,
                               context: grpc.ServicerContext) -> types_pb2.Interface:
        return self._gate.call(lambda e: _interface_pb(e, e.create_ng()))

    def DestroyVirtualInterface(self, request: agent_pb2.DestroyVirtualInterfaceRequest,
                                context: grpc.ServicerContext
                                ) -> agent_pb2.DestroyVirtualInterfaceResponse:
        name = require("name", request.name)
        self._gate.call(lambda e: e.destroy_ng(name))
        return agent_pb2.DestroyVirtualInterfaceResponse()

    def SetInterface(self, request: agent_pb2.SetInterfaceRequest,
                     context: grpc.ServicerContext) -> types_pb2.Interface:
        name = require("name", request.name)
        up = request.up if request.HasField("up") else None
        mtu = request.mtu if request.HasField("mtu") else None
        p2p = _MODES.get(request.mode)
        if mtu is not None:
            self._check_nic_mtu(name, mtu)

        def change(e: Any) -> types_pb2.Interface:
            e.set_interface(name, up=up, mtu=mtu, point_to_point=p2p)
            return _interface_pb(e, name)

        return self._gate.call(change)

    def _check_nic_mtu(self, name: str, mtu: int) -> None:
        """An engine MTU above its host NIC's would only turn big frames into
        transmit drops (the NIC cannot send them): refuse it, saying what to do."""
        limit = self._nic_mtu(name) if self._nic_mtu is not None else None
        if limit is not None and mtu > limit:
            raise invalid("mtu", mtu, f"above the MTU {limit} of the host NIC; raise that "
                          f"(ip link set {name} mtu {mtu}) and restart vrc-agent",
                          f"mtu of {name}")

    # --- addresses -------------------------------------------------------------------

    def AddAlias(self, request: agent_pb2.AddAliasRequest,
                 context: grpc.ServicerContext) -> agent_pb2.AddAliasResponse:
        ifname = require("ifname", request.ifname)
        address = convert.parse_alias("address", require("address", request.address))
        broadcast = convert.optional_ipv4("broadcast", request.broadcast)
        dest = convert.optional_ipv4("destination", request.destination)

        probes = request.probes if request.HasField("probes") else None

        def add(e: Any) -> agent_pb2.AddAliasResponse:
            added = e.add_alias(ifname, address, broadcast=broadcast, dest=dest,
                                vhid=request.vhid, probes=probes)
            return agent_pb2.AddAliasResponse(address=address_to_pb(added))

        return self._gate.call(add)

    def DeleteAlias(self, request: agent_pb2.DeleteAliasRequest,
                    context: grpc.ServicerContext) -> agent_pb2.DeleteAliasResponse:
        ifname = require("ifname", request.ifname)
        address = convert.optional_ipv4("address", request.address)

        def delete(e: Any) -> agent_pb2.DeleteAliasResponse:
            try:
                deleted = e.delete_alias(ifname, address)
            except RouterError as error:
                if address is None and error.errno == EADDRNOTAVAIL:
                    # "the first address" of an interface that has none
                    raise RouterError(EADDRNOTAVAIL, "ifname", ifname,
                                      detail="has no IPv4 address to delete") from None
                raise
            return agent_pb2.DeleteAliasResponse(address=address_to_pb(deleted))

        return self._gate.call(delete)

    def GetAddress(self, request: agent_pb2.GetAddressRequest,
                   context: grpc.ServicerContext) -> agent_pb2.GetAddressResponse:
        ifname = require("ifname", request.ifname)
        address = convert.optional_ipv4("address", request.address)
        which = _ADDRESS_FIELDS.get(request.field)

        def get(e: Any) -> agent_pb2.GetAddressResponse:
            if which is None:
                record = address_to_pb(e.get_address(ifname, address))
                return agent_pb2.GetAddressResponse(address=record, value=record.address)
            record = address_to_pb(e.get_address(ifname, address, which))
            return agent_pb2.GetAddressResponse(address=record,
                                                value=getattr(record, which))

        return self._gate.call(get)

    # --- routes ----------------------------------------------------------------------

    def ListRoutes(self, request: agent_pb2.ListRoutesRequest,
                   context: grpc.ServicerContext) -> agent_pb2.ListRoutesResponse:
        return self._gate.call(lambda e: agent_pb2.ListRoutesResponse(
            routes=[route_to_pb(r, e.next_hop_usable) for r in e.routes()]))

    def AddRoute(self, request: agent_pb2.AddRouteRequest,
                 context: grpc.ServicerContext) -> agent_pb2.AddRouteResponse:
        """One gateway and/or interface, or several next hops (a multipath route);
        ``replace``: set the prefix's static route to exactly these next hops."""
        prefix = convert.parse_prefix("prefix", require("prefix", request.prefix))
        gateway = convert.optional_ipv4("gateway", request.gateway)
        ifname = request.ifname or None
        subject = f"route {prefix}"
        legs = [(convert.parse_ipv4(f"next_hops[{i}].gateway",
                                    require(f"next_hops[{i}].gateway", hop.gateway)),
                 require(f"next_hops[{i}].ifname", hop.ifname))
                for i, hop in enumerate(request.next_hops)]
        if legs and (gateway is not None or ifname is not None):
            raise invalid("next_hops", "", "give next_hops or gateway/ifname, not both", subject)
        if not legs and gateway is None and ifname is None:
            raise invalid("gateway", "", "needs a gateway or an interface", subject)
        if request.replace:
            if not legs:
                if gateway is None or ifname is None:
                    raise invalid("replace", "true", "needs next_hops or gateway and ifname",
                                  subject)
                legs = [(gateway, ifname)]
            return self._gate.call(lambda e: agent_pb2.AddRouteResponse(
                route=route_to_pb(e.set_route(prefix, legs), e.next_hop_usable)))
        if legs:
            return self._gate.call(lambda e: agent_pb2.AddRouteResponse(
                route=route_to_pb(e.add_route(prefix, gateways=legs), e.next_hop_usable)))
        return self._gate.call(lambda e: agent_pb2.AddRouteResponse(
            route=route_to_pb(e.add_route(prefix, gateway=gateway, ifname=ifname))))

    def DeleteRoute(self, request: agent_pb2.DeleteRouteRequest,
                    context: grpc.ServicerContext) -> agent_pb2.DeleteRouteResponse:
        prefix = convert.parse_prefix("prefix", require("prefix", request.prefix))
        self._gate.call(lambda e: e.delete_route(prefix))
        return agent_pb2.DeleteRouteResponse()

    # --- ARP -------------------------------------------------------------------------

    def ListArp(self, request: agent_pb2.ListArpRequest,
                context: grpc.ServicerContext) -> agent_pb2.ListArpResponse:
        ifname = request.ifname or None
        return self._gate.call(lambda e: agent_pb2.ListArpResponse(
            entries=[arp_to_pb(a) for a in e.arp_entries(ifname)]))

    def SetArp(self, request: agent_pb2.SetArpRequest,
               context: grpc.ServicerContext) -> agent_pb2.SetArpResponse:
        ifname = require("ifname", request.ifname)
        ip = convert.parse_ipv4("ip", request.ip)
        mac = convert.parse_mac("mac", request.mac)
        return self._gate.call(lambda e: agent_pb2.SetArpResponse(
            entry=arp_to_pb(e.set_arp(ifname, ip, mac, published=request.published))))

    def DeleteArp(self, request: agent_pb2.DeleteArpRequest,
                  context: grpc.ServicerContext) -> agent_pb2.DeleteArpResponse:
        ifname = require("ifname", request.ifname)
        ip = convert.parse_ipv4("ip", request.ip)
        self._gate.call(lambda e: e.delete_arp(ifname, ip))
        return agent_pb2.DeleteArpResponse()

    def FlushArp(self, request: agent_pb2.FlushArpRequest,
                 context: grpc.ServicerContext) -> agent_pb2.FlushArpResponse:
        ifname = request.ifname or None
        flushed = self._gate.call(lambda e: e.flush_arp(ifname))
        return agent_pb2.FlushArpResponse(flushed=int(flushed or 0))

    # --- policy and queries ----------------------------------------------------------

    def GetPolicy(self, request: agent_pb2.GetPolicyRequest,
                  context: grpc.ServicerContext) -> agent_pb2.PolicyResponse:
        return self._gate.call(lambda e: agent_pb2.PolicyResponse(
            same_prefix=policy_to_pb(e.get_policy())))

    def SetPolicy(self, request: agent_pb2.SetPolicyRequest,
                  context: grpc.ServicerContext) -> agent_pb2.PolicyResponse:
        name = _POLICY_NAMES.get(request.same_prefix)
        if name is None:
            raise invalid("same_prefix", request.same_prefix,
                          "expected ALLOW, REFUSE or MULTIPATH")

        def change(e: Any) -> agent_pb2.PolicyResponse:
            e.set_policy(name)
            return agent_pb2.PolicyResponse(same_prefix=policy_to_pb(e.get_policy()))

        return self._gate.call(change)

    def Query(self, request: agent_pb2.QueryRequest,
              context: grpc.ServicerContext) -> agent_pb2.QueryResponse:
        kind = _QUERY_NAMES.get(request.kind)
        if kind is None:
            raise invalid("kind", request.kind, "expected a query kind")
        address = convert.parse_ipv4("address", request.address)
        ifname = request.ifname or None
        if kind == "broadcast" and not ifname:
            raise invalid("ifname", "", "needs the interface to ask about",
                          f"broadcast query {address}")
        return self._gate.call(lambda e: agent_pb2.QueryResponse(
            result=bool(e.query(kind, address, ifname))))

    # --- counters --------------------------------------------------------------------

    def GetStats(self, request: agent_pb2.GetStatsRequest,
                 context: grpc.ServicerContext) -> agent_pb2.GetStatsResponse:
        return stats_to_pb(self._stats.read())

    # --- streams ---------------------------------------------------------------------

    def WatchEvents(self, request: agent_pb2.WatchEventsRequest,
                    context: grpc.ServicerContext) -> Iterator[types_pb2.EventBatch]:
        kinds = set(request.kinds)
        unknown = sorted(kinds - _EVENT_KINDS)
        if unknown:
            raise invalid("kinds", ",".join(unknown),
                          "unknown event kind; expected " + ", ".join(sorted(_EVENT_KINDS)))
        log = self._gate.events
        after = request.after_seq if request.HasField("after_seq") else log.last_seq
        # A resume point beyond the newest event was seen by an earlier agent run
        # (numbers restart with the agent): the client must list the state again.
        restarted = after > log.last_seq
        after = min(after, log.last_seq)
        context.add_callback(log.wake)
        events, lost = log.read_after(after, EVENTS_PER_BATCH)
        lost = lost or restarted
        first = True
        while context.is_active():
            if events:
                after = events[-1].seq
            chosen = [convert.event_to_pb(ev) for ev in events
                      if _wanted(ev, kinds, request.ifname)]
            if first or chosen or lost:
                yield types_pb2.EventBatch(events=chosen, lost=lost)
                first = False
            events, lost = log.wait_after(after, POLL_SECONDS, EVENTS_PER_BATCH)

    def Capture(self, request: agent_pb2.CaptureRequest,
                context: grpc.ServicerContext) -> Iterator[types_pb2.CaptureBatch]:
        ifname = require("ifname", request.ifname)
        tap = self._gate.open_tap(ifname, request.snaplen)
        context.add_callback(tap.mailbox.close)
        try:
            yield types_pb2.CaptureBatch(linktype=tap.linktype)
            remaining = request.count or -1  # -1: no limit
            while remaining != 0 and context.is_active():
                limit = FRAMES_PER_BATCH if remaining < 0 else min(remaining, FRAMES_PER_BATCH)
                frames = tap.mailbox.take(POLL_SECONDS, limit) or self._last_frames(tap, limit)
                if not frames:
                    if tap.mailbox.closed or _tap_closed(tap):
                        return
                    continue
                remaining = remaining - len(frames) if remaining > 0 else remaining
                offset = self._wall_offset() if self._wall_offset is not None else 0.0
                yield types_pb2.CaptureBatch(
                    linktype=tap.linktype, dropped=tap.dropped,
                    frames=[_frame_pb(ifname, f, offset) for f in frames])
        finally:
            self._gate.close_tap(tap)

    def _last_frames(self, tap: Any, limit: int) -> list[Any]:
        """Frames a tap queued before its interface went away (the engine closes the
        tap then); one pass through the gate collects them into the mailbox."""
        if not _tap_closed(tap):
            return []
        self._gate.call(lambda e: None)
        return tap.mailbox.take(0, limit)

    def Hook(self, request_iterator: Iterator[agent_pb2.HookRequest],
             context: grpc.ServicerContext) -> Iterator[agent_pb2.HookResponse]:
        first = next(request_iterator, None)
        if first is None or not first.HasField("attach"):
            raise invalid("attach", "", "the first message must name the interface and hook")
        convert.check_enums(first)
        ifname = require("attach.ifname", first.attach.ifname)
        hook = require("attach.hook", first.attach.hook)
        handle, mailbox = self._gate.open_hook(ifname, hook)
        context.add_callback(mailbox.close)
        feeder = _HookFeeder(self._gate, handle, mailbox)
        try:
            ifp = self._gate.call(lambda e: e.interface(ifname))
            yield agent_pb2.HookResponse(attached=True)
            feeder.send(list(first.packets))
            feeder.start(request_iterator)
            while True:
                packets = mailbox.take(POLL_SECONDS, PACKETS_PER_BATCH)
                if packets:
                    yield agent_pb2.HookResponse(packets=packets)
                elif mailbox.closed or not context.is_active():
                    break
                elif self._gate.call(lambda e: e.interface(ifname)) is not ifp:
                    # destroyed (ng_iface shutdown disconnects its hooks): say so
                    raise RouterError(ENXIO, "attach.ifname", ifname,
                                      detail="the interface went away")
            feeder.raise_error()
        finally:
            self._gate.close_hook(handle)


def stats_to_pb(snap: StatsSnapshot) -> agent_pb2.GetStatsResponse:
    """A stats snapshot as the GetStats reply (the metrics endpoint renders the same one)."""
    reply = agent_pb2.GetStatsResponse(
        drops=[agent_pb2.DropCount(reason=r, count=n) for r, n in sorted(snap.drops.items())],
        fast_path_hits=snap.fast_path_hits,
        protocols=[agent_pb2.ProtocolCounter(name=k, value=v)
                   for k, v in sorted(snap.protocols.items())],
        interfaces=[agent_pb2.InterfaceStats(
            ifname=ifp.name, up=ifp.up, mtu=ifp.mtu,
            counters=convert.counters_to_pb(ifp.counters), arp_entries=ifp.arp_entries,
            arp_states=[agent_pb2.ArpStateCount(state=s, count=n)
                        for s, n in ifp.arp_states.items()])
            for ifp in snap.interfaces],
        links=[agent_pb2.LinkStats(
            ifname=link.ifname, receive_frames=link.counts["rx_frames"],
            receive_local_frames=link.counts["rx_local"],
            transmit_frames=link.counts["tx_frames"], transmit_errors=link.counts["tx_errors"],
            transmit_oversize=link.counts["tx_oversize"],
            ring_drops=link.counts["kernel_drops"], promiscuous=link.promiscuous,
            receive_offload_frames=link.counts["rx_offload"],
            receive_copies=link.counts["rx_copies"],
            receive_truncated=link.counts["rx_truncated"])
            for link in snap.links],
    )
    if snap.loop is not None:
        loop = snap.loop
        reply.dataplane.CopyFrom(agent_pb2.DataplaneStats(
            iterations=loop["iterations"], frames_in=loop["frames_in"],
            frames_out=loop["frames_out"], timer_runs=loop["ticks"],
            unroutable=loop["tx_unroutable"], transmit_failed=loop["tx_failed"],
            errors=loop["engine_errors"], busy_poll_hits=loop["spin_hits"],
            busy_poll_misses=loop["spin_misses"], rests=loop["rests"]))
    return reply


def _interface_pb(engine: Any, name: str) -> types_pb2.Interface:
    ifp = engine.interface(name)
    if ifp is None:
        raise RouterError(ENXIO, "name", name, detail="no such interface")
    return _interface_record(engine, ifp)


def _interface_record(engine: Any, ifp: Any) -> types_pb2.Interface:
    """An interface with every IPv4 address it has, in the order they were added.

    The engine's ``Interface.addresses`` holds only the primary IPv4 address;
    the full list is the inet domain's.
    """
    inet = getattr(engine, "inet", None)
    addresses = inet.addresses(ifp) if hasattr(inet, "addresses") else None
    return interface_to_pb(ifp, addresses)


def _tap_closed(tap: Any) -> bool:
    """The engine closed the tap (``router.ng.tap.Tap.closed``): its interface is gone."""
    return bool(getattr(tap.handle, "closed", False))


def _wanted(event: Event, kinds: set[str], ifname: str) -> bool:
    return (not kinds or event.kind.value in kinds) and (not ifname or event.ifname == ifname)


def _frame_pb(ifname: str, frame: Any, offset: float = 0.0) -> types_pb2.CapturedFrame:
    direction = convert.enum_text(convert.pick(frame, "direction", default="in")).lower()
    data = bytes(convert.pick(frame, "data", "frame", default=b""))
    return types_pb2.CapturedFrame(
        timestamp=float(convert.pick(frame, "timestamp", "now", default=0.0)) + offset,
        ifname=ifname,
        direction=types_pb2.DIRECTION_OUT if direction.startswith("out")
        else types_pb2.DIRECTION_IN,
        data=data,
        length=int(convert.pick(frame, "length", default=len(data))),
    )


class _HookFeeder:
    """Reads a hook client's packets on its own thread and feeds them to the engine.

    gRPC's bidirectional streams are read and written from different threads
    in the sync server. When the client closes its side, or a send fails, the
    mailbox is closed so the reply loop ends; the error (if any) is re-raised
    there so the call ends with its status.
    """

    def __init__(self, gate: Gate, handle: Any, mailbox: Mailbox[bytes]) -> None:
        self._gate = gate
        self._handle = handle
        self._mailbox = mailbox
        self._error: RouterError | None = None

    def send(self, packets: list[bytes]) -> None:
        if packets:
            handle = self._handle
            self._gate.call(lambda e: [e.hook_send(handle, p) for p in packets])

    def start(self, requests: Iterator[agent_pb2.HookRequest]) -> None:
        threading.Thread(target=self._run, args=(requests,), daemon=True,
                         name="vrc-hook-feeder").start()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self, requests: Iterator[agent_pb2.HookRequest]) -> None:
        try:
            for request in requests:
                self.send(list(request.packets))
        except RouterError as error:
            self._error = error
        except grpc.RpcError:
            pass  # the client went away; the reply loop notices too
        finally:
            self._mailbox.close()

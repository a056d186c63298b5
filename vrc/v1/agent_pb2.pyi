from vrc.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InterfaceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERFACE_MODE_UNSPECIFIED: _ClassVar[InterfaceMode]
    INTERFACE_MODE_POINT_TO_POINT: _ClassVar[InterfaceMode]
    INTERFACE_MODE_BROADCAST: _ClassVar[InterfaceMode]

class AddressField(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADDRESS_FIELD_UNSPECIFIED: _ClassVar[AddressField]
    ADDRESS_FIELD_ADDRESS: _ClassVar[AddressField]
    ADDRESS_FIELD_BROADCAST: _ClassVar[AddressField]
    ADDRESS_FIELD_DESTINATION: _ClassVar[AddressField]
    ADDRESS_FIELD_NETMASK: _ClassVar[AddressField]

class QueryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_KIND_UNSPECIFIED: _ClassVar[QueryKind]
    QUERY_KIND_LOCAL_SUBNET: _ClassVar[QueryKind]
    QUERY_KIND_LOCAL_ADDRESS: _ClassVar[QueryKind]
    QUERY_KIND_CAN_FORWARD: _ClassVar[QueryKind]
    QUERY_KIND_BROADCAST: _ClassVar[QueryKind]
INTERFACE_MODE_UNSPECIFIED: InterfaceMode
INTERFACE_MODE_POINT_TO_POINT: InterfaceMode
INTERFACE_MODE_BROADCAST: InterfaceMode
ADDRESS_FIELD_UNSPECIFIED: AddressField
ADDRESS_FIELD_ADDRESS: AddressField
ADDRESS_FIELD_BROADCAST: AddressField
ADDRESS_FIELD_DESTINATION: AddressField
ADDRESS_FIELD_NETMASK: AddressField
QUERY_KIND_UNSPECIFIED: QueryKind
QUERY_KIND_LOCAL_SUBNET: QueryKind
QUERY_KIND_LOCAL_ADDRESS: QueryKind
QUERY_KIND_CAN_FORWARD: QueryKind
QUERY_KIND_BROADCAST: QueryKind

class ListInterfacesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInterfacesResponse(_message.Message):
    __slots__ = ("interfaces",)
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    interfaces: _containers.RepeatedCompositeFieldContainer[_types_pb2.Interface]
    def __init__(self, interfaces: _Optional[_Iterable[_Union[_types_pb2.Interface, _Mapping]]] = ...) -> None: ...

class GetInterfaceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateVirtualInterfaceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DestroyVirtualInterfaceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DestroyVirtualInterfaceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetInterfaceRequest(_message.Message):
    __slots__ = ("name", "up", "mtu", "mode")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    up: bool
    mtu: int
    mode: InterfaceMode
    def __init__(self, name: _Optional[str] = ..., up: _Optional[bool] = ..., mtu: _Optional[int] = ..., mode: _Optional[_Union[InterfaceMode, str]] = ...) -> None: ...

class AddAliasRequest(_message.Message):
    __slots__ = ("ifname", "address", "broadcast", "destination", "vhid", "probes")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    VHID_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    address: str
    broadcast: str
    destination: str
    vhid: int
    probes: int
    def __init__(self, ifname: _Optional[str] = ..., address: _Optional[str] = ..., broadcast: _Optional[str] = ..., destination: _Optional[str] = ..., vhid: _Optional[int] = ..., probes: _Optional[int] = ...) -> None: ...

class AddAliasResponse(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: _types_pb2.Address
    def __init__(self, address: _Optional[_Union[_types_pb2.Address, _Mapping]] = ...) -> None: ...

class DeleteAliasRequest(_message.Message):
    __slots__ = ("ifname", "address")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    address: str
    def __init__(self, ifname: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class DeleteAliasResponse(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: _types_pb2.Address
    def __init__(self, address: _Optional[_Union[_types_pb2.Address, _Mapping]] = ...) -> None: ...

class GetAddressRequest(_message.Message):
    __slots__ = ("ifname", "address", "field")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    address: str
    field: AddressField
    def __init__(self, ifname: _Optional[str] = ..., address: _Optional[str] = ..., field: _Optional[_Union[AddressField, str]] = ...) -> None: ...

class GetAddressResponse(_message.Message):
    __slots__ = ("address", "value")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    address: _types_pb2.Address
    value: str
    def __init__(self, address: _Optional[_Union[_types_pb2.Address, _Mapping]] = ..., value: _Optional[str] = ...) -> None: ...

class ListRoutesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoutesResponse(_message.Message):
    __slots__ = ("routes",)
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[_types_pb2.Route]
    def __init__(self, routes: _Optional[_Iterable[_Union[_types_pb2.Route, _Mapping]]] = ...) -> None: ...

class AddRouteRequest(_message.Message):
    __slots__ = ("prefix", "gateway", "ifname", "next_hops", "replace")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOPS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    gateway: str
    ifname: str
    next_hops: _containers.RepeatedCompositeFieldContainer[_types_pb2.RouteNextHop]
    replace: bool
    def __init__(self, prefix: _Optional[str] = ..., gateway: _Optional[str] = ..., ifname: _Optional[str] = ..., next_hops: _Optional[_Iterable[_Union[_types_pb2.RouteNextHop, _Mapping]]] = ..., replace: _Optional[bool] = ...) -> None: ...

class AddRouteResponse(_message.Message):
    __slots__ = ("route",)
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    route: _types_pb2.Route
    def __init__(self, route: _Optional[_Union[_types_pb2.Route, _Mapping]] = ...) -> None: ...

class DeleteRouteRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class DeleteRouteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListArpRequest(_message.Message):
    __slots__ = ("ifname",)
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    def __init__(self, ifname: _Optional[str] = ...) -> None: ...

class ListArpResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.ArpEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_types_pb2.ArpEntry, _Mapping]]] = ...) -> None: ...

class SetArpRequest(_message.Message):
    __slots__ = ("ifname", "ip", "mac", "published")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    ip: str
    mac: str
    published: bool
    def __init__(self, ifname: _Optional[str] = ..., ip: _Optional[str] = ..., mac: _Optional[str] = ..., published: _Optional[bool] = ...) -> None: ...

class SetArpResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: _types_pb2.ArpEntry
    def __init__(self, entry: _Optional[_Union[_types_pb2.ArpEntry, _Mapping]] = ...) -> None: ...

class DeleteArpRequest(_message.Message):
    __slots__ = ("ifname", "ip")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    ip: str
    def __init__(self, ifname: _Optional[str] = ..., ip: _Optional[str] = ...) -> None: ...

class DeleteArpResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FlushArpRequest(_message.Message):
    __slots__ = ("ifname",)
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    def __init__(self, ifname: _Optional[str] = ...) -> None: ...

class FlushArpResponse(_message.Message):
    __slots__ = ("flushed",)
    FLUSHED_FIELD_NUMBER: _ClassVar[int]
    flushed: int
    def __init__(self, flushed: _Optional[int] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("same_prefix",)
    SAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    same_prefix: _types_pb2.Policy
    def __init__(self, same_prefix: _Optional[_Union[_types_pb2.Policy, str]] = ...) -> None: ...

class PolicyResponse(_message.Message):
    __slots__ = ("same_prefix",)
    SAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    same_prefix: _types_pb2.Policy
    def __init__(self, same_prefix: _Optional[_Union[_types_pb2.Policy, str]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("kind", "address", "ifname")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    kind: QueryKind
    address: str
    ifname: str
    def __init__(self, kind: _Optional[_Union[QueryKind, str]] = ..., address: _Optional[str] = ..., ifname: _Optional[str] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: bool
    def __init__(self, result: _Optional[bool] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("after_seq", "kinds", "ifname")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    kinds: _containers.RepeatedScalarFieldContainer[str]
    ifname: str
    def __init__(self, after_seq: _Optional[int] = ..., kinds: _Optional[_Iterable[str]] = ..., ifname: _Optional[str] = ...) -> None: ...

class CaptureRequest(_message.Message):
    __slots__ = ("ifname", "count", "snaplen")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SNAPLEN_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    count: int
    snaplen: int
    def __init__(self, ifname: _Optional[str] = ..., count: _Optional[int] = ..., snaplen: _Optional[int] = ...) -> None: ...

class HookAttach(_message.Message):
    __slots__ = ("ifname", "hook")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    HOOK_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    hook: str
    def __init__(self, ifname: _Optional[str] = ..., hook: _Optional[str] = ...) -> None: ...

class HookRequest(_message.Message):
    __slots__ = ("attach", "packets")
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    attach: HookAttach
    packets: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, attach: _Optional[_Union[HookAttach, _Mapping]] = ..., packets: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HookResponse(_message.Message):
    __slots__ = ("attached", "packets")
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    attached: bool
    packets: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, attached: _Optional[bool] = ..., packets: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DropCount(_message.Message):
    __slots__ = ("reason", "count")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    reason: str
    count: int
    def __init__(self, reason: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ArpStateCount(_message.Message):
    __slots__ = ("state", "count")
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    state: str
    count: int
    def __init__(self, state: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class InterfaceStats(_message.Message):
    __slots__ = ("ifname", "up", "mtu", "counters", "arp_entries", "arp_states")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    ARP_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ARP_STATES_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    up: bool
    mtu: int
    counters: _types_pb2.Counters
    arp_entries: int
    arp_states: _containers.RepeatedCompositeFieldContainer[ArpStateCount]
    def __init__(self, ifname: _Optional[str] = ..., up: _Optional[bool] = ..., mtu: _Optional[int] = ..., counters: _Optional[_Union[_types_pb2.Counters, _Mapping]] = ..., arp_entries: _Optional[int] = ..., arp_states: _Optional[_Iterable[_Union[ArpStateCount, _Mapping]]] = ...) -> None: ...

class ProtocolCounter(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...

class LinkStats(_message.Message):
    __slots__ = ("ifname", "receive_frames", "transmit_frames", "transmit_errors", "transmit_oversize", "ring_drops", "promiscuous", "receive_offload_frames", "receive_copies", "receive_truncated", "receive_local_frames")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_FRAMES_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_OVERSIZE_FIELD_NUMBER: _ClassVar[int]
    RING_DROPS_FIELD_NUMBER: _ClassVar[int]
    PROMISCUOUS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_OFFLOAD_FRAMES_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_COPIES_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_LOCAL_FRAMES_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    receive_frames: int
    transmit_frames: int
    transmit_errors: int
    transmit_oversize: int
    ring_drops: int
    promiscuous: bool
    receive_offload_frames: int
    receive_copies: int
    receive_truncated: int
    receive_local_frames: int
    def __init__(self, ifname: _Optional[str] = ..., receive_frames: _Optional[int] = ..., transmit_frames: _Optional[int] = ..., transmit_errors: _Optional[int] = ..., transmit_oversize: _Optional[int] = ..., ring_drops: _Optional[int] = ..., promiscuous: _Optional[bool] = ..., receive_offload_frames: _Optional[int] = ..., receive_copies: _Optional[int] = ..., receive_truncated: _Optional[int] = ..., receive_local_frames: _Optional[int] = ...) -> None: ...

class DataplaneStats(_message.Message):
    __slots__ = ("iterations", "frames_in", "frames_out", "timer_runs", "unroutable", "transmit_failed", "errors", "busy_poll_hits", "busy_poll_misses", "rests")
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_IN_FIELD_NUMBER: _ClassVar[int]
    FRAMES_OUT_FIELD_NUMBER: _ClassVar[int]
    TIMER_RUNS_FIELD_NUMBER: _ClassVar[int]
    UNROUTABLE_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    BUSY_POLL_HITS_FIELD_NUMBER: _ClassVar[int]
    BUSY_POLL_MISSES_FIELD_NUMBER: _ClassVar[int]
    RESTS_FIELD_NUMBER: _ClassVar[int]
    iterations: int
    frames_in: int
    frames_out: int
    timer_runs: int
    unroutable: int
    transmit_failed: int
    errors: int
    busy_poll_hits: int
    busy_poll_misses: int
    rests: int
    def __init__(self, iterations: _Optional[int] = ..., frames_in: _Optional[int] = ..., frames_out: _Optional[int] = ..., timer_runs: _Optional[int] = ..., unroutable: _Optional[int] = ..., transmit_failed: _Optional[int] = ..., errors: _Optional[int] = ..., busy_poll_hits: _Optional[int] = ..., busy_poll_misses: _Optional[int] = ..., rests: _Optional[int] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("drops", "interfaces", "fast_path_hits", "protocols", "links", "dataplane")
    DROPS_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    FAST_PATH_HITS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    DATAPLANE_FIELD_NUMBER: _ClassVar[int]
    drops: _containers.RepeatedCompositeFieldContainer[DropCount]
    interfaces: _containers.RepeatedCompositeFieldContainer[InterfaceStats]
    fast_path_hits: int
    protocols: _containers.RepeatedCompositeFieldContainer[ProtocolCounter]
    links: _containers.RepeatedCompositeFieldContainer[LinkStats]
    dataplane: DataplaneStats
    def __init__(self, drops: _Optional[_Iterable[_Union[DropCount, _Mapping]]] = ..., interfaces: _Optional[_Iterable[_Union[InterfaceStats, _Mapping]]] = ..., fast_path_hits: _Optional[int] = ..., protocols: _Optional[_Iterable[_Union[ProtocolCounter, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[LinkStats, _Mapping]]] = ..., dataplane: _Optional[_Union[DataplaneStats, _Mapping]] = ...) -> None: ...

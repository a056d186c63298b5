from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Policy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_UNSPECIFIED: _ClassVar[Policy]
    POLICY_ALLOW: _ClassVar[Policy]
    POLICY_REFUSE: _ClassVar[Policy]
    POLICY_MULTIPATH: _ClassVar[Policy]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_IN: _ClassVar[Direction]
    DIRECTION_OUT: _ClassVar[Direction]
POLICY_UNSPECIFIED: Policy
POLICY_ALLOW: Policy
POLICY_REFUSE: Policy
POLICY_MULTIPATH: Policy
DIRECTION_UNSPECIFIED: Direction
DIRECTION_IN: Direction
DIRECTION_OUT: Direction

class Counters(_message.Message):
    __slots__ = ("ipackets", "ibytes", "ierrors", "iqdrops", "imcasts", "opackets", "obytes", "oerrors", "oqdrops", "omcasts", "noproto", "collisions")
    IPACKETS_FIELD_NUMBER: _ClassVar[int]
    IBYTES_FIELD_NUMBER: _ClassVar[int]
    IERRORS_FIELD_NUMBER: _ClassVar[int]
    IQDROPS_FIELD_NUMBER: _ClassVar[int]
    IMCASTS_FIELD_NUMBER: _ClassVar[int]
    OPACKETS_FIELD_NUMBER: _ClassVar[int]
    OBYTES_FIELD_NUMBER: _ClassVar[int]
    OERRORS_FIELD_NUMBER: _ClassVar[int]
    OQDROPS_FIELD_NUMBER: _ClassVar[int]
    OMCASTS_FIELD_NUMBER: _ClassVar[int]
    NOPROTO_FIELD_NUMBER: _ClassVar[int]
    COLLISIONS_FIELD_NUMBER: _ClassVar[int]
    ipackets: int
    ibytes: int
    ierrors: int
    iqdrops: int
    imcasts: int
    opackets: int
    obytes: int
    oerrors: int
    oqdrops: int
    omcasts: int
    noproto: int
    collisions: int
    def __init__(self, ipackets: _Optional[int] = ..., ibytes: _Optional[int] = ..., ierrors: _Optional[int] = ..., iqdrops: _Optional[int] = ..., imcasts: _Optional[int] = ..., opackets: _Optional[int] = ..., obytes: _Optional[int] = ..., oerrors: _Optional[int] = ..., oqdrops: _Optional[int] = ..., omcasts: _Optional[int] = ..., noproto: _Optional[int] = ..., collisions: _Optional[int] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("address", "prefix_len", "netmask", "broadcast", "destination", "vhid", "owns_route")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_LEN_FIELD_NUMBER: _ClassVar[int]
    NETMASK_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    VHID_FIELD_NUMBER: _ClassVar[int]
    OWNS_ROUTE_FIELD_NUMBER: _ClassVar[int]
    address: str
    prefix_len: int
    netmask: str
    broadcast: str
    destination: str
    vhid: int
    owns_route: bool
    def __init__(self, address: _Optional[str] = ..., prefix_len: _Optional[int] = ..., netmask: _Optional[str] = ..., broadcast: _Optional[str] = ..., destination: _Optional[str] = ..., vhid: _Optional[int] = ..., owns_route: _Optional[bool] = ...) -> None: ...

class Interface(_message.Message):
    __slots__ = ("name", "index", "type", "flags", "flags_value", "eflags", "mtu", "mac", "state", "link_state", "counters", "addresses")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_VALUE_FIELD_NUMBER: _ClassVar[int]
    EFLAGS_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LINK_STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    index: int
    type: str
    flags: _containers.RepeatedScalarFieldContainer[str]
    flags_value: int
    eflags: _containers.RepeatedScalarFieldContainer[str]
    mtu: int
    mac: str
    state: str
    link_state: str
    counters: Counters
    addresses: _containers.RepeatedCompositeFieldContainer[Address]
    def __init__(self, name: _Optional[str] = ..., index: _Optional[int] = ..., type: _Optional[str] = ..., flags: _Optional[_Iterable[str]] = ..., flags_value: _Optional[int] = ..., eflags: _Optional[_Iterable[str]] = ..., mtu: _Optional[int] = ..., mac: _Optional[str] = ..., state: _Optional[str] = ..., link_state: _Optional[str] = ..., counters: _Optional[_Union[Counters, _Mapping]] = ..., addresses: _Optional[_Iterable[_Union[Address, _Mapping]]] = ...) -> None: ...

class RouteNextHop(_message.Message):
    __slots__ = ("gateway", "ifname", "ifindex", "usable")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    IFINDEX_FIELD_NUMBER: _ClassVar[int]
    USABLE_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    ifname: str
    ifindex: int
    usable: bool
    def __init__(self, gateway: _Optional[str] = ..., ifname: _Optional[str] = ..., ifindex: _Optional[int] = ..., usable: _Optional[bool] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("prefix", "gateway", "ifname", "ifindex", "flags", "next_hops")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    IFINDEX_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOPS_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    gateway: str
    ifname: str
    ifindex: int
    flags: _containers.RepeatedScalarFieldContainer[str]
    next_hops: _containers.RepeatedCompositeFieldContainer[RouteNextHop]
    def __init__(self, prefix: _Optional[str] = ..., gateway: _Optional[str] = ..., ifname: _Optional[str] = ..., ifindex: _Optional[int] = ..., flags: _Optional[_Iterable[str]] = ..., next_hops: _Optional[_Iterable[_Union[RouteNextHop, _Mapping]]] = ...) -> None: ...

class ArpEntry(_message.Message):
    __slots__ = ("ifname", "ip", "mac", "state", "static", "published", "local")
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATIC_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    ifname: str
    ip: str
    mac: str
    state: str
    static: bool
    published: bool
    local: bool
    def __init__(self, ifname: _Optional[str] = ..., ip: _Optional[str] = ..., mac: _Optional[str] = ..., state: _Optional[str] = ..., static: _Optional[bool] = ..., published: _Optional[bool] = ..., local: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("kind", "ifname", "ifindex", "seq", "data")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    IFINDEX_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    kind: str
    ifname: str
    ifindex: int
    seq: int
    data: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[str] = ..., ifname: _Optional[str] = ..., ifindex: _Optional[int] = ..., seq: _Optional[int] = ..., data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("events", "lost")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    lost: bool
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., lost: _Optional[bool] = ...) -> None: ...

class CapturedFrame(_message.Message):
    __slots__ = ("timestamp", "ifname", "direction", "data", "length")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    timestamp: float
    ifname: str
    direction: Direction
    data: bytes
    length: int
    def __init__(self, timestamp: _Optional[float] = ..., ifname: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., data: _Optional[bytes] = ..., length: _Optional[int] = ...) -> None: ...

class CaptureBatch(_message.Message):
    __slots__ = ("frames", "linktype", "dropped")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    LINKTYPE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[CapturedFrame]
    linktype: int
    dropped: int
    def __init__(self, frames: _Optional[_Iterable[_Union[CapturedFrame, _Mapping]]] = ..., linktype: _Optional[int] = ..., dropped: _Optional[int] = ...) -> None: ...

from vrc.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClaimRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAIM_ROLE_UNSPECIFIED: _ClassVar[ClaimRole]
    CLAIM_ROLE_OWNER: _ClassVar[ClaimRole]
    CLAIM_ROLE_STANDBY: _ClassVar[ClaimRole]
    CLAIM_ROLE_DOWN: _ClassVar[ClaimRole]

class ItemState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_STATE_UNSPECIFIED: _ClassVar[ItemState]
    ITEM_STATE_APPLIED: _ClassVar[ItemState]
    ITEM_STATE_FAILED: _ClassVar[ItemState]
    ITEM_STATE_PENDING: _ClassVar[ItemState]
    ITEM_STATE_DRIFT: _ClassVar[ItemState]

class AccessRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_ROLE_UNSPECIFIED: _ClassVar[AccessRole]
    ACCESS_ROLE_ADMIN: _ClassVar[AccessRole]
    ACCESS_ROLE_READER: _ClassVar[AccessRole]
    ACCESS_ROLE_AGENT: _ClassVar[AccessRole]
    ACCESS_ROLE_NONE: _ClassVar[AccessRole]
CLAIM_ROLE_UNSPECIFIED: ClaimRole
CLAIM_ROLE_OWNER: ClaimRole
CLAIM_ROLE_STANDBY: ClaimRole
CLAIM_ROLE_DOWN: ClaimRole
ITEM_STATE_UNSPECIFIED: ItemState
ITEM_STATE_APPLIED: ItemState
ITEM_STATE_FAILED: ItemState
ITEM_STATE_PENDING: ItemState
ITEM_STATE_DRIFT: ItemState
ACCESS_ROLE_UNSPECIFIED: AccessRole
ACCESS_ROLE_ADMIN: AccessRole
ACCESS_ROLE_READER: AccessRole
ACCESS_ROLE_AGENT: AccessRole
ACCESS_ROLE_NONE: AccessRole

class Nic(_message.Message):
    __slots__ = ("name", "mac", "mtu", "point_to_point")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    POINT_TO_POINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac: str
    mtu: int
    point_to_point: bool
    def __init__(self, name: _Optional[str] = ..., mac: _Optional[str] = ..., mtu: _Optional[int] = ..., point_to_point: _Optional[bool] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("id", "nics", "agent_endpoint", "software_version", "up", "controller", "revision", "registered_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    agent_endpoint: str
    software_version: str
    up: bool
    controller: str
    revision: int
    registered_at: float
    def __init__(self, id: _Optional[str] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., agent_endpoint: _Optional[str] = ..., software_version: _Optional[str] = ..., up: _Optional[bool] = ..., controller: _Optional[str] = ..., revision: _Optional[int] = ..., registered_at: _Optional[float] = ...) -> None: ...

class Alias(_message.Message):
    __slots__ = ("host", "ifname", "address", "broadcast", "destination", "revision")
    HOST_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    host: str
    ifname: str
    address: str
    broadcast: str
    destination: str
    revision: int
    def __init__(self, host: _Optional[str] = ..., ifname: _Optional[str] = ..., address: _Optional[str] = ..., broadcast: _Optional[str] = ..., destination: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class PrefixClaim(_message.Message):
    __slots__ = ("prefix", "host", "ifname", "role", "revision")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    host: str
    ifname: str
    role: ClaimRole
    revision: int
    def __init__(self, prefix: _Optional[str] = ..., host: _Optional[str] = ..., ifname: _Optional[str] = ..., role: _Optional[_Union[ClaimRole, str]] = ..., revision: _Optional[int] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts", "revision")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    revision: int
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class GetHostRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AddHostRequest(_message.Message):
    __slots__ = ("id", "expected_revision")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    id: str
    expected_revision: int
    def __init__(self, id: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class RemoveHostRequest(_message.Message):
    __slots__ = ("id", "cascade", "expected_revision")
    ID_FIELD_NUMBER: _ClassVar[int]
    CASCADE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    id: str
    cascade: bool
    expected_revision: int
    def __init__(self, id: _Optional[str] = ..., cascade: _Optional[bool] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class PutAliasRequest(_message.Message):
    __slots__ = ("alias", "expected_revision")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    alias: Alias
    expected_revision: int
    def __init__(self, alias: _Optional[_Union[Alias, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeleteClusterAliasRequest(_message.Message):
    __slots__ = ("host", "ifname", "address", "expected_revision")
    HOST_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    host: str
    ifname: str
    address: str
    expected_revision: int
    def __init__(self, host: _Optional[str] = ..., ifname: _Optional[str] = ..., address: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class ListAliasesRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class ListAliasesResponse(_message.Message):
    __slots__ = ("aliases", "revision")
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[Alias]
    revision: int
    def __init__(self, aliases: _Optional[_Iterable[_Union[Alias, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class PutPrefixRequest(_message.Message):
    __slots__ = ("prefix", "host", "ifname", "expected_revision")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    host: str
    ifname: str
    expected_revision: int
    def __init__(self, prefix: _Optional[str] = ..., host: _Optional[str] = ..., ifname: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeletePrefixRequest(_message.Message):
    __slots__ = ("prefix", "host", "ifname", "expected_revision")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    host: str
    ifname: str
    expected_revision: int
    def __init__(self, prefix: _Optional[str] = ..., host: _Optional[str] = ..., ifname: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class ListPrefixesRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class ListPrefixesResponse(_message.Message):
    __slots__ = ("claims", "revision")
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    claims: _containers.RepeatedCompositeFieldContainer[PrefixClaim]
    revision: int
    def __init__(self, claims: _Optional[_Iterable[_Union[PrefixClaim, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class ClusterPolicy(_message.Message):
    __slots__ = ("same_prefix", "host_overrides", "revision", "effective")
    class HostOverridesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Policy
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Policy, str]] = ...) -> None: ...
    SAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    HOST_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    same_prefix: _types_pb2.Policy
    host_overrides: _containers.ScalarMap[str, _types_pb2.Policy]
    revision: int
    effective: _types_pb2.Policy
    def __init__(self, same_prefix: _Optional[_Union[_types_pb2.Policy, str]] = ..., host_overrides: _Optional[_Mapping[str, _types_pb2.Policy]] = ..., revision: _Optional[int] = ..., effective: _Optional[_Union[_types_pb2.Policy, str]] = ...) -> None: ...

class GetClusterPolicyRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class SetClusterPolicyRequest(_message.Message):
    __slots__ = ("same_prefix", "host", "clear", "expected_revision")
    SAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    same_prefix: _types_pb2.Policy
    host: str
    clear: bool
    expected_revision: int
    def __init__(self, same_prefix: _Optional[_Union[_types_pb2.Policy, str]] = ..., host: _Optional[str] = ..., clear: _Optional[bool] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class WatchConfigRequest(_message.Message):
    __slots__ = ("after_revision",)
    AFTER_REVISION_FIELD_NUMBER: _ClassVar[int]
    after_revision: int
    def __init__(self, after_revision: _Optional[int] = ...) -> None: ...

class ConfigChange(_message.Message):
    __slots__ = ("action", "revision", "host", "alias", "claim", "policy")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTION_UNSPECIFIED: _ClassVar[ConfigChange.Action]
        ACTION_PUT: _ClassVar[ConfigChange.Action]
        ACTION_DELETE: _ClassVar[ConfigChange.Action]
    ACTION_UNSPECIFIED: ConfigChange.Action
    ACTION_PUT: ConfigChange.Action
    ACTION_DELETE: ConfigChange.Action
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    action: ConfigChange.Action
    revision: int
    host: Host
    alias: Alias
    claim: PrefixClaim
    policy: ClusterPolicy
    def __init__(self, action: _Optional[_Union[ConfigChange.Action, str]] = ..., revision: _Optional[int] = ..., host: _Optional[_Union[Host, _Mapping]] = ..., alias: _Optional[_Union[Alias, _Mapping]] = ..., claim: _Optional[_Union[PrefixClaim, _Mapping]] = ..., policy: _Optional[_Union[ClusterPolicy, _Mapping]] = ...) -> None: ...

class ConfigBatch(_message.Message):
    __slots__ = ("changes", "revision", "snapshot", "resync", "more")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ConfigChange]
    revision: int
    snapshot: bool
    resync: bool
    more: bool
    def __init__(self, changes: _Optional[_Iterable[_Union[ConfigChange, _Mapping]]] = ..., revision: _Optional[int] = ..., snapshot: _Optional[bool] = ..., resync: _Optional[bool] = ..., more: _Optional[bool] = ...) -> None: ...

class ItemStatus(_message.Message):
    __slots__ = ("key", "state", "error", "code", "version")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key: str
    state: ItemState
    error: str
    code: str
    version: int
    def __init__(self, key: _Optional[str] = ..., state: _Optional[_Union[ItemState, str]] = ..., error: _Optional[str] = ..., code: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetHostStatusRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class HostStatus(_message.Message):
    __slots__ = ("host", "up", "applied_version", "desired_version", "items", "local_items", "controller", "agent_endpoint", "applied_at")
    HOST_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    APPLIED_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    AGENT_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    host: str
    up: bool
    applied_version: int
    desired_version: int
    items: _containers.RepeatedCompositeFieldContainer[ItemStatus]
    local_items: _containers.RepeatedCompositeFieldContainer[SyncItem]
    controller: str
    agent_endpoint: str
    applied_at: float
    def __init__(self, host: _Optional[str] = ..., up: _Optional[bool] = ..., applied_version: _Optional[int] = ..., desired_version: _Optional[int] = ..., items: _Optional[_Iterable[_Union[ItemStatus, _Mapping]]] = ..., local_items: _Optional[_Iterable[_Union[SyncItem, _Mapping]]] = ..., controller: _Optional[str] = ..., agent_endpoint: _Optional[str] = ..., applied_at: _Optional[float] = ...) -> None: ...

class GetFleetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FleetStatus(_message.Message):
    __slots__ = ("watermark", "watermark_at", "revision", "hosts_up", "hosts_down", "lagging")
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_AT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    HOSTS_UP_FIELD_NUMBER: _ClassVar[int]
    HOSTS_DOWN_FIELD_NUMBER: _ClassVar[int]
    LAGGING_FIELD_NUMBER: _ClassVar[int]
    watermark: int
    watermark_at: float
    revision: int
    hosts_up: int
    hosts_down: int
    lagging: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, watermark: _Optional[int] = ..., watermark_at: _Optional[float] = ..., revision: _Optional[int] = ..., hosts_up: _Optional[int] = ..., hosts_down: _Optional[int] = ..., lagging: _Optional[_Iterable[str]] = ...) -> None: ...

class SyncItem(_message.Message):
    __slots__ = ("key", "alias", "route", "policy", "fingerprint")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    key: str
    alias: Alias
    route: SyncRoute
    policy: _types_pb2.Policy
    fingerprint: str
    def __init__(self, key: _Optional[str] = ..., alias: _Optional[_Union[Alias, _Mapping]] = ..., route: _Optional[_Union[SyncRoute, _Mapping]] = ..., policy: _Optional[_Union[_types_pb2.Policy, str]] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class NextHop(_message.Message):
    __slots__ = ("gateway", "ifname", "via_host")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    VIA_HOST_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    ifname: str
    via_host: str
    def __init__(self, gateway: _Optional[str] = ..., ifname: _Optional[str] = ..., via_host: _Optional[str] = ...) -> None: ...

class SyncRoute(_message.Message):
    __slots__ = ("prefix", "next_hops", "hops", "owner")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOPS_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    next_hops: _containers.RepeatedCompositeFieldContainer[NextHop]
    hops: int
    owner: str
    def __init__(self, prefix: _Optional[str] = ..., next_hops: _Optional[_Iterable[_Union[NextHop, _Mapping]]] = ..., hops: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class SyncHello(_message.Message):
    __slots__ = ("host_id", "agent_endpoint", "nics", "software_version", "applied_version", "local_items")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ITEMS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    agent_endpoint: str
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    software_version: str
    applied_version: int
    local_items: _containers.RepeatedCompositeFieldContainer[SyncItem]
    def __init__(self, host_id: _Optional[str] = ..., agent_endpoint: _Optional[str] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., software_version: _Optional[str] = ..., applied_version: _Optional[int] = ..., local_items: _Optional[_Iterable[_Union[SyncItem, _Mapping]]] = ...) -> None: ...

class SyncItemError(_message.Message):
    __slots__ = ("key", "code", "message", "fingerprint")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    key: str
    code: str
    message: str
    fingerprint: str
    def __init__(self, key: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class SyncAck(_message.Message):
    __slots__ = ("version", "errors", "drift", "local_items", "report")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ITEMS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    version: int
    errors: _containers.RepeatedCompositeFieldContainer[SyncItemError]
    drift: _containers.RepeatedCompositeFieldContainer[SyncItemError]
    local_items: _containers.RepeatedCompositeFieldContainer[SyncItem]
    report: bool
    def __init__(self, version: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[SyncItemError, _Mapping]]] = ..., drift: _Optional[_Iterable[_Union[SyncItemError, _Mapping]]] = ..., local_items: _Optional[_Iterable[_Union[SyncItem, _Mapping]]] = ..., report: _Optional[bool] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("hello", "ack")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    hello: SyncHello
    ack: SyncAck
    def __init__(self, hello: _Optional[_Union[SyncHello, _Mapping]] = ..., ack: _Optional[_Union[SyncAck, _Mapping]] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("version", "snapshot", "upserts", "removals", "more", "controller")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    UPSERTS_FIELD_NUMBER: _ClassVar[int]
    REMOVALS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    version: int
    snapshot: bool
    upserts: _containers.RepeatedCompositeFieldContainer[SyncItem]
    removals: _containers.RepeatedScalarFieldContainer[str]
    more: bool
    controller: str
    def __init__(self, version: _Optional[int] = ..., snapshot: _Optional[bool] = ..., upserts: _Optional[_Iterable[_Union[SyncItem, _Mapping]]] = ..., removals: _Optional[_Iterable[str]] = ..., more: _Optional[bool] = ..., controller: _Optional[str] = ...) -> None: ...

class AgentSyncState(_message.Message):
    __slots__ = ("format", "host_id", "version", "items", "saved_at", "controller")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SAVED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    format: int
    host_id: str
    version: int
    items: _containers.RepeatedCompositeFieldContainer[SyncItem]
    saved_at: float
    controller: str
    def __init__(self, format: _Optional[int] = ..., host_id: _Optional[str] = ..., version: _Optional[int] = ..., items: _Optional[_Iterable[_Union[SyncItem, _Mapping]]] = ..., saved_at: _Optional[float] = ..., controller: _Optional[str] = ...) -> None: ...

class AccessEntry(_message.Message):
    __slots__ = ("identity", "role", "source", "revision", "granted_by", "granted_at")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    GRANTED_BY_FIELD_NUMBER: _ClassVar[int]
    GRANTED_AT_FIELD_NUMBER: _ClassVar[int]
    identity: str
    role: AccessRole
    source: str
    revision: int
    granted_by: str
    granted_at: float
    def __init__(self, identity: _Optional[str] = ..., role: _Optional[_Union[AccessRole, str]] = ..., source: _Optional[str] = ..., revision: _Optional[int] = ..., granted_by: _Optional[str] = ..., granted_at: _Optional[float] = ...) -> None: ...

class ListAccessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAccessResponse(_message.Message):
    __slots__ = ("entries", "revision")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AccessEntry]
    revision: int
    def __init__(self, entries: _Optional[_Iterable[_Union[AccessEntry, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class GrantAccessRequest(_message.Message):
    __slots__ = ("identity", "role", "expected_revision")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    identity: str
    role: AccessRole
    expected_revision: int
    def __init__(self, identity: _Optional[str] = ..., role: _Optional[_Union[AccessRole, str]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class RevokeAccessRequest(_message.Message):
    __slots__ = ("identity", "expected_revision")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    identity: str
    expected_revision: int
    def __init__(self, identity: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HistoryChange(_message.Message):
    __slots__ = ("key", "previous", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    previous: str
    value: str
    def __init__(self, key: _Optional[str] = ..., previous: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("revision", "at", "identity", "operation", "subject", "hosts", "replica", "changes", "omitted")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    OMITTED_FIELD_NUMBER: _ClassVar[int]
    revision: int
    at: float
    identity: str
    operation: str
    subject: str
    hosts: _containers.RepeatedScalarFieldContainer[str]
    replica: str
    changes: _containers.RepeatedCompositeFieldContainer[HistoryChange]
    omitted: int
    def __init__(self, revision: _Optional[int] = ..., at: _Optional[float] = ..., identity: _Optional[str] = ..., operation: _Optional[str] = ..., subject: _Optional[str] = ..., hosts: _Optional[_Iterable[str]] = ..., replica: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[HistoryChange, _Mapping]]] = ..., omitted: _Optional[int] = ...) -> None: ...

class ListHistoryRequest(_message.Message):
    __slots__ = ("host", "since", "limit")
    HOST_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    host: str
    since: float
    limit: int
    def __init__(self, host: _Optional[str] = ..., since: _Optional[float] = ..., limit: _Optional[int] = ...) -> None: ...

class ListHistoryResponse(_message.Message):
    __slots__ = ("entries", "revision")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    revision: int
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class WatchHistoryRequest(_message.Message):
    __slots__ = ("host", "since", "after_revision")
    HOST_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    AFTER_REVISION_FIELD_NUMBER: _ClassVar[int]
    host: str
    since: float
    after_revision: int
    def __init__(self, host: _Optional[str] = ..., since: _Optional[float] = ..., after_revision: _Optional[int] = ...) -> None: ...

class HistoryBatch(_message.Message):
    __slots__ = ("entries", "revision", "snapshot")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    revision: int
    snapshot: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., revision: _Optional[int] = ..., snapshot: _Optional[bool] = ...) -> None: ...

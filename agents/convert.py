"""Engine objects ↔ protobuf messages, and request validation at the edge.

Parsing functions take the request field's name and raise
``RouterError(EINVAL, field, value)`` (INVALID_ARGUMENT at the gRPC edge) with
a reason, so a bad IP string never reaches the engine and the user is told
which field to fix. They return normalised text, which is what the Engine
facade accepts. Numbers and hex digits are ASCII only (:mod:`serving.numbers`):
``10.9.9.1/²`` and Arabic-Indic digits are refused, not half-parsed.

:func:`check_requests_of` checks every enum field of every request before
its handler runs: proto3 enums are open, so a client can send ``mode=99``,
which would otherwise read as "unspecified".

Rendering functions read engine objects by attribute (or key, for the plain
dicts some facade calls return) and never touch engine state.
"""

from __future__ import annotations

import enum
import functools
import inspect
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from google.protobuf.message import Message

from agents.errors import invalid
from router import Event, IfExtFlags, IfFlags
from serving.numbers import in_range
from vrc.v1 import agent_pb2, types_pb2

MAX_PLEN = 32
_MISSING = object()
_MAC_BYTE = re.compile(r"[0-9A-Fa-f]{1,2}")


# --- request validation --------------------------------------------------------------


def require(field: str, value: str) -> str:
    """A mandatory string field (an interface name, a hook name)."""
    if not value:
        raise invalid(field, value, "is required")
    return value


def parse_ipv4(field: str, text: str, whole: str | None = None) -> str:
    """A dotted-quad IPv4 address, normalised (``010.0.0.1`` is refused, as inet_pton does).

    ``whole`` is the complete field value when ``text`` is only part of it
    (the address of ``A/LEN``), so the error shows what the user typed.
    """
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise invalid(field, text if whole is None else whole, "not an IPv4 address") from None


def optional_ipv4(field: str, text: str) -> str | None:
    """An IPv4 address that may be left empty (None then)."""
    return parse_ipv4(field, text) if text else None


def parse_prefix_len(field: str, text: str, whole: str) -> int:
    """The ``LEN`` of ``A/LEN``: ASCII digits, 0..32 (``/024`` is 24, as ``ip`` reads it)."""
    length = in_range(text, 0, MAX_PLEN)
    if length is None:
        raise invalid(field, whole, "prefix length must be 0..32 (digits 0-9)")
    return length


def parse_alias(field: str, text: str) -> str:
    """``A`` or ``A/LEN`` for an alias: host bits may be set; no LEN means classful."""
    address, slash, plen = text.partition("/")
    address = parse_ipv4(field, address, text)
    if not slash:
        return address
    return f"{address}/{parse_prefix_len(field, plen, text)}"


def parse_prefix(field: str, text: str) -> str:
    """``A/LEN`` for a route: the length is required; host bits are cleared."""
    address, slash, plen = text.partition("/")
    if not slash:
        raise invalid(field, text, "expected ADDRESS/LEN")
    length = parse_prefix_len(field, plen, text)
    parse_ipv4(field, address, text)
    return str(ipaddress.IPv4Network(f"{address}/{length}", strict=False))


def parse_mac(field: str, text: str) -> bytes:
    """A 48-bit MAC address, ``02:00:00:00:00:01`` or with ``-`` separators."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(_MAC_BYTE.fullmatch(p) for p in parts):
        raise invalid(field, text, "not a MAC address (six hex bytes)")
    return bytes(int(p, 16) for p in parts)


# --- enums: proto3 lets any number through ----------------------------------------------


def check_enums(message: Message, prefix: str = "") -> None:
    """EINVAL naming the field and the number for any enum value the proto does not define.

    Nested messages are checked too (``attach.kind``); the field is named by
    its path.
    """
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.enum_type is not None:
            values = value if field.is_repeated else (value,)
            for number in values:
                if number not in field.enum_type.values_by_number:
                    names = ", ".join(v.name for v in field.enum_type.values)
                    raise invalid(path, number, f"unknown {field.enum_type.name} value; "
                                  f"expected one of {names}")
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            children = value if field.is_repeated else (value,)
            for child in children:
                check_enums(child, f"{path}.")


def check_requests_of(cls: type) -> type:
    """Class decorator: every RPC (CamelCase method) checks its request's enums first.

    Apply it inside :func:`agents.errors.map_errors_of` so the refusal is
    mapped to INVALID_ARGUMENT. Requests that arrive as a stream (``Hook``)
    are messages without enums today; their handlers check what they read.
    """
    for name, member in list(vars(cls).items()):
        if callable(member) and name[:1].isupper():
            setattr(cls, name, _checked(member))
    return cls


def _checked(handler: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def stream(self: Any, request: Any, context: Any) -> Iterator[Any]:
            if isinstance(request, Message):
                check_enums(request)
            yield from handler(self, request, context)

        return stream

    @functools.wraps(handler)
    def unary(self: Any, request: Any, context: Any) -> Any:
        if isinstance(request, Message):
            check_enums(request)
        return handler(self, request, context)

    return unary


# --- engine objects → messages ---------------------------------------------------------


def pick(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` that ``obj`` has, as an attribute or a mapping key."""
    for name in names:
        if isinstance(obj, Mapping):
            value = obj.get(name, _MISSING)
        else:
            value = getattr(obj, name, _MISSING)
        if value is not _MISSING:
            return value
    return default


def address_text(value: Any, zero: str = "") -> str:
    """Dotted quad from an int, an ipaddress object or text; ``zero`` for None/0
    (empty: "not set", for a broadcast or gateway; "0.0.0.0" for an address itself)."""
    if value is None or value == 0 or value == "":
        return zero
    if isinstance(value, int):
        return str(ipaddress.IPv4Address(value))
    return str(value)


def mac_text(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return ":".join(f"{b:02x}" for b in bytes(value))
    return str(value)


def flag_names(flags: Any) -> list[str]:
    """Names of the bits set in an IntFlag (or a list of names already)."""
    if flags is None:
        return []
    if isinstance(flags, str):
        return [f for f in flags.replace(",", "|").split("|") if f and f != "NONE"]
    if isinstance(flags, enum.Flag):
        return [member.name for member in flags if member.name]
    return [str(f) for f in flags]


def enum_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return value.name if isinstance(value.value, int) else str(value.value)
    return str(value)


def plen_of(mask: Any) -> int:
    if isinstance(mask, int):
        return mask.bit_count()
    if isinstance(mask, str) and mask:
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    return 0


def address_to_pb(addr: Any) -> types_pb2.Address:
    """An IPv4 alias record (``InAddr`` or a get_address dict) as a message."""
    mask = pick(addr, "mask", "netmask")
    plen = pick(addr, "plen", "prefix_len", "prefixlen")
    if plen is None:
        plen = plen_of(mask)
    if mask is None:
        mask = ((1 << 32) - 1) ^ ((1 << (32 - plen)) - 1)
    broadcast = pick(addr, "broadcast", "broadaddr")
    destination = pick(addr, "dest", "dstaddr", "destination")
    flags = pick(pick(addr, "ifp"), "flags")
    if isinstance(flags, int):  # plain int in the engine, IfFlags elsewhere
        # The engine keeps broadcast and destination in one slot (the seed's
        # ia_broadaddr/ia_dstaddr union); show the one the interface has.
        broadcast = broadcast if flags & IfFlags.BROADCAST else None
        destination = destination if flags & IfFlags.POINTOPOINT else None
    return types_pb2.Address(
        address=address_text(pick(addr, "addr", "address"), zero="0.0.0.0"),
        prefix_len=int(plen),
        netmask=address_text(mask) or "0.0.0.0",
        broadcast=address_text(broadcast),
        destination=address_text(destination),
        vhid=int(pick(addr, "vhid", default=0) or 0),
        owns_route=bool(pick(addr, "owns_route", "has_route", default=False)),
    )


def counters_to_pb(counters: Any) -> types_pb2.Counters:
    values = counters.as_dict() if hasattr(counters, "as_dict") else dict(counters or {})
    known = set(types_pb2.Counters.DESCRIPTOR.fields_by_name)
    return types_pb2.Counters(**{k: int(v) for k, v in values.items() if k in known})


def _is_inet(addr: Any) -> bool:
    family = pick(addr, "family", default=None)
    return family in (None, 2) and pick(addr, "lladdr", default=None) is None


def interface_to_pb(ifp: Any, addresses: Iterable[Any] | None = None) -> types_pb2.Interface:
    """An interface as a message; ``addresses`` (all its IPv4 addresses) when the caller
    has them, else what ``ifp.addresses`` holds."""
    if addresses is None:
        addresses = pick(ifp, "addresses", default=[])
    flags = pick(ifp, "flags", default=0)
    eflags = pick(ifp, "eflags")
    # the engine keeps interface flags as plain ints (fast on the packet path)
    if type(flags) is int:
        flags = IfFlags(flags)
    if type(eflags) is int:
        eflags = IfExtFlags(eflags)
    return types_pb2.Interface(
        name=str(pick(ifp, "name", default="")),
        index=int(pick(ifp, "index", default=0)),
        type=enum_text(pick(ifp, "type")),
        flags=flag_names(flags),
        flags_value=int(flags) if isinstance(flags, int) else 0,
        eflags=flag_names(eflags),
        mtu=int(pick(ifp, "mtu", default=0)),
        mac=mac_text(pick(ifp, "lladdr", "mac")),
        state=enum_text(pick(ifp, "state")),
        link_state=enum_text(pick(ifp, "link_state")),
        counters=counters_to_pb(pick(ifp, "counters")),
        addresses=[address_to_pb(a) for a in addresses if _is_inet(a)],
    )


def route_to_pb(route: Any, usable: Callable[[Any], bool] | None = None) -> types_pb2.Route:
    """A route, with its legs when it has several (``usable`` says which are)."""
    prefix = pick(route, "prefix", "dst")
    plen = pick(route, "plen", "prefix_len")
    text = address_text(prefix) or "0.0.0.0"
    if plen is not None and "/" not in text:
        text = f"{text}/{plen}"
    return types_pb2.Route(
        prefix=text,
        gateway=address_text(pick(route, "gateway")),
        ifname=str(pick(route, "ifname", default="") or ""),
        ifindex=int(pick(route, "ifindex", default=0) or 0),
        flags=flag_names(pick(route, "flags")),
        next_hops=[types_pb2.RouteNextHop(gateway=address_text(hop.gateway), ifname=hop.ifname,
                                          ifindex=hop.ifindex,
                                          usable=usable(hop) if usable is not None else True)
                   for hop in pick(route, "nexthops", default=()) or ()],
    )


def arp_to_pb(entry: Any) -> types_pb2.ArpEntry:
    return types_pb2.ArpEntry(
        ifname=str(pick(entry, "ifname", default="") or ""),
        ip=address_text(pick(entry, "ip", "addr", "address")),
        mac=mac_text(pick(entry, "mac", "lladdr")),
        state=enum_text(pick(entry, "state")),
        static=bool(pick(entry, "static", "is_static", default=False)),
        published=bool(pick(entry, "published", "pub", default=False)),
        local=bool(pick(entry, "local", "ifaddr", "is_local", default=False)),
    )


def event_to_pb(event: Event) -> types_pb2.Event:
    return types_pb2.Event(
        kind=enum_text(event.kind),
        ifname=event.ifname,
        ifindex=event.ifindex,
        seq=event.seq,
        data={str(k): _data_text(v) for k, v in event.data.items()},
    )


def _data_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return mac_text(value) if len(value) == 6 else bytes(value).hex()
    if isinstance(value, enum.Enum):
        return enum_text(value)
    return str(value)


def interfaces_to_pb(ifps: Iterable[Any]) -> agent_pb2.ListInterfacesResponse:
    return agent_pb2.ListInterfacesResponse(interfaces=[interface_to_pb(i) for i in ifps])

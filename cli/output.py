"""How the CLI prints: tables for people, JSON for programs, one-line frame summaries.

Every command group (the agent's now, the cluster's later) prints through
:class:`Output`, so ``-o json`` means the same everywhere.
"""

from __future__ import annotations

import datetime
import json
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from vrc.v1 import types_pb2 as tpb

EPOCH_2001 = 978307200.0  # a capture timestamp after this is UNIX time, else the engine's clock

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

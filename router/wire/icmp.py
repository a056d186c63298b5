"""ICMP for IPv4 (RFC 792): echo, destination unreachable, time exceeded, parameter problem.

Messages are the ICMP part only (no IP header); ``router.ipv4.icmp`` wraps them in
IPv4. Error messages quote the offending datagram: its header and as much of
its data as keeps the whole ICMP error datagram within 576 bytes (RFC 1812
4.3.2.3, what Linux does), never less than the header plus 8 bytes (RFC 792).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from router.wire import Malformed
from router.wire.checksum import internet_checksum

HEADER_LEN = 8

TYPE_OFF = 0
CODE_OFF = 1
CHECKSUM_OFF = 2
REST_OFF = 4

ECHO_REPLY = 0
DEST_UNREACH = 3
SOURCE_QUENCH = 4
REDIRECT = 5
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12

# Destination unreachable codes.
UNREACH_NET = 0
UNREACH_HOST = 1
UNREACH_PROTOCOL = 2
UNREACH_PORT = 3
UNREACH_FRAG_NEEDED = 4

# Time exceeded codes.
TIMX_TTL = 0
TIMX_REASSEMBLY = 1

#: The types that report an error about another datagram (never answered with one).
ERROR_TYPES = frozenset({DEST_UNREACH, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAMETER_PROBLEM})

#: The largest ICMP error datagram, IP header included (RFC 1812 4.3.2.3).
ERROR_DATAGRAM_MAX = 576
_IP_HEADER_LEN = 20

HEADER = struct.Struct("!BBHI")
_ECHO = struct.Struct("!BBHHH")
_CHECKSUM = struct.Struct("!H")

# Malformed reasons.
SHORT = "icmp_short"
BAD_CHECKSUM = "icmp_bad_checksum"


@dataclass(slots=True, frozen=True)
class IcmpMessage:
    """A parsed ICMP message; ``rest`` is the 32-bit word after the checksum."""

    type: int
    code: int
    checksum: int
    rest: int
    body: bytes

    @property
    def ident(self) -> int:
        """Echo identifier."""
        return self.rest >> 16

    @property
    def seq(self) -> int:
        """Echo sequence number."""
        return self.rest & 0xFFFF

    @property
    def next_hop_mtu(self) -> int:
        """The MTU a "fragmentation needed" message reports (RFC 1191)."""
        return self.rest & 0xFFFF

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES


def parse(message: bytes | bytearray | memoryview, *, verify_checksum: bool = True) -> IcmpMessage:
    """Check and read one ICMP message. ``Malformed`` for a short message or a bad checksum."""
    if len(message) < HEADER_LEN:
        raise Malformed(SHORT)
    if verify_checksum and internet_checksum(message) != 0:
        raise Malformed(BAD_CHECKSUM)
    icmp_type, code, checksum, rest = HEADER.unpack_from(message, 0)
    return IcmpMessage(icmp_type, code, checksum, rest, bytes(message[HEADER_LEN:]))


def peek_type(message: bytes | bytearray | memoryview) -> int | None:
    """The type byte if there is one, without any check (used to spot ICMP errors)."""
    return message[TYPE_OFF] if len(message) > TYPE_OFF else None


def emit(icmp_type: int, code: int, rest: int, body: bytes | bytearray | memoryview) -> bytes:
    """One message with its checksum."""
    message = bytearray(HEADER.pack(icmp_type, code, 0, rest))
    message += body
    _CHECKSUM.pack_into(message, CHECKSUM_OFF, internet_checksum(message))
    return bytes(message)


def echo_request(ident: int, seq: int, data: bytes = b"") -> bytes:
    return emit(ECHO_REQUEST, 0, (ident << 16) | seq, data)


def echo_reply(ident: int, seq: int, data: bytes = b"") -> bytes:
    return emit(ECHO_REPLY, 0, (ident << 16) | seq, data)


def reply_to_echo(request: bytes | bytearray | memoryview) -> bytes:
    """The echo reply for a (checked) echo request: same id, sequence and data."""
    reply = bytearray(request)
    reply[TYPE_OFF] = ECHO_REPLY
    reply[CODE_OFF] = 0
    _CHECKSUM.pack_into(reply, CHECKSUM_OFF, 0)
    _CHECKSUM.pack_into(reply, CHECKSUM_OFF, internet_checksum(reply))
    return bytes(reply)


#: Bytes of the offending datagram an error quotes: 548, always more than the
#: largest IP header (60) plus the 8 data bytes RFC 792 asks for.
QUOTE_MAX = ERROR_DATAGRAM_MAX - _IP_HEADER_LEN - HEADER_LEN


def quote(original: bytes | bytearray | memoryview) -> bytes:
    """What an error message carries of ``original``: all of it up to the 576 limit."""
    return bytes(original[:QUOTE_MAX])


def error(
    icmp_type: int,
    code: int,
    original: bytes | bytearray | memoryview,
    *,
    rest: int = 0,
) -> bytes:
    """An error message about ``original`` (the IP datagram that caused it)."""
    return emit(icmp_type, code, rest, quote(original))


def time_exceeded(original: bytes | bytearray | memoryview, code: int = TIMX_TTL) -> bytes:
    return error(TIME_EXCEEDED, code, original)


def dest_unreachable(original: bytes | bytearray | memoryview, code: int, *,
                     mtu: int = 0) -> bytes:
    """Destination unreachable; ``mtu`` is only sent with ``UNREACH_FRAG_NEEDED``."""
    rest = mtu & 0xFFFF if code == UNREACH_FRAG_NEEDED else 0
    return error(DEST_UNREACH, code, original, rest=rest)


def parameter_problem(original: bytes | bytearray | memoryview, pointer: int) -> bytes:
    """Parameter problem (code 0): ``pointer`` is the offset of the bad octet in the header."""
    return error(PARAMETER_PROBLEM, 0, original, rest=(pointer & 0xFF) << 24)

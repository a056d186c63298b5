"""IPv4 options as a router checks them on input (RFC 791, RFC 1812 5.2.4, RFC 7126).

:func:`check` walks the options of a received header the way Linux's
``ip_options_compile`` does for a datagram from the wire, and says whether
the datagram may go on:

* ``OK`` — every option is well formed (unknown options are accepted and
  forwarded as they are, as RFC 1812 5.2.4 asks);
* ``MALFORMED`` with the offset of the bad octet from the start of the IP
  header — the caller drops the datagram and answers with ICMP parameter
  problem carrying that pointer: a length below 2 or past the header, a
  single octet left where an option needs two, a record-route, source-route
  or timestamp pointer below its minimum or naming a slot that does not fit,
  a timestamp overflow count of 15, a router alert shorter than 4, a second
  record route, timestamp or source route;
* ``SOURCE_ROUTE`` — a well-formed loose or strict source route: the router
  does not source route (RFC 7126 4.3/4.4; Linux ``accept_source_route`` = 0
  drops it without an ICMP message).

:func:`fill_on_forward` then does what RFC 791 asks of a router on the way
through (as Linux's ``ip_options_compile`` and ``ip_forward_options``): a
record route with room gets the address the datagram leaves from, a
timestamp option our time (flag 0), our address and time (flag 1) or our
time where the prespecified address is ours (flag 3); one with no room left
gets its overflow count raised (flags 0 and 1). Times are milliseconds since
midnight UT, or, when the engine was not told UT, its own clock in
milliseconds with the high-order bit set, as RFC 791 allows.
"""

from __future__ import annotations

from collections.abc import Callable

from router.wire import ipv4 as ip
from router.wire.checksum import internet_checksum

OK = 0
MALFORMED = 1
SOURCE_ROUTE = 2

END = 0  # end of option list
NOOP = 1
RECORD_ROUTE = 7
TIMESTAMP = 68
LSRR = 131
SSRR = 137
ROUTER_ALERT = 148

_TS_OVERFLOW_FULL = 15


def check(header: bytes | bytearray | memoryview, header_len: int) -> tuple[int, int]:
    """``(OK, 0)``, ``(MALFORMED, pointer)`` or ``(SOURCE_ROUTE, 0)`` for the options of a
    checked header of ``header_len`` bytes (more than 20)."""
    pos = ip.MIN_HEADER_LEN
    seen: set[int] = set()
    source_route = False
    while pos < header_len:
        kind = header[pos]
        if kind == END:
            break
        if kind == NOOP:
            pos += 1
            continue
        left = header_len - pos
        if left < 2:
            return MALFORMED, pos
        length = header[pos + 1]
        if length < 2 or length > left:
            return MALFORMED, pos
        bad = _check_one(header, pos, kind, length, seen)
        if bad:
            return MALFORMED, bad
        if kind in (LSRR, SSRR):
            source_route = True
        pos += length
    return (SOURCE_ROUTE, 0) if source_route else (OK, 0)


def _check_one(header: bytes | bytearray | memoryview, pos: int, kind: int, length: int,
               seen: set[int]) -> int:
    """The pointer of the first bad octet of the option at ``pos``, or 0 if it is fine."""
    if kind in (LSRR, SSRR):
        if length < 3:
            return pos + 1
        if header[pos + 2] < 4:
            return pos + 2
        if LSRR in seen:  # one source route at most, loose or strict (RFC 1812 5.2.4.1)
            return pos
        seen.add(LSRR)
    elif kind == RECORD_ROUTE:
        if RECORD_ROUTE in seen:
            return pos
        if length < 3:
            return pos + 1
        pointer = header[pos + 2]
        if pointer < 4:
            return pos + 2
        if pointer <= length and pointer + 3 > length:
            return pos + 2  # the next slot does not fit in the option
        seen.add(RECORD_ROUTE)
    elif kind == TIMESTAMP:
        return _check_timestamp(header, pos, length, seen)
    elif kind == ROUTER_ALERT and length < 4:
        return pos + 1
    return 0


def _check_timestamp(header: bytes | bytearray | memoryview, pos: int, length: int,
                     seen: set[int]) -> int:
    if TIMESTAMP in seen:
        return pos
    if length < 4:
        return pos + 1
    pointer = header[pos + 2]
    if pointer < 5:
        return pos + 2
    flags = header[pos + 3]
    if pointer <= length:
        slot = 8 if flags & 0x0F in (1, 3) else 4  # address and timestamp, or timestamp only
        if pointer + slot - 1 > length:
            return pos + 2
    elif flags >> 4 == _TS_OVERFLOW_FULL:
        return pos + 3  # full, and the overflow count cannot grow
    seen.add(TIMESTAMP)
    return 0


TS_ONLY, TS_AND_ADDRESS, TS_PRESPECIFIED = 0, 1, 3
_NON_STANDARD_TIME = 0x80000000
_DAY_MS = 86_400_000


def timestamp(now: float, utc_offset: float | None) -> int:
    """The 32-bit time a timestamp option carries: milliseconds since midnight UT, or (no
    UT known) the engine's clock in milliseconds flagged non-standard."""
    if utc_offset is None:
        return (int(now * 1000) & 0x7FFFFFFF) | _NON_STANDARD_TIME
    return int((now + utc_offset) * 1000) % _DAY_MS


def fill_on_forward(header: bytes | bytearray | memoryview, header_len: int, source: int,
                    stamp: int, is_ours: Callable[[int], bool]) -> bytes | None:
    """The checked ``header`` (options included) as it leaves: record route and timestamp
    filled in, the checksum fixed; None when no option asks for anything. ``source`` is
    the address the datagram leaves from, ``stamp`` our time (:func:`timestamp`)."""
    raw = bytearray(header[:header_len])
    changed = False
    pos = ip.MIN_HEADER_LEN
    while pos < header_len:
        kind = raw[pos]
        if kind == END:
            break
        if kind == NOOP:
            pos += 1
            continue
        length = raw[pos + 1]
        if kind == RECORD_ROUTE:
            changed = _record(raw, pos, length, source) or changed
        elif kind == TIMESTAMP:
            changed = _stamp(raw, pos, length, source, stamp, is_ours) or changed
        pos += length
    if not changed:
        return None
    raw[10:12] = b"\0\0"
    raw[10:12] = internet_checksum(raw).to_bytes(2, "big")
    return bytes(raw)


def _record(raw: bytearray, pos: int, length: int, source: int) -> bool:
    """Our address in the next free slot of a record route; False when it is full."""
    pointer = raw[pos + 2]
    if pointer > length:
        return False
    at = pos + pointer - 1
    raw[at : at + 4] = source.to_bytes(4, "big")
    raw[pos + 2] = pointer + 4
    return True


def _stamp(raw: bytearray, pos: int, length: int, source: int, stamp: int,
           is_ours: Callable[[int], bool]) -> bool:
    """A timestamp option's next entry, or its overflow count one more when it is full."""
    pointer, flags = raw[pos + 2], raw[pos + 3]
    kind = flags & 0x0F
    if pointer > length:
        overflow = flags >> 4
        if kind == TS_PRESPECIFIED or overflow >= _TS_OVERFLOW_FULL:
            return False
        raw[pos + 3] = (overflow + 1) << 4 | kind
        return True
    at = pos + pointer - 1
    if kind == TS_ONLY:
        raw[at : at + 4] = stamp.to_bytes(4, "big")
        raw[pos + 2] = pointer + 4
    elif kind == TS_AND_ADDRESS:
        raw[at : at + 8] = source.to_bytes(4, "big") + stamp.to_bytes(4, "big")
        raw[pos + 2] = pointer + 8
    elif kind == TS_PRESPECIFIED and is_ours(int.from_bytes(raw[at : at + 4], "big")):
        raw[at + 4 : at + 8] = stamp.to_bytes(4, "big")
        raw[pos + 2] = pointer + 8
    else:
        return False  # a prespecified address not ours, or a flag we do not know
    return True

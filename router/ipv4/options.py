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

Nothing is rewritten: record route and timestamp are not filled in on the
way through (Linux fills them; vrc forwards the options unchanged).
"""

from __future__ import annotations

from router.wire import ipv4 as ip

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

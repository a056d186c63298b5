"""The Engine facade's edge: text and ``ipaddress`` values in, ints out; the event log.

Everything here runs once per API call, never per packet. Parse failures
raise ``RouterError(EINVAL, field, value)`` so the gRPC edge can name the
field to fix.
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque

from router.errors import EINVAL, RouterError
from router.events import Event

AddressLike = str | int | ipaddress.IPv4Address
PrefixLike = str | ipaddress.IPv4Network | ipaddress.IPv4Interface


def _ascii_only(field: str, value: object, what: str) -> None:
    """Refuse text with anything but ASCII: ``int`` and ``str.isdigit`` read other digits.

    Superscripts, Arabic-Indic or full-width digits are digits to Python
    but not in an address; the check does not depend on how a Python
    version's ``ipaddress`` treats them.
    """
    if isinstance(value, str) and not value.isascii():
        raise RouterError(EINVAL, field, value, detail=f"{what} (ASCII digits only)")


def parse_address(field: str, value: AddressLike) -> int:
    """An IPv4 address (dotted quad, int or ``IPv4Address``) as an int."""
    if isinstance(value, bool):
        raise RouterError(EINVAL, field, value, detail="not an IPv4 address")
    if isinstance(value, int):
        if 0 <= value <= 0xFFFFFFFF:
            return value
        raise RouterError(EINVAL, field, value, detail="not an IPv4 address")
    _ascii_only(field, value, "not an IPv4 address")
    try:
        return int(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise RouterError(EINVAL, field, value, detail="not an IPv4 address") from None


def parse_optional(field: str, value: AddressLike | None) -> int | None:
    return None if value is None or value == "" else parse_address(field, value)


def parse_alias(field: str, value: PrefixLike | AddressLike,
                mask: AddressLike | None = None) -> tuple[int, int | None]:
    """``"A/LEN"``, ``"A/MASK"``, an ``IPv4Interface``, or an address with an optional mask.

    Returns ``(address, mask)``; mask None means "not given" (the classful guess).
    """
    if isinstance(value, ipaddress.IPv4Interface):
        if mask is not None:
            raise RouterError(EINVAL, "mask", mask, detail="mask given twice")
        return int(value.ip), int(value.netmask)
    if isinstance(value, str) and "/" in value:
        _ascii_only(field, value, "not A/LEN")
        if mask is not None:
            raise RouterError(EINVAL, "mask", mask, detail="mask given twice")
        try:
            iface = ipaddress.IPv4Interface(value)
        except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
            raise RouterError(EINVAL, field, value, detail="not A/LEN") from None
        return int(iface.ip), int(iface.netmask)
    if isinstance(value, ipaddress.IPv4Network):
        raise RouterError(EINVAL, field, str(value), detail="a network, not an address")
    return parse_address(field, value), parse_optional("mask", mask)


def parse_prefix(field: str, value: PrefixLike) -> tuple[int, int]:
    """``"P/LEN"`` (host bits allowed and cleared), or a bare address as a /32."""
    _ascii_only(field, value, "not an IPv4 prefix")
    try:
        if isinstance(value, ipaddress.IPv4Interface):
            net = value.network
        else:
            net = ipaddress.IPv4Network(value, strict=False)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError, TypeError):
        raise RouterError(EINVAL, field, value, detail="not an IPv4 prefix") from None
    return int(net.network_address), net.prefixlen


_MAC_BYTE = re.compile(r"[0-9A-Fa-f]{1,2}")


def parse_mac(field: str, value: bytes | bytearray | str) -> bytes:
    """Six bytes, or text like ``02:00:5e:10:00:01`` (``-`` also accepted)."""
    if isinstance(value, bytes | bytearray):
        if len(value) == 6:
            return bytes(value)
        raise RouterError(EINVAL, field, bytes(value).hex(":"), detail="a MAC is 6 bytes")
    if isinstance(value, str):
        parts = value.replace("-", ":").split(":")
        # ASCII hex only: int(p, 16) also takes Unicode digits, a sign and blanks
        if len(parts) == 6 and all(_MAC_BYTE.fullmatch(p) for p in parts):
            return bytes(int(p, 16) for p in parts)
    raise RouterError(EINVAL, field, value, detail="not a MAC address")


def ntoa(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


class EventLog:
    """Numbers every event, queues it for ``drain`` and keeps the last ``history``.

    ``after(seq)`` lets a subscriber that fell behind resume from the last
    sequence number it saw; it also says whether events were lost (pushed
    out of the ring) in between.
    """

    __slots__ = ("_pending", "_ring", "last_seq")

    def __init__(self, history: int) -> None:
        self._ring: deque[Event] = deque(maxlen=max(history, 1))
        self._pending: list[Event] = []
        self.last_seq = 0

    def record(self, event: Event) -> None:
        self.last_seq += 1
        event.seq = self.last_seq
        self._ring.append(event)
        self._pending.append(event)

    def drain(self) -> list[Event]:
        pending, self._pending = self._pending, []
        return pending

    @property
    def pending(self) -> bool:
        """Are there events ``drain`` would return?"""
        return bool(self._pending)

    def after(self, seq: int) -> tuple[list[Event], bool]:
        """Events with a sequence number above ``seq``, and whether some are gone."""
        ring = self._ring
        if not ring or seq >= self.last_seq:
            return [], False
        first = ring[0].seq
        lost = seq + 1 < first
        return [e for e in ring if e.seq > seq], lost

"""Validation before any write: pure functions from request fields to checked values.

Parsing is strict: dotted quads of 1 to 3 ASCII digits without leading zeros
(``"²".isdigit()`` and Arabic-Indic digits are True in Python, ``010`` reads
as octal to inet_aton), prefix lengths 1..32, lengths checked before parsing
so a 7 kB value costs nothing. Every refusal is
:class:`~controller.store.errors.InvalidArgument` (or NOT_FOUND for an
interface a registered host does not have) naming the field and the value.

The checks that need the store's state — does the host exist, which NICs did
its agent report, is the prefix taken — run inside the store's write, on what
it read for the transaction (:func:`controller.store.logic.interface_on_host`).
"""

from __future__ import annotations

import re

from controller.store.errors import InvalidArgument
from controller.store.logic import interface_on_host
from controller.store.records import Mode
from controller.store.spec import ALL_ONES, AliasSpec, ntoa, plen_mask

__all__ = ["AliasSpec", "interface_on_host", "ntoa", "plen_mask"]

MAX_HOST_ID = 253  # a DNS name (RFC 1123), as Kubernetes node names are
MAX_LABEL = 63
MAX_IFNAME = 15  # Linux IFNAMSIZ - 1
MAX_ADDRESS = len("255.255.255.255/32")
MAX_ENDPOINT = 512

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z")
_OCTET = re.compile(r"(0|[1-9][0-9]{0,2})\Z")
_PLEN = re.compile(r"([1-9]|[12][0-9]|3[0-2])\Z")


def _bounded(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(field, value, f"longer than {limit} characters")
    return value


def required(field: str, value: str, limit: int) -> str:
    if not value:
        raise InvalidArgument(field, "", "is required")
    return _bounded(field, value, limit)


def host_id(field: str, value: str) -> str:
    """A host id: a DNS name (RFC 1123: dot-separated labels of lowercase letters, digits
    and '-', each 1..63 characters, starting and ending with a letter or digit)."""
    required(field, value, MAX_HOST_ID)
    labels = value.split(".")
    if not all(len(label) <= MAX_LABEL and _LABEL.match(label) for label in labels):
        raise InvalidArgument(field, value, "not a host id: a DNS name of lowercase letters, "
                                            "digits and '-' (labels of 1..63, joined by '.')")
    return value


def ifname(field: str, value: str) -> str:
    """An interface name: 1..15 of letters, digits, '_', '.', '-', not starting with a sign."""
    required(field, value, MAX_IFNAME)
    if not _IFNAME.match(value):
        raise InvalidArgument(field, value, "not an interface name (1..15 letters, digits, "
                                            "'_', '.', '-', starting with a letter or digit)")
    return value


def ipv4(field: str, value: str, whole: str | None = None) -> int:
    """A dotted quad, strictly: four decimal octets of ASCII digits, no leading zeros.
    ``whole`` is the field's full value when ``value`` is a part of it (messages echo it)."""
    echo = value if whole is None else whole
    required(field, echo, MAX_ADDRESS)
    parts = value.split(".")
    if len(parts) != 4 or not all(p.isascii() and _OCTET.match(p) for p in parts):
        raise InvalidArgument(field, echo, "not an IPv4 address (a.b.c.d, decimal, "
                                           "no leading zeros)")
    octets = [int(p) for p in parts]
    if any(o > 255 for o in octets):
        raise InvalidArgument(field, echo, "an octet is over 255")
    return (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]


def prefix_length(field: str, whole: str, text: str) -> int:
    if not text.isascii() or not _PLEN.match(text):
        if text == "0":
            raise InvalidArgument(field, whole, "a /0 prefix covers every address")
        raise InvalidArgument(field, whole, "prefix length must be 1..32 (ASCII digits)")
    return int(text)


def cidr(field: str, value: str) -> tuple[int, int]:
    """``A/LEN`` with the length required."""
    required(field, value, MAX_ADDRESS)
    address, slash, length = value.partition("/")
    if not slash:
        raise InvalidArgument(field, value, "needs a prefix length (A/LEN)")
    return ipv4(field, address, value), prefix_length(field, value, length)


def usable_address(field: str, value: str, address: int) -> None:
    """An address a host interface may have (and a destination may be)."""
    if address >> 24 == 0:
        raise InvalidArgument(field, value, "in 0.0.0.0/8 ('this network'), not a host address")
    if address >> 24 == 127:
        raise InvalidArgument(field, value, "a loopback address (127.0.0.0/8)")
    if address >> 28 == 0xE:
        raise InvalidArgument(field, value, "a multicast address (224.0.0.0/4)")
    if address == ALL_ONES:
        raise InvalidArgument(field, value, "the limited broadcast address")
    if address >> 28 == 0xF:
        raise InvalidArgument(field, value, "a reserved address (240.0.0.0/4)")


def alias(host: str, name: str, address: str, broadcast: str, destination: str,
          prefix: str = "alias.") -> AliasSpec:
    """Every field of an alias, checked on its own and against the others."""
    host_id(f"{prefix}host", host)
    ifname(f"{prefix}ifname", name)
    field = f"{prefix}address"
    value, plen = cidr(field, address)
    usable_address(field, address, value)
    mask = plen_mask(plen)
    if plen <= 30 and value & ~mask & ALL_ONES == 0:
        raise InvalidArgument(field, address, f"the network address of "
                                              f"{ntoa(value & mask)}/{plen}, not a host on it")
    if plen <= 30 and value | (~mask & ALL_ONES) == value:
        raise InvalidArgument(field, address, f"the broadcast address of "
                                              f"{ntoa(value & mask)}/{plen}, not a host on it")
    spec = AliasSpec(host, name, value, plen)
    if broadcast and destination:
        raise InvalidArgument(f"{prefix}destination", destination,
                              "give a broadcast address or a destination, not both")
    if broadcast:
        spec = AliasSpec(host, name, value, plen, broadcast=_broadcast(
            f"{prefix}broadcast", broadcast, spec))
    if destination:
        dest = ipv4(f"{prefix}destination", destination)
        usable_address(f"{prefix}destination", destination, dest)
        spec = AliasSpec(host, name, value, plen, destination=dest)
    return spec


def _broadcast(field: str, text: str, spec: AliasSpec) -> int:
    value = ipv4(field, text)
    if value == ALL_ONES:
        return value  # the limited broadcast: what a /31 uses (RFC 3021)
    if spec.plen >= 31:
        raise InvalidArgument(field, text, f"a /{spec.plen} has no subnet broadcast "
                                           "(only 255.255.255.255)")
    if value & spec.mask != spec.subnet:
        raise InvalidArgument(field, text, f"not in the alias's subnet "
                                           f"{ntoa(spec.subnet)}/{spec.plen}")
    return value


def alias_address(field: str, value: str) -> tuple[int, int | None]:
    """The address of a delete: ``A`` or ``A/LEN``."""
    required(field, value, MAX_ADDRESS)
    address, slash, length = value.partition("/")
    ip = ipv4(field, address, value)
    return ip, (prefix_length(field, value, length) if slash else None)


def cluster_prefix(field: str, value: str) -> tuple[int, int]:
    """A routed cluster prefix: ``A/LEN`` with the host bits clear, a unicast network."""
    network, plen = cidr(field, value)
    if network & ~plen_mask(plen) & ALL_ONES:
        raise InvalidArgument(field, value, f"host bits set: the prefix is "
                                            f"{ntoa(network & plen_mask(plen))}/{plen}")
    if network >> 24 == 0:
        raise InvalidArgument(field, value, "inside 0.0.0.0/8 ('this network')")
    if network >> 24 == 127:
        raise InvalidArgument(field, value, "a loopback prefix (127.0.0.0/8)")
    if network >> 28 >= 0xE:
        raise InvalidArgument(field, value, "a multicast or reserved prefix (224.0.0.0/3)")
    return network, plen


def prefix_text(network: int, plen: int) -> str:
    return f"{ntoa(network)}/{plen}"


MODES = {1: Mode.ALLOW, 2: Mode.REFUSE, 3: Mode.MULTIPATH}


def mode(field: str, value: int) -> Mode:
    """The API's Policy enum number as a mode; UNSPECIFIED and unknown numbers refused."""
    chosen = MODES.get(value)
    if chosen is None:
        raise InvalidArgument(field, value, "expected POLICY_ALLOW, POLICY_REFUSE or "
                                            "POLICY_MULTIPATH")
    return chosen

"""ICMP for the router: echo replies, error messages, and when not to send them.

Two halves. :class:`Icmp` answers echo requests addressed to us and builds
the error messages the IPv4 layer asks for (time exceeded, destination
unreachable). Before an error leaves, two gates apply:

* the RFC 1122 3.2.2 / RFC 1812 4.3.2.7 rules (``suppression_reason``): no
  error about an ICMP error, about a datagram sent to a broadcast or
  multicast address (link or IP), about a fragment other than the first, or
  about a datagram whose source is not a single host (0, broadcast,
  multicast, loopback);
* a rate limit as in Linux (:class:`IcmpRateLimiter`): a token bucket per
  destination host (``net.ipv4.icmp_ratelimit`` 1000 ms a token, burst 6,
  the inetpeer default) and a global one (``icmp_msgs_per_sec`` 1000,
  ``icmp_msgs_burst`` 50), both applied only to the types in the rate mask
  (``icmp_ratemask``: unreachable, source quench, time exceeded, parameter
  problem). Echo replies are not limited, as in Linux.

Time is the ``now`` the caller passes; nothing here reads a clock.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from router.link.ifnet import Interface
from router.wire import icmp as wire
from router.wire import ipv4 as ip
from router.wire.checksum import ones_complement_sum
from router.wire.ipv4 import Ipv4Header

LIMITED_BROADCAST = 0xFFFFFFFF

#: Linux's default ``icmp_ratemask`` (0x1818): the types the rate limit applies to.
DEFAULT_RATE_MASK = frozenset({
    wire.DEST_UNREACH, wire.SOURCE_QUENCH, wire.TIME_EXCEEDED, wire.PARAMETER_PROBLEM,
})


@dataclass(frozen=True, slots=True)
class IcmpConfig:
    """ICMP behaviour; every default is Linux's (``net.ipv4.icmp_*``)."""

    per_host_interval: float = 1.0  # icmp_ratelimit: one token per host each second
    per_host_burst: int = 6  # XRLIM_BURST_FACTOR: tokens a quiet host accumulates
    global_per_sec: float = 1000.0  # icmp_msgs_per_sec
    global_burst: int = 50  # icmp_msgs_burst
    rate_mask: frozenset[int] = DEFAULT_RATE_MASK
    max_tracked_hosts: int = 4096  # per-host buckets kept; the least recently used go first
    echo_ignore_broadcasts: bool = True  # icmp_echo_ignore_broadcasts
    echo_ignore_all: bool = False  # icmp_echo_ignore_all
    ttl: int = ip.DEFAULT_TTL  # ip_default_ttl, for the messages we originate


class Suppressed(enum.Enum):
    """Why an ICMP error was not sent (RFC 1812 4.3.2.7), or that it was rate limited."""

    ABOUT_ICMP_ERROR = "about_icmp_error"
    LINK_BROADCAST = "link_broadcast"  # the datagram came in a link broadcast/multicast frame
    DEST_BROADCAST = "dest_broadcast"  # addressed to an IP broadcast or multicast group
    NOT_FIRST_FRAGMENT = "not_first_fragment"
    BAD_SOURCE = "bad_source"  # source 0, broadcast, multicast or loopback
    NO_SOURCE_ADDRESS = "no_source_address"  # we have no address to send it from
    RATE_LIMITED = "rate_limited"


@dataclass(slots=True)
class IcmpStats:
    """ICMP counters; they only grow. Keys of the dicts are ICMP types."""

    in_by_type: dict[int, int] = field(default_factory=dict)
    out_by_type: dict[int, int] = field(default_factory=dict)
    in_errors: int = 0  # malformed ICMP (short, bad checksum)
    echo_ignored: int = 0  # echo requests we chose not to answer
    suppressed: dict[Suppressed, int] = field(
        default_factory=lambda: dict.fromkeys(Suppressed, 0)
    )

    def as_dict(self) -> dict[str, int]:
        flat = {"in_errors": self.in_errors, "echo_ignored": self.echo_ignored}
        flat.update({f"in_type_{t}": n for t, n in sorted(self.in_by_type.items())})
        flat.update({f"out_type_{t}": n for t, n in sorted(self.out_by_type.items())})
        flat.update({f"suppressed_{r.value}": n for r, n in self.suppressed.items()})
        return flat


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; starts full."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = now

    def refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now

    def has_token(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0


class IcmpRateLimiter:
    """Linux's two ICMP limits: per destination host, then global (see the module doc).

    A message goes only if both buckets have a token; only then are both
    charged, so a message refused by one limit does not spend the other's.
    """

    __slots__ = ("_config", "_global", "_hosts")

    def __init__(self, config: IcmpConfig) -> None:
        self._config = config
        self._global: TokenBucket | None = None
        self._hosts: dict[int, TokenBucket] = {}

    def allow(self, icmp_type: int, dst: int, now: float) -> bool:
        config = self._config
        if icmp_type not in config.rate_mask:
            return True
        host = self._host_bucket(dst, now)
        glob = self._global
        if glob is None:
            glob = self._global = TokenBucket(config.global_per_sec, config.global_burst, now)
        if not (host.has_token(now) and glob.has_token(now)):
            return False
        host.take()
        glob.take()
        return True

    def _host_bucket(self, dst: int, now: float) -> TokenBucket:
        hosts = self._hosts
        bucket = hosts.pop(dst, None)
        if bucket is None:
            interval = self._config.per_host_interval
            rate = 1.0 / interval if interval > 0 else float("inf")
            bucket = TokenBucket(rate, self._config.per_host_burst, now)
            if len(hosts) >= self._config.max_tracked_hosts:
                del hosts[next(iter(hosts))]  # least recently used
        hosts[dst] = bucket
        return bucket

    def tracked_hosts(self) -> int:
        return len(self._hosts)


def is_bad_source(src: int) -> bool:
    """Not a single host: 0, limited broadcast, multicast/experimental, loopback net."""
    return src == 0 or src >= 0xE0000000 or src >> 24 == 127


def suppression_reason(
    datagram: bytes | bytearray | memoryview,
    hdr: Ipv4Header,
    *,
    link_group: bool,
    dst_broadcast: bool,
    src_broadcast: bool,
) -> Suppressed | None:
    """RFC 1812 4.3.2.7: may an ICMP error be sent about ``datagram``? None means yes.

    ``link_group``: it arrived in a link-level broadcast or multicast frame.
    ``dst_broadcast``/``src_broadcast``: its destination/source is a
    broadcast address of the interface it concerns.
    """
    if hdr.frag & ip.OFFSET_MASK:
        return Suppressed.NOT_FIRST_FRAGMENT
    if hdr.protocol == ip.PROTO_ICMP:
        icmp_type = wire.peek_type(datagram[hdr.header_len : hdr.total_length])
        if icmp_type is None or icmp_type in wire.ERROR_TYPES:
            return Suppressed.ABOUT_ICMP_ERROR
    if link_group:
        return Suppressed.LINK_BROADCAST
    if dst_broadcast or hdr.dst >> 28 == 0xE or hdr.dst == LIMITED_BROADCAST:
        return Suppressed.DEST_BROADCAST
    if src_broadcast or is_bad_source(hdr.src):
        return Suppressed.BAD_SOURCE
    return None


_PLAIN_IP_HEADER = ip.HEADER  # version/IHL, TOS, total, id, frag, TTL, protocol, sum, src, dst
_ICMP_HEAD = struct.Struct("!BBH")  # type, code, checksum
_ICMP_REST_OFF = 4  # identifier, sequence and data follow type, code and checksum
_PLAIN_VER_IHL = (ip.VERSION << 4) | (ip.MIN_HEADER_LEN >> 2)  # 0x45: IPv4, no options
# module constants, not module attributes: the echo path reads each once per request
_IP_HEADER_LEN = ip.MIN_HEADER_LEN
_PROTO_ICMP = ip.PROTO_ICMP
_ECHO_REPLY = wire.ECHO_REPLY
_ECHO_REQUEST = wire.ECHO_REQUEST
_MESSAGE_MIN = wire.HEADER_LEN
_TYPE_OFF = wire.TYPE_OFF


def _checksum_of(whole: int) -> int:
    """``internet_checksum`` of a buffer given as its big-endian integer (even length).

    As in ``router.wire.checksum``: the integer modulo 0xFFFF is the
    ones'-complement sum, which is 0xFFFF (not 0) for a non-zero buffer.
    """
    if whole == 0:
        return 0xFFFF
    return (0xFFFF - whole % 0xFFFF) % 0xFFFF


def echo_reply_datagram(request: bytes | bytearray | memoryview, src: int, dst: int, ttl: int,
                        tos: int) -> bytes:
    """The datagram answering the echo ``request`` (a checked ICMP message), in one join.

    Byte for byte ``ip.emit(src=src, dst=dst, protocol=ICMP, ttl=ttl, tos=tos,
    payload=wire.reply_to_echo(request))``: a 20-byte header with identifier
    and fragment field 0, then type 0, code 0 and the request's identifier,
    sequence and data. The reply's leading zero bytes add nothing to the
    checksum, so its checksum is that of the bytes after it; the header's is
    the sum of its 16-bit words.
    """
    rest = request[_ICMP_REST_OFF:]
    whole = int.from_bytes(rest, "big")
    if len(rest) & 1:
        whole <<= 8  # the zero pad byte of an odd-length message
    total = _IP_HEADER_LEN + len(request)
    words = ((_PLAIN_VER_IHL << 8 | tos) + total + (ttl << 8 | _PROTO_ICMP)
             + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
    return b"".join((
        # the header is never all zeros: its checksum needs no zero-buffer case
        _PLAIN_IP_HEADER.pack(_PLAIN_VER_IHL, tos, total, 0, 0, ttl, _PROTO_ICMP,
                              (0xFFFF - words % 0xFFFF) % 0xFFFF, src, dst),
        _ICMP_HEAD.pack(_ECHO_REPLY, 0, _checksum_of(whole)),
        rest,
    ))


SendDatagram = Callable[[bytes, float], int]
SourceFor = Callable[["Interface | None", int], int]


class Icmp:
    """Echo replies and ICMP errors, sent through ``send(datagram, now)``.

    ``source_for(ifp, dst)`` picks the source address of a message we
    originate about a datagram received on ``ifp`` (0 if we have none).
    ``send`` routes and transmits a complete IPv4 datagram (the IPv4 layer's
    ``send``). Never raises for packet content.
    """

    __slots__ = ("_send", "_source_for", "config", "limiter", "stats")

    def __init__(self, send: SendDatagram, source_for: SourceFor,
                 config: IcmpConfig | None = None) -> None:
        self.config = config or IcmpConfig()
        self.stats = IcmpStats()
        self.limiter = IcmpRateLimiter(self.config)
        self._send = send
        self._source_for = source_for

    # -- input -------------------------------------------------------------

    def input(self, ifp: Interface, hdr: Ipv4Header, datagram: bytes | bytearray | memoryview,
              to_group: bool, now: float) -> None:
        """An ICMP message for us: count it, answer it if it is an echo request.

        ``to_group``: it was sent to a broadcast or multicast address (IP or link).
        """
        stats = self.stats
        message = datagram[hdr.header_len : hdr.total_length]
        # wire.parse's checks (length, then checksum) without building the message
        if len(message) < _MESSAGE_MIN or ones_complement_sum(message) != 0xFFFF:
            stats.in_errors += 1  # internet_checksum(message) != 0: a bad checksum
            return
        icmp_type = message[_TYPE_OFF]
        by_type = stats.in_by_type
        by_type[icmp_type] = by_type.get(icmp_type, 0) + 1
        if icmp_type != _ECHO_REQUEST:
            return
        config = self.config
        if config.echo_ignore_all or (to_group and config.echo_ignore_broadcasts):
            stats.echo_ignored += 1
            return
        source = self._source_for(ifp, hdr.src) if to_group else hdr.dst
        if not source or is_bad_source(hdr.src):
            stats.echo_ignored += 1
            return
        out = stats.out_by_type
        out[_ECHO_REPLY] = out.get(_ECHO_REPLY, 0) + 1
        self._send(echo_reply_datagram(message, source, hdr.src, config.ttl, hdr.tos), now)

    # -- errors ------------------------------------------------------------

    def error(
        self,
        datagram: bytes | bytearray | memoryview,
        hdr: Ipv4Header,
        ifp: Interface | None,
        icmp_type: int,
        code: int,
        now: float,
        *,
        link_group: bool = False,
        dst_broadcast: bool = False,
        src_broadcast: bool = False,
        mtu: int = 0,
        pointer: int = 0,
    ) -> bool:
        """Send ``icmp_type``/``code`` about ``datagram`` (received on ``ifp``) if allowed.

        ``datagram`` is the offending IP datagram as it arrived (before any
        TTL decrement). ``mtu`` goes with "fragmentation needed", ``pointer``
        (the offset of the bad octet) with parameter problem. Returns whether
        a message went out.
        """
        stats = self.stats
        reason = suppression_reason(datagram, hdr, link_group=link_group,
                                    dst_broadcast=dst_broadcast, src_broadcast=src_broadcast)
        if reason is None:
            source = self._source_for(ifp, hdr.src)
            if not source:
                reason = Suppressed.NO_SOURCE_ADDRESS
            elif not self.limiter.allow(icmp_type, hdr.src, now):
                reason = Suppressed.RATE_LIMITED
        if reason is not None:
            stats.suppressed[reason] += 1
            return False
        original = datagram[: hdr.total_length]
        if icmp_type == wire.DEST_UNREACH:
            message = wire.dest_unreachable(original, code, mtu=mtu)
        elif icmp_type == wire.PARAMETER_PROBLEM:
            message = wire.parameter_problem(original, pointer)
        else:
            message = wire.error(icmp_type, code, original)
        self._emit(icmp_type, source, hdr.src, message, now)
        return True

    def _emit(self, icmp_type: int, src: int, dst: int, message: bytes, now: float,
              tos: int = 0) -> None:
        datagram = ip.emit(src=src, dst=dst, protocol=ip.PROTO_ICMP, payload=message,
                           ttl=self.config.ttl, tos=tos)
        out = self.stats.out_by_type
        out[icmp_type] = out.get(icmp_type, 0) + 1
        self._send(datagram, now)

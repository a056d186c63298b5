"""Multipath gateway routes: next hops, the flow hash, and which next hop a flow takes.

A route with several next hops (``Route.nexthops``, flag ``ECMP``) spreads
traffic by flow, never by packet, so a flow is never reordered. The **flow**
of a datagram is its source, destination and protocol, plus the TCP or UDP
ports when it is not a fragment and carries them (Linux's L4 multipath
hash, ``fib_multipath_hash_policy=1``): every fragment of a datagram hashes
alike, without ports.

The next hop is chosen by **rendezvous (highest random weight) hashing**:
each usable next hop scores ``mix(flow ^ key)``, where ``key`` depends on
the next hop's gateway and interface only, and the best score wins. So a
flow keeps its next hop while that one stays in the route and usable,
whatever happens to the others; removing a next hop (or it becoming
unusable) moves only the flows that were on it; adding one moves only the
flows that now score best on it, about 1/(n+1) of them. With modulo-n,
nearly every flow would move on any change.

The flow hash is Python's tuple hash over ints, deterministic (ints are
not salted by ``PYTHONHASHSEED``) and the same in both forwarding paths:
they call these functions with the same bytes. Scores go through the
SplitMix64 finaliser, so the scores of two legs for one flow are
independent (the tuple hash of nearby ints is not) and the legs share the
flows evenly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_PROTO_TCP = 6
_PROTO_UDP = 17
_FRAGMENT_BITS = 0x3FFF  # MF and the fragment offset
_M64 = 0xFFFFFFFFFFFFFFFF


def mix(value: int) -> int:
    """SplitMix64's finaliser: every input bit moves every output bit."""
    z = value & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


@dataclass(frozen=True, slots=True)
class NextHop:
    """One leg of a multipath route: a gateway on-link through an interface."""

    gateway: int
    ifindex: int
    ifname: str
    key: int = field(init=False, compare=False)  # its rendezvous identity

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", mix(self.gateway << 32 | self.ifindex))


def flow_hash(packet: bytes | bytearray | memoryview, start: int) -> int:
    """The flow hash of the IPv4 datagram at ``packet[start:]`` (its header is valid)."""
    header_len = (packet[start] & 0x0F) << 2
    protocol = packet[start + 9]
    src_dst = int.from_bytes(packet[start + 12 : start + 20], "big")
    ports = 0
    if protocol in (_PROTO_TCP, _PROTO_UDP):
        total = (packet[start + 2] << 8) | packet[start + 3]
        frag = ((packet[start + 6] << 8) | packet[start + 7]) & _FRAGMENT_BITS
        if not frag and total >= header_len + 4 and len(packet) >= start + header_len + 4:
            at = start + header_len
            ports = int.from_bytes(packet[at : at + 4], "big")
    return hash((src_dst, protocol, ports))


def choose(nexthops: Sequence[NextHop], flow: int,
           usable: Callable[[NextHop], bool]) -> NextHop:
    """The next hop of ``flow``: the best-scoring usable one, else the first."""
    best: NextHop | None = None
    best_score = 0
    for hop in nexthops:
        if not usable(hop):
            continue
        score = mix(flow ^ hop.key)
        if best is None or score > best_score:
            best, best_score = hop, score
    return best if best is not None else nexthops[0]

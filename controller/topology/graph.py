"""The cluster's topology: live hosts joined by the segments their aliases share.

A **segment** is a subnet two or more live hosts have an address in:

* a broadcast segment: aliases (without a destination) with the same network
  and prefix length;
* a point-to-point segment: two aliases that are each other's peer (one's
  address is the other's destination, both ways).

A host's **port** on a segment is one of its interfaces there, with the
lowest of that interface's addresses in the segment (several addresses of
one interface in one subnet are aliases of one link: one gateway is
enough). Two hosts on a segment are neighbours through every pair of their
ports: the local interface is the host's port, the gateway the neighbour's
port address. Several segments (or ports) between two hosts are parallel
links. An address found on two hosts of one segment is ambiguous and is no
port (neither host is reached through it), so every two hosts of a segment
are always joined by at least one usable pair of ports.

Hosts and segments are numbered (hosts in id order) so the path search runs
over lists of ints. Every known host is numbered, up or down, so numbers
stay put when liveness changes; a down host's aliases join nothing, and
paths go around it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass

from controller.topology.model import Alias, Host

_ALL_ONES = 0xFFFFFFFF

#: (ifname, address) of a host on a segment.
Port = tuple[str, int]
#: What a route for this prefix would duplicate: (network, prefix length).
Connected = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Graph:
    """Hosts and segments, numbered.

    ``up[h]``: host ``h`` is live; ``segments_of[h]``: the segments of host
    ``h``; ``members[s]``: the hosts of segment ``s``, ascending;
    ``ports[s][h]``: host ``h``'s ports on ``s``, sorted; ``connected[h]``:
    the (network, length) pairs host ``h`` is attached to (its subnets,
    point-to-point peers and own addresses as /32).
    """

    hosts: tuple[str, ...]
    up: tuple[bool, ...]
    index: dict[str, int]
    segments_of: tuple[tuple[int, ...], ...]
    members: tuple[tuple[int, ...], ...]
    ports: tuple[dict[int, tuple[Port, ...]], ...]
    connected: tuple[frozenset[Connected], ...]
    #: per segment, its members on at least one other segment: the only hosts a
    #: path can go *through* (a stub, on one segment, is only ever an end)
    relays: tuple[tuple[int, ...], ...]
    #: per host, its segment if it is on exactly one (a stub), else -1
    stub_segment: tuple[int, ...]
    #: per segment, what identifies it across graphs (kind, address, length)
    keys: tuple[tuple[str, int, int], ...]


def _mask(plen: int) -> int:
    return (_ALL_ONES << (32 - plen)) & _ALL_ONES


#: A segment's identity: ("net", network, length) for a broadcast subnet, ("p2p", lower
#: address, higher address) for a point-to-point pair.
SegmentKey = tuple[str, int, int]


def segment_key(alias: Alias) -> SegmentKey:
    """The segment ``alias`` would join (it joins one once another host is there too)."""
    address = int(alias.address)
    if alias.destination is not None:
        peer = int(alias.destination)
        return ("p2p", min(address, peer), max(address, peer))
    return ("net", address & _mask(alias.prefix_len), alias.prefix_len)


def _attachments(alias: Alias) -> list[Connected]:
    address = int(alias.address)
    found = [(address, 32)]
    if alias.destination is not None:
        found.append((int(alias.destination), 32))
    else:
        found.append((address & _mask(alias.prefix_len), alias.prefix_len))
    return found


def changes_no_route(alias: Alias, others_there: bool, claimed: Container[Connected]) -> bool:
    """Whether adding or removing ``alias`` (on a live host) leaves every host's routes
    and every claim's role as they were, so the computation can be skipped.

    True for a broadcast alias (no destination) on a subnet where no other host
    has an address (``others_there``: the caller's index says; other hosts'
    aliases do not change with this one) whose address (as a /32) and subnet
    are both unclaimed. Then no segment appears, vanishes or changes its
    members or ports (a segment takes two hosts), and all that moves is the
    host's ``connected`` set — which routes consult only to leave out a claimed
    prefix the host is attached to. A point-to-point alias is never taken for
    one (its peer is a segment of its own kind). Claim roles depend on claims
    and liveness only. ``tests/controller/test_routes.py`` checks the rule
    against the computation on random clusters.
    """
    if alias.destination is not None or others_there:
        return False
    return not any(attached in claimed for attached in _attachments(alias))


def build_graph(known: Iterable[Host], aliases: Iterable[Alias]) -> Graph:
    """The graph of the live ``known`` hosts over the segments of their ``aliases``."""
    live = {host.id: host.up for host in known}
    hosts = tuple(sorted(live))
    index = {host: i for i, host in enumerate(hosts)}
    up = tuple(live[host] for host in hosts)
    # segment key -> address -> {(host index, ifname)}
    raw: dict[SegmentKey, dict[int, set[tuple[int, str]]]] = {}
    connected: list[set[Connected]] = [set() for _ in hosts]
    for alias in aliases:
        h = index.get(alias.host)
        if h is None or not up[h]:
            continue  # a down or unknown host joins nothing
        connected[h].update(_attachments(alias))
        raw.setdefault(segment_key(alias), {}).setdefault(int(alias.address), set()).add(
            (h, alias.ifname))
    segment_ports: list[dict[int, tuple[Port, ...]]] = []
    keys: list[SegmentKey] = []
    for key in sorted(raw):
        ports = _ports(raw[key])
        if len(ports) >= 2:
            segment_ports.append(ports)
            keys.append(key)
    segments_of: list[list[int]] = [[] for _ in hosts]
    for s, ports in enumerate(segment_ports):
        for h in ports:
            segments_of[h].append(s)
    members = tuple(tuple(sorted(p)) for p in segment_ports)
    return Graph(
        hosts=hosts,
        up=up,
        index=index,
        segments_of=tuple(tuple(s) for s in segments_of),
        members=members,
        ports=tuple(segment_ports),
        connected=tuple(frozenset(c) for c in connected),
        relays=tuple(tuple(h for h in m if len(segments_of[h]) > 1) for m in members),
        stub_segment=tuple(s[0] if len(s) == 1 else -1 for s in segments_of),
        keys=tuple(keys),
    )


def _ports(by_address: dict[int, set[tuple[int, str]]]) -> dict[int, tuple[Port, ...]]:
    """Each host's ports on one segment (see the module docstring)."""
    lowest: dict[tuple[int, str], int] = {}
    for address, holders in by_address.items():
        if len({h for h, _ in holders}) > 1:
            continue  # the same address on two hosts: ambiguous, no port
        for holder in holders:
            if holder not in lowest or address < lowest[holder]:
                lowest[holder] = address
    ports: dict[int, list[Port]] = {}
    for (h, ifname), address in lowest.items():
        ports.setdefault(h, []).append((ifname, address))
    return {h: tuple(sorted(p)) for h, p in sorted(ports.items())}

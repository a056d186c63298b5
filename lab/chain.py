"""The topologies of ``vrc up`` and the e2e tests: router hosts in a line (or a ring), a
kernel host at each end.

::

    a ──seg 0── h1 ──seg 1── h2 ── ... ── hN ──seg N── b
    kernel       vrc-agent in each hK                 kernel

Segment ``i`` is the subnet ``BASE.i.0/24`` on one veth pair: its left end
has ``.1``, its right end ``.2``. So ``a`` is ``BASE.0.1`` (default route via
h1's ``BASE.0.2``) and ``b`` is ``BASE.N.2`` (default route via hN's
``BASE.N.1``); router host ``hK`` holds ``BASE.(K-1).2`` and ``BASE.K.1``.
The two end subnets are the cluster's prefixes, claimed by the router host
on them; the controller computes the routes every other host needs to reach
them, hop by hop. :func:`plan_ring` closes the line of router hosts into a
ring with the ends on opposite hosts (two paths between them), numbered the
same way.

:func:`plan_chain` is pure (names and addresses only, for the tests and the
printout); :func:`build_chain` makes it on a :class:`lab.Lab`. Interface
names carry the run's prefix (unique per run), host ids do not (they live in
the run's own controller).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass

from lab.netns import Lab, LabError, Netns

DEFAULT_BASE = "10.99"
MAX_HOSTS = 32
END_A, END_B = "a", "b"


@dataclass(frozen=True, slots=True)
class Port:
    """One end of a segment: the node (``a``, ``b`` or a host id), its interface, its
    address with the segment's prefix length."""

    node: str
    ifname: str
    address: str  # A/LEN

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


@dataclass(frozen=True, slots=True)
class Segment:
    index: int
    subnet: str  # P/LEN
    left: Port
    right: Port


@dataclass(frozen=True, slots=True)
class Claim:
    prefix: str
    host: str
    ifname: str


@dataclass(frozen=True, slots=True)
class ChainPlan:
    prefix: str  # the run prefix: namespaces are PREFIX-NODE
    hosts: tuple[str, ...]  # router host ids, h1..hN
    segments: tuple[Segment, ...]

    def netns_name(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def ports_of(self, node: str) -> list[Port]:
        return [port for seg in self.segments for port in (seg.left, seg.right)
                if port.node == node]

    @property
    def a(self) -> Port:
        return self.segments[0].left

    @property
    def b(self) -> Port:
        return self.segments[-1].right

    def gateway_of(self, end: str) -> str:
        """The router address a kernel end host routes everything through."""
        if end == END_A:
            return self.segments[0].right.ip
        return self.segments[-1].left.ip

    def claims(self) -> list[Claim]:
        """The end subnets, each claimed by the router host on it."""
        first, last = self.segments[0], self.segments[-1]
        return [Claim(first.subnet, first.right.node, first.right.ifname),
                Claim(last.subnet, last.left.node, last.left.ifname)]

    def path(self) -> list[str]:
        """For a chain: the router addresses a datagram from a to b passes, in order."""
        return [seg.right.ip for seg in self.segments[:-1]]

    def neighbours(self, host: str) -> list[str]:
        """The router hosts sharing a segment with ``host``."""
        found = []
        for seg in self.segments:
            nodes = (seg.left.node, seg.right.node)
            if host in nodes:
                other = nodes[1] if nodes[0] == host else nodes[0]
                if other in self.hosts:
                    found.append(other)
        return found


def plan_chain(prefix: str, hosts: int, base: str = DEFAULT_BASE) -> ChainPlan:
    """The plan of a chain of ``hosts`` router hosts (1..MAX_HOSTS); ValueError otherwise."""
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"--hosts {hosts}: must be 1..{MAX_HOSTS}")
    ids = tuple(f"h{k}" for k in range(1, hosts + 1))
    nodes = (END_A, *ids, END_B)
    return _plan(prefix, ids, list(itertools.pairwise(nodes)), base)


def plan_ring(prefix: str, hosts: int = 4, base: str = DEFAULT_BASE) -> ChainPlan:
    """Router hosts in a ring (3..MAX_HOSTS), ``a`` on h1 and ``b`` on the host opposite
    (h3 of 4): two paths between the ends, so one host going down leaves the other.

    Segments: 0 is a-h1, 1..N join hK and hK+1 (the last closes the ring back to h1),
    N+1 is the opposite host to b."""
    if not 3 <= hosts <= MAX_HOSTS:
        raise ValueError(f"ring of {hosts} hosts: must be 3..{MAX_HOSTS}")
    ids = tuple(f"h{k}" for k in range(1, hosts + 1))
    ring = [(ids[k], ids[(k + 1) % hosts]) for k in range(hosts)]
    pairs = [(END_A, ids[0]), *ring, (ids[hosts // 2], END_B)]
    return _plan(prefix, ids, pairs, base)


def _plan(prefix: str, ids: tuple[str, ...], pairs: list[tuple[str, str]],
          base: str) -> ChainPlan:
    """Segment ``i`` joins ``pairs[i]``: subnet BASE.i.0/24, left end .1, right end .2."""
    ipaddress.IPv4Network(f"{base}.0.0/16")  # ValueError for a bad base
    segments = []
    for index, (left_node, right_node) in enumerate(pairs):
        net = f"{base}.{index}"
        left = Port(left_node, f"{prefix}s{index}a", f"{net}.1/24")
        right = Port(right_node, f"{prefix}s{index}b", f"{net}.2/24")
        for port in (left, right):
            if len(port.ifname) > 15:
                raise ValueError(f"interface name {port.ifname!r} is longer than 15")
        segments.append(Segment(index, f"{net}.0/24", left, right))
    return ChainPlan(prefix, ids, tuple(segments))


@dataclass
class Chain:
    """A built chain: its plan and namespaces (router hosts by id, the ends as a and b)."""

    plan: ChainPlan
    namespaces: dict[str, Netns]

    @property
    def a(self) -> Netns:
        return self.namespaces[END_A]

    @property
    def b(self) -> Netns:
        return self.namespaces[END_B]


def build_chain(lab: Lab, plan: ChainPlan) -> Chain:  # a ring's plan builds the same way
    """Make the plan's namespaces and segments; the kernel ends get their address and a
    default route. Router hosts' interfaces are up with no address (their agent gets
    them from the controller). IPv6 is off everywhere: nothing but what we send."""
    if lab.prefix != plan.prefix:
        raise LabError(f"plan for {plan.prefix!r} built on lab {lab.prefix!r}")
    namespaces: dict[str, Netns] = {}
    for node in (END_A, *plan.hosts, END_B):
        ns = lab.netns(node)
        for scope in ("all", "default"):
            ns.sysctl(f"net.ipv6.conf.{scope}.disable_ipv6", "1")
        namespaces[node] = ns
    for seg in plan.segments:
        left, right = namespaces[seg.left.node], namespaces[seg.right.node]
        lab.veth(left, seg.left.ifname.removeprefix(lab.prefix),
                 right, seg.right.ifname.removeprefix(lab.prefix))
    for end, port in ((END_A, plan.a), (END_B, plan.b)):
        ns = namespaces[end]
        ns.ip("addr", "add", port.address, "dev", port.ifname)
        ns.ip("route", "add", "default", "via", plan.gateway_of(end))
    return Chain(plan, namespaces)

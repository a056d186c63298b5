"""Never cut a node off: refuse to take the host's primary interface.

The agent takes its NICs away from the host kernel's IP stack (isolation).
Given the NIC the node is managed through, that would cut the node off the
network: kubelet, SSH and the agent's own connection to the controller all
run there. So before any NIC is opened, each ``--interface`` is checked, and
it is *primary* when

* it holds a default route (IPv4 ``/proc/net/route``, IPv6
  ``/proc/net/ipv6_route``: the main table, where a node's default route
  lives), or
* it holds the node's own address (``--node-ip``, on Kubernetes the
  downward API's ``status.hostIP``: the InternalIP kubelet registered), or
* one of its upper devices does (a bridge, bond or VLAN built on it, listed by
  sysfs as ``upper_*`` links): taking a bridge port or a bond slave cuts off
  the bridge or the bond just the same.

A primary interface is refused with a message naming it and the reason unless
``--allow-primary-interface`` is given. The decision (``primary_reasons``) is
a pure function of the facts, which the readers below collect from the host.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RTF_UP = 0x0001
RTF_REJECT = 0x0200
IP_TIMEOUT = 10.0
MAX_UPPER_DEPTH = 8  # bridge on bond on VLAN is three; sysfs has no cycles, this bounds it anyway

FORCE_FLAG = "--allow-primary-interface"


@dataclass(frozen=True, slots=True)
class DefaultRoute:
    """A default route and the interface it leaves through."""

    ifname: str
    family: int  # 4 or 6
    gateway: IpAddress | None

    def describe(self) -> str:
        prefix = "0.0.0.0/0" if self.family == 4 else "::/0"
        return f"{prefix} via {self.gateway}" if self.gateway is not None else prefix


def parse_ipv4_routes(text: str) -> list[DefaultRoute]:
    """The usable default routes in ``/proc/net/route`` (little-endian hex fields)."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        ifname, destination, gateway, flags, mask = (
            fields[0], fields[1], fields[2], fields[3], fields[7])
        try:
            dst, gw, bits, netmask = (int(destination, 16), int(gateway, 16), int(flags, 16),
                                      int(mask, 16))
        except ValueError:
            continue
        if dst != 0 or netmask != 0 or not bits & RTF_UP or bits & RTF_REJECT:
            continue
        via = ipaddress.IPv4Address(gw.to_bytes(4, "little")) if gw else None
        routes.append(DefaultRoute(ifname, 4, via))
    return routes


def parse_ipv6_routes(text: str) -> list[DefaultRoute]:
    """The usable default routes in ``/proc/net/ipv6_route`` (one route per line:
    destination, its length, source, its length, next hop, metric, refcnt, use,
    flags, device)."""
    routes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        destination, length, nexthop, flags, ifname = (
            fields[0], fields[1], fields[4], fields[8], fields[9])
        try:
            dst, bits, via = int(destination, 16), int(flags, 16), int(nexthop, 16)
            prefix_len = int(length, 16)
        except ValueError:
            continue
        if dst != 0 or prefix_len != 0 or not bits & RTF_UP or bits & RTF_REJECT:
            continue
        if ifname == "lo":
            continue  # the kernel's own unreachable defaults
        routes.append(DefaultRoute(ifname, 6, ipaddress.IPv6Address(via) if via else None))
    return routes


def parse_ip_addresses(text: str) -> dict[str, set[IpAddress]]:
    """Interface name -> its addresses, from ``ip -j addr show`` output."""
    result: dict[str, set[IpAddress]] = {}
    for link in json.loads(text or "[]"):
        addresses = result.setdefault(str(link.get("ifname", "")), set())
        for info in link.get("addr_info", []):
            local = info.get("local")
            if local:
                addresses.add(ipaddress.ip_address(local))
    return result


def parse_node_ip(value: str) -> IpAddress:
    """``--node-ip`` as an address; ValueError names the flag."""
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError(f"--node-ip {value!r}: not an IPv4 or IPv6 address") from None


def primary_reasons(
    ifname: str,
    *,
    default_routes: Iterable[DefaultRoute],
    addresses: Mapping[str, set[IpAddress]],
    uppers: Callable[[str], Iterable[str]],
    node_ip: IpAddress | None,
) -> list[str]:
    """Why ``ifname`` is the node's primary interface; empty when it is not.

    ``uppers(name)`` lists the devices stacked directly on ``name``; the
    interface and every device above it are checked.
    """
    routes = list(default_routes)
    reasons = []
    for device, path in _self_and_uppers(ifname, uppers):
        holder = "it" if device == ifname else f"its upper device {device} ({path})"
        for route in routes:
            if route.ifname == device:
                reasons.append(f"{holder} holds the default route {route.describe()}")
        if node_ip is not None and node_ip in addresses.get(device, set()):
            reasons.append(f"{holder} holds the node's address {node_ip} (--node-ip)")
    return reasons


def _self_and_uppers(ifname: str, uppers: Callable[[str], Iterable[str]]
                     ) -> list[tuple[str, str]]:
    """``ifname`` and every device above it, each with the stack that leads to it."""
    found = [(ifname, ifname)]
    seen = {ifname}
    frontier = [(ifname, ifname)]
    for _ in range(MAX_UPPER_DEPTH):
        following = []
        for device, path in frontier:
            for upper in sorted(uppers(device)):
                if upper not in seen:
                    seen.add(upper)
                    following.append((upper, f"{path} -> {upper}"))
        found.extend(following)
        frontier = following
        if not frontier:
            break
    return found


def refusal(ifname: str, reasons: list[str]) -> str:
    """The start-up error for a primary interface, in words that say what to do."""
    return (f"--interface {ifname}: refusing the node's primary interface: "
            f"{'; '.join(reasons)}. Isolating it from the kernel's IP stack would cut this "
            f"node off the network. Give the agent a data-plane NIC instead, or pass "
            f"{FORCE_FLAG} if this is really meant")


# --- reading the facts from this host ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What ``primary_reasons`` needs, read from one host (or a fake one in tests)."""

    default_routes: list[DefaultRoute]
    addresses: dict[str, set[IpAddress]]
    sys_class_net: Path

    def uppers(self, ifname: str) -> list[str]:
        """Devices stacked on ``ifname``: sysfs names them ``upper_<dev>``."""
        directory = self.sys_class_net / ifname
        try:
            return [entry.name[len("upper_"):] for entry in directory.iterdir()
                    if entry.name.startswith("upper_")]
        except OSError:
            return []

    def reasons(self, ifname: str, node_ip: IpAddress | None) -> list[str]:
        return primary_reasons(ifname, default_routes=self.default_routes,
                               addresses=self.addresses, uppers=self.uppers, node_ip=node_ip)


def read_host_facts(proc_net: Path = Path("/proc/net"),
                    sys_class_net: Path = Path("/sys/class/net"),
                    need_addresses: bool = True) -> HostFacts:
    """Default routes from ``/proc/net``, addresses from ``ip -j addr`` (only when
    they are needed: with no ``--node-ip`` nothing compares them)."""
    routes = parse_ipv4_routes(_read(proc_net / "route"))
    routes += parse_ipv6_routes(_read(proc_net / "ipv6_route"))
    addresses = _ip_addresses() if need_addresses else {}
    return HostFacts(routes, addresses, sys_class_net)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""  # no IPv6 in this kernel: no IPv6 default route either


def _ip_addresses() -> dict[str, set[IpAddress]]:
    try:
        proc = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True,
                              timeout=IP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OSError(f"reading the host's addresses (ip -j addr show): {exc}") from exc
    if proc.returncode != 0:
        raise OSError(f"reading the host's addresses (ip -j addr show): {proc.stderr.strip()}")
    return parse_ip_addresses(proc.stdout)

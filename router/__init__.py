"""vrc router engine: a sans-I/O IPv4 router.

The engine takes frames, API calls and the time as inputs and returns frames
to transmit, events and its next deadline. It never opens a socket, starts a
thread, sleeps or reads the clock; ``agents/`` supplies all of that.

The packages are the layers, bottom up, each named after the seed it
reproduces (``docs/seed-map.md`` is the full index):

* ``wire/`` — header views over bytes (Ethernet, ARP, IPv4, ICMP, UDP, checksums);
* ``link/`` — interfaces and the data link layer (XNU ``dlil.c``);
* ``inet/`` — IPv4 addresses, prefix routes, the route table (FreeBSD ``in.c``);
* ``arp/`` — the ARP table and protocol (``in.c``'s lltable, NUD, RFC 5227);
* ``ipv4/`` — IPv4 input, forwarding, ICMP and the fast path;
* ``ng/`` — ``ngN`` virtual interfaces (FreeBSD ``ng_iface.c``), taps and pcap;
* ``engine/`` — the facade that composes them (what ``agents/`` calls).

Across the layers: ``errors.py`` (``RouterError`` and the errno names),
``events.py`` (``Event``) and ``contracts.py`` (the seams, as ``Protocol``s).

The public names below are importable from ``router`` itself. They load on
first use, so ``import router.wire`` (or the CLI's ``router.ng.pcap``) does
not build the whole engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.arp.config import ArpConfig
    from router.engine.api import Engine
    from router.engine.core import EngineConfig
    from router.errors import RouterError
    from router.events import Event, EventKind
    from router.inet.domain import SamePrefixPolicy
    from router.ipv4.input import Ipv4Config
    from router.link.ifnet import IfExtFlags, IfFamily, IfFlags, Interface
    from router.ng.pcap import PcapWriter

_HOMES = {
    "ArpConfig": "router.arp.config",
    "Engine": "router.engine.api",
    "EngineConfig": "router.engine.core",
    "Event": "router.events",
    "EventKind": "router.events",
    "IfExtFlags": "router.link.ifnet",
    "IfFamily": "router.link.ifnet",
    "IfFlags": "router.link.ifnet",
    "Interface": "router.link.ifnet",
    "Ipv4Config": "router.ipv4.input",
    "PcapWriter": "router.ng.pcap",
    "RouterError": "router.errors",
    "SamePrefixPolicy": "router.inet.domain",
}

__all__ = [
    "ArpConfig",
    "Engine",
    "EngineConfig",
    "Event",
    "EventKind",
    "IfExtFlags",
    "IfFamily",
    "IfFlags",
    "Interface",
    "Ipv4Config",
    "PcapWriter",
    "RouterError",
    "SamePrefixPolicy",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module the first time it is asked for (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'router' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value

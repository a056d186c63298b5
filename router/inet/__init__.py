"""IPv4 addressing and routes (seed: FreeBSD ``in.c``, the address half).

Where each of the seed's rules lives (``docs/seed-map.md`` has every function):

* ``domain.py`` — ``InetDomain``: add an alias (``in_aifaddr_ioctl``: family
  checks, EDESTADDRREQ on point-to-point, EPROTONOSUPPORT for a vhid,
  classful masks, broadcast and /31 rules), delete one
  (``in_difaddr_ioctl``: EADDRNOTAVAIL, prefix hand-over, ARP flush), the
  prefix route and its owner (``in_addprefix``/``in_scrubprefix``) under the
  same-prefix policy (``SamePrefixPolicy``: allow, refuse = the seed's
  ``no_same_prefix``, multipath), the loopback route to self
  (``in_localip_more``), the gets (``in_control``), the queries
  (``in_localaddr``, ``in_localip``, ``in_canforward``, ``in_broadcast``),
  all-hosts membership and the purge at detach (``in_ifdetach``).
* ``addr.py`` — the address records and requests, and the pure rules
  (classful mask, default peer, broadcast values, ``in_canforward``).
* ``index.py`` — beyond the seed: indexes by value, by prefix and by mask,
  so no operation scans every address.
* ``route.py`` — the route table: longest-prefix match, multipath, routing
  messages (RTM_ADD, RTM_DELETE), generation numbers for caches.

The ARP table half of ``in.c`` (lltable) is ``router/arp/``.
"""

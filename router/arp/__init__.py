"""ARP: the neighbour table and the protocol (seed: FreeBSD ``in.c``, the lltable half).

Where each rule lives (``docs/seed-map.md`` has every function):

* ``lltable.py`` — the per-interface table (``in_lltable_*``): lookup, create
  only where a route covers the address (``in_lltable_rtcheck``), static,
  published and interface-address entries, delete, prefix flush, dump.
* ``protocol.py`` — ``Arp``: answering requests for our addresses and
  published entries, learning, resolving with a bounded hold queue, static
  entries never overwritten, per-interface attach/detach
  (``in_domifattach``/``in_domifdetach``), the hooks address control calls.
* ``nud.py`` — beyond the seed: reachability (INCOMPLETE, REACHABLE, STALE,
  DELAY, PROBE) as one transition table, retransmit with backoff, expiry.
* ``acd.py`` — beyond the seed: RFC 5227 probe, announce and defend, a table too.
* ``timers.py`` — the timer heap both tables run on.
* ``config.py`` — settings (Linux/FreeBSD defaults) and counters, ``ArpDrop``.
* ``output.py`` — the frames and events ARP sends, through the engine's ``ArpSink``.
"""

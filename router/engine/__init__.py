"""The engine facade: the layers composed into one router, and its API.

* ``core.py`` — ``EngineConfig`` and ``EngineCore``: builds the data link
  layer, route table, address control, ARP, IPv4, the fast path, ``ngN``
  and taps, and runs the sans-I/O loop (frames and ticks in, frames,
  events and the next deadline out).
* ``api.py`` — ``Engine``: the API calls (the ioctl equivalents) over the
  core; where the seeds' rules meet callers (recycling an interface by name,
  the prefix hand-over when an alias goes, hooks and taps).
* ``edge.py`` — text and ``ipaddress`` values in, ints out; the numbered event log.
* ``parts.py`` — the Ethernet queue driver, the API hook outlet, the ARP domain.

``agents/`` uses ``Engine`` and ``EngineConfig`` through ``router``.
"""

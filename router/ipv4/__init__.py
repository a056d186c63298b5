"""IPv4 input and forwarding, ICMP, and the forwarding fast path.

No seed specifies these (DESIGN.md 2.3); they apply the seeds' queries on
the packet path (``in_localip`` for local delivery, ``in_canforward`` and
``in_broadcast`` for forwarding, ``dlil_output``'s pre-output for ARP):

* ``input.py`` — ``Ipv4``: header checks (counted drops, never
  exceptions), local delivery, ``ip_forward`` (TTL - 1 with the RFC 1624
  checksum, ICMP time exceeded / unreachable, no forwarding of broadcast or
  multicast), pre-output (the link destination: broadcast, multicast, ARP),
  datagrams the router originates.
* ``fragment.py`` — ``ip_fragment`` (RFC 791).
* ``reassembly.py`` — reassembly of datagrams addressed to the router, with
  bounded memory and time, overlaps dropped (forwarding never reassembles).
* ``options.py`` — the input check of IP options (malformed: parameter
  problem; source routes: dropped).
* ``icmp.py`` — echo replies, error messages, the RFC 1122/1812 rules on
  when not to send one, and Linux-style rate limits.
* ``fastpath.py`` — cached next hops in front of the generic path,
  invalidated by generation numbers, indistinguishable from it on the wire.
"""

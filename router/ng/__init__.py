"""Virtual point-to-point interfaces ``ngN`` and packet taps (seed: FreeBSD ``ng_iface.c``).

Where each of the seed's rules lives (``docs/seed-map.md`` has every function):

* ``iface.py`` — ``NetgraphIfaces``: create on the first free unit
  (``ng_iface_constructor``), shutdown (``ng_iface_shutdown``), connect and
  disconnect hooks (``ng_iface_newhook``: EPFNOSUPPORT, EISCONN;
  ``ng_iface_disconnect``), output (``ng_iface_output``: ENETDOWN unless up
  and running, the nesting limit of ``if_tunnel_check_nesting``),
  ``ng_iface_send`` (ENETDOWN without a hook), input from a hook
  (``ng_iface_rcvdata``), the tap feed (``ng_iface_bpftap``).
* ``hooks.py`` — one hook per family (``inet``, ``inet6``), the frames that
  cross them with their nesting tags, the peers at the far end.
* ``control.py`` — the node's messages (``ng_iface_rcvmsg``: get name and
  index, point2point/broadcast refused while UP with EBUSY, link up/down)
  and the interface's ioctls (``ng_iface_ioctl``: MTU bounds 72..65535).
* ``backtoback.py`` — two hooks joined in memory (the inter-host link in tests).
* ``tap.py``, ``pcap.py`` — taps on every interface (``bpfattach``/``bpf_mtap``)
  written as pcap: DLT_EN10MB for Ethernet, DLT_NULL for ``ngN``.
"""

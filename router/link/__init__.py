"""The link layer: interfaces and the data link layer (seed: XNU ``dlil.c``).

Where each of the seed's rules lives (``docs/seed-map.md`` has every function):

* ``ifnet.py`` — what an interface is (``struct ifnet``): name and unit,
  index, flags (UP, BROADCAST, POINTOPOINT, LOOPBACK, NOARP, MULTICAST,
  SIMPLEX, ARPLL), MTU, link address, counters, lifecycle state.
* ``datalink.py`` — ``DataLink``: acquire and recycle by unique id
  (``dlil_if_acquire``/``dlil_if_release``, EBUSY), attach (EEXIST, EINVAL,
  ENODEV, index allocation), detach and the deferred final detach
  (``ifnet_detach``/``ifnet_detach_final``), I/O references
  (``ifnet_is_attached``), protocol attachment v1/v2 and its reference
  (``ifnet_attach_protocol``, ``if_proto_free``), interface filters
  (``dlil_attach_filter``/``dlil_detach_filter``), ``dlil_post_msg``.
* ``lifecycle.py`` — the attach/detach/recycle transition table and its errnos.
* ``io.py`` — the per-packet paths: ``ifnet_input``/``dlil_input_packet_list``
  (demux, counters, filters, runs per protocol), ``dlil_output`` (pre-output,
  framer, output filters, driver), the filter passes, ``if_mcasts_update``.
* ``dispatch.py`` — the ioctl chain (``ifnet_ioctl``) and event delivery
  (``dlil_event_internal``): filters, then protocols in the seed's hash
  order, then the driver.
* ``arp_send.py`` — ``dlil_send_arp`` (link-local ARP fan-out to every
  ARPLL interface with an IPv4 address) and ``dlil_resolve_multi``.
* ``stubs.py`` — the safe callbacks a detached interface and protocol keep.
* ``ether.py``, ``loopback.py`` — the Ethernet and loopback family modules
  (demux, framer, multicast check).

The seams this layer implements (family module, driver, protocol, filter)
are described in ``router/contracts.py``.
"""

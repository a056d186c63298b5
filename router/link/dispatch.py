"""How a request or an event crosses one interface's parties (XNU ``dlil.c``).

Filters first, then the protocols, then the driver: the ioctl chain
(``ifnet_ioctl``) and event delivery (``dlil_event_internal``), and the
order in which an interface's protocols are visited (the seed's
``if_proto_hash`` walk). ``DataLink.ioctl`` and ``DataLink.deliver_event``
take the interface's I/O reference and call these; the protocol references
they take are released through the ``proto_unref`` they are given
(``DataLink.proto_unref``, which frees the last one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from router.contracts import IoctlCmd, ProtoAttachment
from router.errors import EJUSTRETURN, ENOTSUP, EOPNOTSUPP
from router.events import Event
from router.link.ifnet import AF_INET, AF_INET6, Interface

ProtoUnref = Callable[[Interface, ProtoAttachment], None]

AF_APPLETALK = 16
PF_VLAN = 0x766C616E  # 'vlan', XNU's protocol family of VLAN attachments
# proto_hash_value: the bucket of each family in the seed's if_proto_hash
_PROTO_BUCKET = {AF_INET: 0, AF_INET6: 1, AF_APPLETALK: 2, PF_VLAN: 3}
_OTHER_BUCKET = 4


def protocols_in_hash_order(ifp: Interface) -> list[ProtoAttachment]:
    """The attached protocols in the seed's ``if_proto_hash`` walk order.

    Events and the final detach's unplumbing visit IPv4, IPv6, AppleTalk and
    VLAN first, whatever order they were attached in, then every other
    family in attach order (they share the last bucket).
    """
    return sorted(ifp.protocols.values(),
                  key=lambda proto: _PROTO_BUCKET.get(proto.family, _OTHER_BUCKET))


def ioctl_chain(ifp: Interface, family: int, cmd: IoctlCmd, arg: Any,
                proto_unref: ProtoUnref) -> int:
    """``ifnet_ioctl``'s pass: filters, then the protocol of ``family``, then the driver.

    The caller holds an I/O reference (``DataLink.ioctl``); the protocol is
    held with one reference of its own for the call, dropped with
    ``proto_unref``. The precedence rules are :func:`_ioctl_merge`'s.
    """
    retval = EOPNOTSUPP
    for filt in ifp.filters:
        if filt.skip or filt.ioctl is None or (filt.family and filt.family != family):
            continue
        retval, done = _ioctl_merge(retval, filt.ioctl(ifp, family, cmd, arg))
        if done:
            return retval
    proto = ifp.protocols.get(family) if family else None
    if proto is not None:
        proto.refcount += 1
        try:
            result = proto.ioctl(ifp, family, cmd, arg) if proto.ioctl else EOPNOTSUPP
        finally:
            proto_unref(ifp, proto)
        retval, done = _ioctl_merge(retval, result)
        if done:
            return retval
    retval, _ = _ioctl_merge(retval, ifp.driver.ioctl(ifp, cmd, arg))  # type: ignore[union-attr]
    return retval


def event_to_interface(ifp: Interface, event: Event, proto_unref: ProtoUnref) -> None:
    """``dlil_event_internal``'s pass: filters, protocols (hash order), then the driver.

    The caller holds an I/O reference (``DataLink.deliver_event``); each
    protocol is held for its call and let go with ``proto_unref``.
    """
    for filt in ifp.filters:
        if not filt.skip and filt.event is not None:
            filt.event(ifp, filt.family, event)
    for proto in protocols_in_hash_order(ifp):
        if proto.event is None:
            continue
        proto.refcount += 1
        try:
            proto.event(ifp, proto.family, event)
        finally:
            proto_unref(ifp, proto)
    ifp.driver.event(ifp, event)  # type: ignore[union-attr]


def _ioctl_merge(retval: int, result: int) -> tuple[int, bool]:
    """One step of the ioctl chain: the new result and whether the chain ends."""
    if retval == EOPNOTSUPP or result == EJUSTRETURN:
        retval = EOPNOTSUPP if result == ENOTSUP else result
        return retval, retval not in (0, EOPNOTSUPP)
    return retval, False


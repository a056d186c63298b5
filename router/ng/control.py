"""Control of ``ngN`` interfaces (``ng_iface.c``): node messages and interface ioctls.

``NetgraphIfaces.message`` (``ng_iface_rcvmsg``) and the ``ngN`` driver's
ioctl (``ng_iface_ioctl``, reached through ``DataLink.ioctl``'s chain) check
that the interface is one of theirs and hand over to :func:`node_message`
and :func:`iface_ioctl`, which change the interface through the data link
layer.
"""

from __future__ import annotations

import enum
from typing import Any

from router.contracts import IoctlCmd
from router.errors import EBUSY, EINVAL, EOPNOTSUPP, RouterError
from router.events import EventKind
from router.link.datalink import DataLink
from router.link.ifnet import IfFlags, Interface, LinkState

# ng_iface.h
NG_IFACE_MTU_MIN = 72
NG_IFACE_MTU_MAX = 65535


class IfaceCommand(enum.IntEnum):
    """Control messages of the ``iface`` node type (``NGM_IFACE_COOKIE``)."""

    GET_IFNAME = 1
    POINT2POINT = 2
    BROADCAST = 3
    GET_IFINDEX = 4


class FlowCommand(enum.IntEnum):
    """Flow messages a peer sends upstream (``NGM_FLOW_COOKIE``)."""

    LINK_IS_UP = 32
    LINK_IS_DOWN = 33


class MessageCookie(enum.Enum):
    """The message families an ``ngN`` node understands."""

    IFACE = "iface"
    FLOW = "flow"


def node_message(dl: DataLink, ifp: Interface, cookie: MessageCookie | str,
                 cmd: int) -> str | int | None:
    """``ng_iface_rcvmsg``: a control message to the node of ``ifp``; returns the answer.

    iface messages: get-name (the interface name), get-index (its index),
    point2point / broadcast (``EBUSY`` while UP; swap POINTOPOINT and
    BROADCAST), anything else ``EINVAL``. Flow messages: link up / link
    down set the link state; others are ignored. Other cookies: ``EINVAL``.
    """
    try:
        cookie = MessageCookie(cookie)
    except ValueError:
        raise RouterError(EINVAL, "cookie", cookie, f"message to {ifp.name}") from None
    if cookie is MessageCookie.IFACE:
        return iface_message(dl, ifp, cmd)
    if cmd == FlowCommand.LINK_IS_UP:
        dl.set_link_state(ifp, LinkState.UP)
    elif cmd == FlowCommand.LINK_IS_DOWN:
        dl.set_link_state(ifp, LinkState.DOWN)
    return None


def iface_message(dl: DataLink, ifp: Interface, cmd: int) -> str | int | None:
    """The ``NGM_IFACE_COOKIE`` messages of :func:`node_message`."""
    if cmd == IfaceCommand.GET_IFNAME:
        return ifp.name
    if cmd == IfaceCommand.GET_IFINDEX:
        return ifp.index
    if cmd in (IfaceCommand.POINT2POINT, IfaceCommand.BROADCAST):
        mode = IfaceCommand(cmd).name.lower()
        if ifp.flags & IfFlags.UP:
            raise RouterError(EBUSY, "mode", mode, f"{mode} on {ifp.name}",
                              detail="interface is up")
        if cmd == IfaceCommand.POINT2POINT:
            flags = (ifp.flags | IfFlags.POINTOPOINT) & ~IfFlags.BROADCAST
        else:
            flags = (ifp.flags | IfFlags.BROADCAST) & ~IfFlags.POINTOPOINT
        _change_flags(dl, ifp, flags)
        return None
    raise RouterError(EINVAL, "command", cmd, f"message to {ifp.name}")


def _change_flags(dl: DataLink, ifp: Interface, flags: IfFlags) -> None:
    if flags == ifp.flags:
        return
    ifp.flags = flags
    ifp.generation += 1
    dl.post_event(ifp, EventKind.IF_FLAGS_CHANGED, {"flags": int(flags)})


def iface_ioctl(dl: DataLink, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
    """``ng_iface_ioctl``, reached through ``DataLink.ioctl``'s chain.

    SIOCSIFADDR marks the interface UP and RUNNING; SIOCGIFADDR is fine;
    SIOCSIFFLAGS starts the interface (RUNNING) when UP is requested and
    stops it otherwise; SIOCSIFMTU takes 72..65535 (else ``EINVAL``);
    multicast joins and leaves are accepted; SIOCSIFPHYS is
    ``EOPNOTSUPP``; anything else ``EINVAL``.
    """
    if cmd == IoctlCmd.SIOCSIFADDR:
        dl.set_up(ifp, True)
        set_running(ifp, True)
        return 0
    if cmd == IoctlCmd.SIOCGIFADDR:
        return 0
    if cmd == IoctlCmd.SIOCSIFFLAGS:
        if not isinstance(arg, int):
            return EINVAL
        set_running(ifp, bool(arg & IfFlags.UP))
        return 0
    if cmd == IoctlCmd.SIOCSIFMTU:
        if not isinstance(arg, int) or not NG_IFACE_MTU_MIN <= arg <= NG_IFACE_MTU_MAX:
            return EINVAL
        ifp.mtu = arg
        ifp.generation += 1
        return 0
    if cmd in (IoctlCmd.SIOCADDMULTI, IoctlCmd.SIOCDELMULTI):
        return 0
    if cmd == IoctlCmd.SIOCSIFPHYS:
        return EOPNOTSUPP
    return EINVAL


def set_running(ifp: Interface, running: bool) -> None:
    """Start or stop the driver: RUNNING on (OACTIVE cleared) or both off."""
    if running:
        flags = (ifp.flags & ~IfFlags.OACTIVE) | IfFlags.RUNNING
    else:
        flags = ifp.flags & ~(IfFlags.RUNNING | IfFlags.OACTIVE)
    if flags != ifp.flags:
        ifp.flags = flags
        ifp.generation += 1

"""The hooks of ``ngN`` interfaces (``ng_iface.c``): names, frames and peers.

An ``ngN`` has one hook per address family (``inet``, ``inet6``). What
crosses a hook is an :class:`NgFrame`: the packet's bytes with its family
and the nesting tags (the ``ngN`` interfaces it has crossed). The far end is
a :class:`HookPeer`: the agent's gRPC packet stream, or another ``ngN``
(``router.ng.backtoback`` joins two in memory). :class:`NgHook` is one
connected hook; its owner (``router.ng.iface.NetgraphIfaces``) is the
:class:`HookOwner` it calls back.
"""

from __future__ import annotations

from typing import Protocol

from router.link.ifnet import AF_INET, AF_INET6, Interface

HOOK_INET = "inet"
HOOK_INET6 = "inet6"

# gFamilies: the address families an ngN carries, each with its hook's name.
_HOOK_FAMILIES: tuple[tuple[int, str], ...] = ((AF_INET, HOOK_INET), (AF_INET6, HOOK_INET6))
_FAMILY_BY_HOOK = {name: family for family, name in _HOOK_FAMILIES}
_HOOK_BY_FAMILY = dict(_HOOK_FAMILIES)


def family_of_hook(name: str) -> int | None:
    """``get_iffam_from_name``: the family a hook name stands for, or None."""
    return _FAMILY_BY_HOOK.get(name)


def hook_of_family(family: int) -> str | None:
    """``get_iffam_from_af``: the hook name of an address family, or None."""
    return _HOOK_BY_FAMILY.get(family)


class NgFrame(bytes):
    """A packet's bytes with the family and nesting tags the seed keeps on the mbuf.

    ``crossed`` lists the ``ngN`` interfaces the packet went out of, newest
    last (``if_tunnel_check_nesting``'s tags, compared by identity).
    """

    family: int
    crossed: tuple[Interface, ...]

    def __new__(cls, data: bytes | bytearray | memoryview, family: int,
                crossed: tuple[Interface, ...] = ()) -> NgFrame:
        frame = super().__new__(cls, data)
        frame.family = family
        frame.crossed = crossed
        return frame


def own_frame(data: bytes | bytearray | memoryview, family: int,
               crossed: tuple[Interface, ...]) -> NgFrame:
    """``data`` as an :class:`NgFrame` of ``family``; an NgFrame handed over is reused."""
    if isinstance(data, NgFrame):
        data.family = family
        data.crossed = crossed
        return data
    return NgFrame(data, family, crossed)


class HookPeer(Protocol):
    """The far end of an ``ngN`` hook: a gRPC packet stream or another ``ngN``.

    ``receive`` is called with every packet the interface sends to the hook
    and returns 0 or an errno (the interface counts the packet as sent only
    on 0). The packet may be an :class:`NgFrame`; a peer that forwards it
    within the process should pass the object on to keep its tags.
    ``disconnected`` is called once when the hook is cut from the
    interface's side (disconnect or shutdown).
    """

    def receive(self, family: int, packet: bytes) -> int: ...

    def disconnected(self) -> None: ...



class HookOwner(Protocol):
    """Who made a hook and runs the interface behind it (``NetgraphIfaces``)."""

    def receive(self, hook: NgHook, packet: bytes | bytearray | memoryview) -> int: ...

    def disconnect(self, hook: NgHook) -> None: ...


class NgHook:
    """One connected hook of an ``ngN`` node. Made by :meth:`NetgraphIfaces.connect`."""

    __slots__ = ("family", "ifp", "manager", "name", "peer")

    def __init__(self, manager: HookOwner, ifp: Interface, name: str, family: int,
                 peer: HookPeer) -> None:
        self.manager = manager
        self.ifp = ifp
        self.name = name
        self.family = family
        self.peer: HookPeer | None = peer

    @property
    def connected(self) -> bool:
        return self.peer is not None

    def inject(self, packet: bytes | bytearray | memoryview) -> int:
        """The peer sends ``packet`` into the interface (``ng_iface_rcvdata``)."""
        return self.manager.receive(self, packet)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "cut"
        return f"<NgHook {self.ifp.name}.{self.name} {state}>"


"""Two ``ngN`` hooks joined in memory: the test double of an inter-host link."""

from __future__ import annotations

from router.errors import ENETDOWN, RouterError
from router.link.ifnet import Interface
from router.ng.hooks import HOOK_INET, NgHook
from router.ng.iface import NetgraphIfaces


class _LinkEnd:
    """One end of an in-memory hook-to-hook link: relays to the other end's hook."""

    __slots__ = ("far",)

    def __init__(self) -> None:
        self.far: NgHook | None = None

    def receive(self, family: int, packet: bytes) -> int:
        far = self.far
        if far is None or not far.connected:
            return ENETDOWN
        return far.inject(packet)

    def disconnected(self) -> None:
        far, self.far = self.far, None
        if far is not None and far.connected:
            far.manager.disconnect(far)


def link_back_to_back(
    left: NetgraphIfaces, left_ifp: Interface, right: NetgraphIfaces, right_ifp: Interface,
    hook: str = HOOK_INET,
) -> tuple[NgHook, NgHook]:
    """Connect the ``hook`` of two ``ngN`` interfaces to each other, in memory.

    What goes out of one comes into the other, synchronously — the test
    double of an inter-host link. Cutting either hook cuts both. The two
    interfaces may belong to the same manager or to two engines.
    """
    left_end, right_end = _LinkEnd(), _LinkEnd()
    left_hook = left.connect(left_ifp, hook, left_end)
    try:
        right_hook = right.connect(right_ifp, hook, right_end)
    except RouterError:
        left_end.far = None
        left.disconnect(left_hook)
        raise
    left_end.far = right_hook
    right_end.far = left_hook
    return left_hook, right_hook

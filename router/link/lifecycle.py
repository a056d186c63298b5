"""The interface lifecycle as a transition table (dlil.c attach/detach/recycle).

One table says which lifecycle event is allowed in which state and where it
leads; a second says which errno refuses every other pair. ``DataLink`` applies
the table before it does any work, so an API call in the wrong state fails
with the seed's errno and changes nothing. The tests walk both tables.

The seed keeps the same facts in ``if_refflags`` (ATTACHED, DETACHING) and
``dl_if_flags`` (INUSE, REUSE); vrc names the combinations as states::

    (new) --acquire--> EMBRYONIC --attach--> ATTACHED --detach--> DETACHING
    DETACHING --final detach (no I/O reference left)--> DETACHED
    DETACHED --attach--> ATTACHED          (re-attach, keeps the index)
    EMBRYONIC | DETACHED --release--> RELEASED --acquire same id--> EMBRYONIC
"""

from __future__ import annotations

import enum

from router.errors import EBUSY, EEXIST, EINVAL, ENXIO, RouterError
from router.link.ifnet import IfState


class LifeEvent(enum.Enum):
    """What can happen to an interface object."""

    ACQUIRE = "acquire"  # dlil_if_acquire finding a released interface with the same id
    ATTACH = "attach"  # ifnet_attach
    DETACH = "detach"  # ifnet_detach
    FINAL_DETACH = "final_detach"  # ifnet_detach_final, once no I/O reference is left
    RELEASE = "release"  # dlil_if_release


TRANSITIONS: dict[tuple[IfState, LifeEvent], IfState] = {
    (IfState.RELEASED, LifeEvent.ACQUIRE): IfState.EMBRYONIC,
    (IfState.EMBRYONIC, LifeEvent.ATTACH): IfState.ATTACHED,
    (IfState.DETACHED, LifeEvent.ATTACH): IfState.ATTACHED,
    (IfState.ATTACHED, LifeEvent.DETACH): IfState.DETACHING,
    (IfState.DETACHING, LifeEvent.FINAL_DETACH): IfState.DETACHED,
    (IfState.EMBRYONIC, LifeEvent.RELEASE): IfState.RELEASED,
    (IfState.DETACHED, LifeEvent.RELEASE): IfState.RELEASED,
}

# Why each refused pair is refused. Pairs missing here (and from TRANSITIONS)
# are plain misuse: EINVAL.
REFUSALS: dict[tuple[IfState, LifeEvent], int] = {
    # an id whose interface is not released is in use (dlil_if_acquire)
    (IfState.EMBRYONIC, LifeEvent.ACQUIRE): EBUSY,
    (IfState.ATTACHED, LifeEvent.ACQUIRE): EBUSY,
    (IfState.DETACHING, LifeEvent.ACQUIRE): EBUSY,
    (IfState.DETACHED, LifeEvent.ACQUIRE): EBUSY,
    # ifnet_attach: already on the interface list
    (IfState.ATTACHED, LifeEvent.ATTACH): EEXIST,
    # the seed would trip an assertion; vrc says "wait for the final detach"
    (IfState.DETACHING, LifeEvent.ATTACH): EBUSY,
    # ifnet_detach: "has already been detached"
    (IfState.DETACHING, LifeEvent.DETACH): ENXIO,
    # the final detach waits for the I/O references; release waits for both
    (IfState.ATTACHED, LifeEvent.RELEASE): EBUSY,
    (IfState.DETACHING, LifeEvent.RELEASE): EBUSY,
}


def refusal(state: IfState, event: LifeEvent) -> int:
    """The errno that refuses ``event`` in ``state`` (0 if it is allowed)."""
    if (state, event) in TRANSITIONS:
        return 0
    return REFUSALS.get((state, event), EINVAL)


def next_state(state: IfState, event: LifeEvent, subject: str = "") -> IfState:
    """Where ``event`` leads from ``state``; raises the refusal's errno otherwise."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise RouterError(
            refusal(state, event), "state", state.value, subject,
            detail=f"cannot {event.value} an interface that is {state.value}",
        ) from None

"""The interpreter's settings for the packet path: the collector and the allocator.

Both are process-wide and set once, after start-up and before the data-plane
loop runs (``agents/daemon.py``). docs/agent.md ("The garbage collector",
"The allocator") has the measurements.
"""

from __future__ import annotations

import ctypes
import gc

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Frames up to this size come from the heap, never from a fresh mmap (a 64 KiB GSO
#: super-frame and its copies; the default threshold starts at 128 KiB and moves).
MMAP_THRESHOLD = 1 << 20
#: Free memory at the heap's top is kept up to this much instead of being given back.
TRIM_THRESHOLD = 64 << 20


def quiet_collector() -> None:
    """Keep the garbage collector's full passes off the packet path.

    Everything built at start-up (gRPC, protobuf, the engine's tables) is
    moved to the permanent generation, so an oldest-generation pass no
    longer walks it; the data plane's per-frame tuples and lists only ever
    live for one batch. Measured: a full pass over that heap (32k tracked
    objects) takes 20-30 ms, 0.0 ms after the freeze.
    """
    gc.collect()
    gc.freeze()


def steady_allocator() -> bool:
    """Stop glibc from giving the heap's top back after every large frame.

    A 61 KB super-frame is allocated and freed several times per forward
    (its copy out of the receive buffer, the rewritten frame); with glibc's
    default trim threshold the freed top of the heap is returned to the
    kernel each time and faulted in again, page by page, for the next frame:
    27.6 page faults per forwarded super-frame, 72-93 us of loop time, 38 us
    with these settings (0 faults). False where ``mallopt`` is missing (not
    glibc): the agent works the same, only slower on large frames.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))

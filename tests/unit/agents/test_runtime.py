"""The interpreter settings of agents/runtime.py: what they change, not how fast."""

from __future__ import annotations

import gc
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

from agents import runtime

REPO = Path(__file__).resolve().parents[3]


def test_quiet_collector_moves_the_start_up_heap_to_the_permanent_generation() -> None:
    kept = [[object()] for _ in range(1000)]  # tracked containers that live on
    try:
        runtime.quiet_collector()
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()


def _faults_per_frame(tune: bool) -> float:
    """Minor page faults per 61 KB frame, in a fresh interpreter: batches of 8 super-frames
    copied twice (out of the receive buffer, rewritten) and freed, as the loop does."""
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(REPO)!r})
        from agents import runtime
        if {tune!r}:
            assert runtime.steady_allocator()
        source = bytearray(61000)
        def batch():
            frames = [bytes(source) for _ in range(8)]
            out = [b"".join((frame[:26], frame[26:])) for frame in frames]
            del frames, out
        for _ in range(10):
            batch()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(100):
            batch()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 800)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60)
    return float(out.stdout)


def test_steady_allocator_stops_large_frames_from_faulting_the_heap_in_again() -> None:
    assert runtime.steady_allocator() is True  # glibc: CI runs on Debian
    assert _faults_per_frame(tune=True) < 0.5
    assert _faults_per_frame(tune=False) > 2  # the mutation: without it, every frame faults


def test_getrusage_counts_faults_here() -> None:
    # the fault test above means something only if this interpreter counts minor faults
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt > 0

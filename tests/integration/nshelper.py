"""A helper process run inside a test namespace: drives one PacketLink and isolation.

Started with ``ip netns exec NS python3 tests/integration/nshelper.py``; reads
one JSON command per line on stdin and answers one JSON object per line on
stdout, so a test can hold a link open in a namespace while it makes the
kernel (ping, arping) act in another. Frames travel as hex strings. Every
receive is bounded by its ``timeout``; the process exits on EOF.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agents.isolation import DropMethod, Isolation, IsolationSet, isolate, restore_previous
from agents.link import PacketLink, RingConfig, TxMode
from agents.nicrecord import RunDir
from router.offload import OffloadFrame


def _offload(frame: bytes) -> dict[str, int] | None:
    """The offload description of a received frame (None for a finished frame)."""
    if type(frame) is not OffloadFrame:
        return None
    return {"flags": frame.flags, "gso_type": frame.gso_type, "hdr_len": frame.hdr_len,
            "gso_size": frame.gso_size, "csum_start": frame.csum_start,
            "csum_offset": frame.csum_offset}


class Helper:
    def __init__(self) -> None:
        self.link: PacketLink | None = None
        self.isolation: Isolation | None = None
        self.recorded: IsolationSet | None = None

    def _link(self) -> PacketLink:
        if self.link is None:
            raise RuntimeError("no link open")
        return self.link

    def op_open(self, ifname: str, tx_mode: str = "auto", frame_count: int = 4096
                ) -> dict[str, Any]:
        config = RingConfig(tx_mode=TxMode(tx_mode), frame_count=frame_count)
        self.link = PacketLink.open(ifname, config)
        nic = self.link.nic
        return {"mac": nic.mac.hex(), "mtu": nic.mtu, "ifindex": nic.ifindex}

    def op_recv(self, want: int, timeout: float, max: int = 256) -> dict[str, Any]:
        link = self._link()
        frames: list[bytes] = []
        batches: list[int] = []
        deadline = time.monotonic() + timeout
        while len(frames) < want and time.monotonic() < deadline:
            got = link.recv_batch(min(max, want - len(frames)))
            if got:
                frames.extend(got)
                batches.append(len(got))
            else:
                time.sleep(0.001)
        return {"frames": [f.hex() for f in frames], "batches": batches,
                "offload": [_offload(f) for f in frames]}

    def op_send(self, frames: list[str]) -> dict[str, Any]:
        return {"sent": self._link().send_batch([bytes.fromhex(f) for f in frames])}

    def op_send_offload(self, frame: str, offload: dict[str, int]) -> dict[str, Any]:
        made = OffloadFrame.make(bytes.fromhex(frame), **offload)
        return {"sent": self._link().send_batch([made])}

    def op_promisc(self, on: bool) -> dict[str, Any]:
        self._link().set_promiscuous(on)
        return {"promiscuous": self._link().promiscuous}

    def op_stats(self) -> dict[str, Any]:
        link = self._link()
        packets, drops = link.kernel_stats()
        stats = link.stats
        return {"rx_frames": stats.rx_frames, "tx_frames": stats.tx_frames,
                "rx_offload": stats.rx_offload, "rx_copies": stats.rx_copies,
                "rx_truncated": stats.rx_truncated,
                "tx_errors": stats.tx_errors, "kernel_packets": packets,
                "kernel_drops": drops, "outgoing_skipped": stats.rx_outgoing_skipped}

    def op_isolate(self, ifname: str, methods: list[str],
                   run_dir: str | None = None) -> dict[str, Any]:
        """Isolate ``ifname``; with ``run_dir``, recorded there first (as vrc-agent does)."""
        drop = tuple(DropMethod(m) for m in methods)
        if run_dir is None:
            self.isolation = isolate(ifname, drop)
        else:
            self.recorded = self.recorded or IsolationSet(RunDir(run_dir))
            self.isolation = self.recorded.add(ifname, drop)
        method = self.isolation.method
        return {"method": method.value if method else None}

    def op_unisolate(self) -> dict[str, Any]:
        if self.recorded is not None:
            errors = self.recorded.remove()
        else:
            errors = self.isolation.remove() if self.isolation is not None else []
        self.isolation = self.recorded = None
        return {"errors": errors}

    def op_restore_previous(self, run_dir: str) -> dict[str, Any]:
        report = restore_previous(RunDir(run_dir))
        return {"restored": report.restored, "dropped": report.dropped, "busy": report.busy,
                "failed": report.failed}

    def op_close(self) -> dict[str, Any]:
        if self.link is not None:
            self.link.close()
            self.link.close()  # idempotent
        return {"closed": True}


def main() -> None:
    helper = Helper()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            reply = getattr(helper, f"op_{op}")(**request)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    if helper.recorded is not None:
        helper.recorded.remove()
    elif helper.isolation is not None:
        helper.isolation.remove()
    if helper.link is not None:
        helper.link.close()


if __name__ == "__main__":
    main()

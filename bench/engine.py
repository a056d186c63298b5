"""In-process forwarding through one Engine, beside a scapy loop and a minimal floor loop.

The engine forwards 64-byte UDP frames between two Ethernet interfaces with
resolved neighbours, fed in batches as the agent's data-plane loop feeds it
(``receive_batch`` then ``transmit``). Two references run in the same
process on the same frames:

* scapy: ``Ether(frame)``, TTL - 1, ``del chksum``, MAC rewrite, ``bytes()``;
* the floor: only the byte work forwarding needs — check ethertype, IHL and
  destination MAC, read TTL and destination, one dict lookup, rewrite the
  MACs, decrement the TTL, RFC 1624 checksum update.

A fourth line shows the same engine with the fast path off (every frame
through demux, IPv4 input, route lookup, ARP and the framer), and a fifth
local delivery: ICMP echo requests addressed to the router's own ``eth0``
address, answered through the generic path (``echo`` counts the replies).
``ecmp`` and ``ecmp-gen`` forward the same kind of frames, 1,000 UDP flows,
over a two-leg multipath route (``Engine.set_route``), with the fast path
on and off.

Usage: ``python3 bench/engine.py [--seconds 2] [--batch 256] [--profile [engine|generic|echo]]``.
Timing is printed, never asserted. Each figure is the best of five rounds of
``seconds / 5`` (on a shared machine the best round is the least disturbed),
and the engine measured is this checkout's ``router`` package, whichever
checkout the editable install points at.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout, not whatever is installed

from router import Engine, EngineConfig  # noqa: E402
from router.wire.checksum import TTL_DECREMENT_CHECKSUM  # noqa: E402

IN_MAC = "02:00:00:00:00:01"
OUT_MAC = "02:00:00:00:00:02"
SENDER_MAC = "02:00:00:00:01:01"
DESTINATIONS = 16


def neighbour_mac(index: int) -> str:
    return f"02:00:00:00:02:{index:02x}"


def build_engine(fast_path: bool = True) -> Engine:
    engine = Engine(EngineConfig(fast_path=fast_path))
    engine.add_ethernet("eth0", IN_MAC)
    engine.add_ethernet("eth1", OUT_MAC)
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth1", "10.1.0.1/24")
    engine.set_arp("eth0", "10.0.0.2", SENDER_MAC)
    for index in range(DESTINATIONS):
        engine.set_arp("eth1", f"10.1.0.{index + 10}", neighbour_mac(index))
    engine.drain_events()
    engine.transmit()  # the new addresses' gratuitous ARPs, not forwarded frames
    return engine


ECMP_LEGS = [("10.1.0.250", "eth1"), ("10.2.0.250", "eth2")]


def build_ecmp_engine(fast_path: bool = True) -> Engine:
    """``build_engine`` plus eth2 and 10.9.0.0/16 over two legs (eth1, eth2)."""
    engine = build_engine(fast_path)
    engine.add_ethernet("eth2", "02:00:00:00:00:03")
    engine.add_alias("eth2", "10.2.0.1/24")
    engine.set_arp("eth1", "10.1.0.250", neighbour_mac(0xFA))
    engine.set_arp("eth2", "10.2.0.250", neighbour_mac(0xFB))
    engine.set_route("10.9.0.0/16", ECMP_LEGS)
    engine.drain_events()
    engine.transmit()  # eth2's gratuitous ARP
    return engine


def build_ecmp_frames(count: int) -> list[bytes]:
    """64-byte UDP frames to 10.9.0.0/16, 1,000 flows (source ports)."""
    return [bytes(Ether(dst=IN_MAC, src=SENDER_MAC)
                  / IP(src="10.0.0.2", dst=f"10.9.0.{index % DESTINATIONS + 10}",
                       id=index & 0xFFFF)
                  / UDP(sport=1024 + index % 1000, dport=9) / (b"\x00" * 22))
            for index in range(count)]


def build_frames(count: int) -> list[bytes]:
    """64-byte frames (no FCS): Ethernet 14 + IPv4 20 + UDP 8 + 22 bytes of payload."""
    frames = []
    for index in range(count):
        dst = f"10.1.0.{index % DESTINATIONS + 10}"
        frame = bytes(Ether(dst=IN_MAC, src=SENDER_MAC)
                      / IP(src="10.0.0.2", dst=dst, id=index & 0xFFFF)
                      / UDP(sport=1024 + index % 1000, dport=9) / (b"\x00" * 22))
        assert len(frame) == 64
        frames.append(frame)
    return frames


def build_echo_requests(count: int) -> list[bytes]:
    """ICMP echo requests from the eth0 neighbour to the router's own eth0 address."""
    return [bytes(Ether(dst=IN_MAC, src=SENDER_MAC)
                  / IP(src="10.0.0.2", dst="10.0.0.1", id=index & 0xFFFF)
                  / ICMP(type=8, id=7, seq=index & 0xFFFF) / (b"\x00" * 18))
            for index in range(count)]


def engine_loop(engine: Engine, batch: list[bytes]) -> Callable[[], int]:
    clock = [0.0]

    def run() -> int:
        clock[0] += 0.0001
        engine.receive_batch(1, batch, clock[0])
        return len(engine.transmit())

    return run


def scapy_loop(batch: list[bytes]) -> Callable[[], int]:
    out_src = OUT_MAC
    macs = {f"10.1.0.{i + 10}": neighbour_mac(i) for i in range(DESTINATIONS)}

    def run() -> int:
        sent = []
        for frame in batch:
            packet = Ether(frame)
            ip = packet[IP]
            ip.ttl -= 1
            del ip.chksum
            packet.src = out_src
            packet.dst = macs[ip.dst]
            sent.append(bytes(packet))
        return len(sent)

    return run


def floor_loop(batch: list[bytes]) -> Callable[[], int]:
    """The least byte work a Python forwarder does per frame (see the module docstring)."""
    my_mac = bytes.fromhex(IN_MAC.replace(":", ""))
    out_mac = bytes.fromhex(OUT_MAC.replace(":", ""))
    next_hops = {
        bytes((10, 1, 0, i + 10)): bytes.fromhex(neighbour_mac(i).replace(":", "")) + out_mac
        for i in range(DESTINATIONS)
    }
    table = TTL_DECREMENT_CHECKSUM

    def run() -> int:
        sent: list[bytes] = []
        append = sent.append
        for frame in batch:
            if frame[12:15] != b"\x08\x00\x45" or frame[:6] != my_mac:
                continue
            ttl = frame[22]
            if ttl <= 1:
                continue
            macs = next_hops.get(frame[30:34])
            if macs is None:
                continue
            checksum = table[(frame[24] << 8) | frame[25]]
            # one concatenation builds the rewritten frame: cheaper than a bytearray copy
            append(macs + frame[12:22] + bytes((ttl - 1, frame[23], checksum >> 8, checksum & 0xFF))
                   + frame[26:])
        return len(sent)

    return run


def measure(run: Callable[[], int], seconds: float, rounds: int = 5) -> float:
    """Frames per second of ``run`` (one batch per call): the best of ``rounds`` rounds
    sharing ``seconds``."""
    run()  # warm caches (the engine's fast path fills on the first batch)
    best = 0.0
    for _ in range(rounds):
        frames = 0
        start = time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            frames += run()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, frames / (now - start))
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=256, help="frames per receive_batch")
    parser.add_argument("--profile", choices=("engine", "generic", "echo"), nargs="?",
                        const="engine", default=None, help="cProfile one engine loop")
    args = parser.parse_args(argv)

    engine = build_engine()
    batch = build_frames(args.batch)
    check = engine_loop(engine, batch)
    forwarded = check()
    if forwarded != len(batch):
        raise SystemExit(f"engine forwarded {forwarded} of {len(batch)} frames")

    echo_engine = build_engine(fast_path=False)
    echoes = build_echo_requests(args.batch)
    replies = engine_loop(echo_engine, echoes)()
    if replies != len(echoes):
        raise SystemExit(f"engine answered {replies} of {len(echoes)} echo requests")

    ecmp_batch = build_ecmp_frames(args.batch)
    ecmp_engine = build_ecmp_engine()
    if engine_loop(ecmp_engine, ecmp_batch)() != len(ecmp_batch):
        raise SystemExit("the engine did not forward every multipath frame")

    results = {
        "engine": measure(engine_loop(engine, batch), args.seconds),
        "ecmp": measure(engine_loop(ecmp_engine, ecmp_batch), args.seconds),
        "ecmp-gen": measure(engine_loop(build_ecmp_engine(fast_path=False), ecmp_batch),
                            args.seconds),
        "generic": measure(engine_loop(build_engine(fast_path=False), batch), args.seconds),
        "echo": measure(engine_loop(echo_engine, echoes), args.seconds),
        "scapy": measure(scapy_loop(batch), args.seconds),
        "floor": measure(floor_loop(batch), args.seconds),
    }
    hits = engine.fastpath.hits if engine.fastpath is not None else 0
    print(f"64-byte UDP frames, batches of {args.batch}, {args.seconds:g} s each"
          f" (best of 5 rounds), router from {Path(sys.modules['router'].__file__ or '').parent}")
    for name, pps in results.items():
        unit = "replies/s" if name == "echo" else "frames/s"
        print(f"  {name:<8} {pps:>12,.0f} {unit}")
    print(f"  engine/scapy {results['engine'] / results['scapy']:.2f}")
    print(f"  engine/floor {results['engine'] / results['floor']:.2f}")
    print(f"  engine/generic {results['engine'] / results['generic']:.2f}"
          "  (the same engine with the fast path off)")
    print(f"  fast-path hits {hits:,}")
    if args.profile:
        run = {"engine": lambda: engine_loop(engine, batch),
               "generic": lambda: engine_loop(build_engine(fast_path=False), batch),
               "echo": lambda: engine_loop(build_engine(fast_path=False), echoes)}[args.profile]()
        profiler = cProfile.Profile()
        profiler.enable()
        measure(run, args.seconds)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()

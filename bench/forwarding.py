"""Forwarding benchmark: gen -> R -> sink, R being the kernel, vrc-agent or scapy.

Run as root from the repository root::

    python3 bench/forwarding.py [--seconds 5] [--quick] [--rate PPS]

It creates three network namespaces joined by two veth pairs (unique names,
removed at exit, also on failure or Ctrl-C)::

    gen: g0 10.10.0.2/24 ── rg  R  rs ── s0 10.20.0.2/24 :sink

and offers 64-byte UDP frames (60 bytes on the wire without FCS) from gen
with trafgen, addressed to R's MAC and to the sink's IP. For each R in turn —
(1) the Linux kernel with ``ip_forward=1``, (2) ``vrc-agent``, (3) a scapy
sniff-and-send forwarder — it counts the frames the sink's veth received
(``/sys/class/net/s0/statistics/rx_packets``) over the same window, and
prints frames/s and the ratios agent/kernel and agent/scapy. It also
measures ping round-trip times gen -> sink through the kernel and through
the agent. Figures vary from machine to machine; only the ratios measured in
one run compare like with like. No traffic leaves the namespaces.
"""

from __future__ import annotations

import argparse
import atexit
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.netns import (  # noqa: E402
    Lab,
    LabError,
    Netns,
    require_root_and_tools,
    script_argv,
    wait_until,
)

GEN_ADDR, R_GEN_ADDR = "10.10.0.2", "10.10.0.1"
SINK_ADDR, R_SINK_ADDR = "10.20.0.2", "10.20.0.1"
UDP_PORT = 9  # discard
FRAME_LEN = 60  # a 64-byte Ethernet frame less its FCS


@dataclass
class Net:
    lab: Lab
    gen: Netns
    r: Netns
    sink: Netns
    g0: str
    rg: str
    rs: str
    s0: str


@dataclass
class Result:
    name: str
    delivered_fps: float
    offered_fps: float


def build(lab: Lab) -> Net:
    gen, r, sink = lab.netns("gen"), lab.netns("r"), lab.netns("sink")
    g0, rg = lab.veth(gen, "g0", r, "rg")
    rs, s0 = lab.veth(r, "rs", sink, "s0")
    gen.ip("addr", "add", f"{GEN_ADDR}/24", "dev", g0)
    gen.ip("route", "add", "default", "via", R_GEN_ADDR)
    sink.ip("addr", "add", f"{SINK_ADDR}/24", "dev", s0)
    sink.ip("route", "add", "default", "via", R_SINK_ADDR)
    for ns, ifname in ((gen, g0), (r, rg), (r, rs), (sink, s0)):
        ns.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "1")
    return Net(lab, gen, r, sink, g0, rg, rs, s0)


def _checksum(data: bytes) -> int:
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(dst_mac: str, src_mac: str) -> bytes:
    """gen -> sink UDP, padded to 60 bytes; UDP checksum 0 (allowed for IPv4)."""
    payload = bytes(FRAME_LEN - 14 - 20 - 8)
    udp = (40000).to_bytes(2, "big") + UDP_PORT.to_bytes(2, "big")
    udp += (8 + len(payload)).to_bytes(2, "big") + b"\x00\x00" + payload
    src = bytes(int(x) for x in GEN_ADDR.split("."))
    dst = bytes(int(x) for x in SINK_ADDR.split("."))
    header = bytearray(b"\x45\x00" + (20 + len(udp)).to_bytes(2, "big") + b"\x00\x01\x00\x00"
                       + b"\x40\x11\x00\x00" + src + dst)
    header[10:12] = _checksum(bytes(header)).to_bytes(2, "big")
    return (bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
            + b"\x08\x00" + bytes(header) + udp)


def write_trafgen_config(path: Path, frame: bytes) -> None:
    path.write_text("{ " + ", ".join(f"0x{b:02x}" for b in frame) + " }\n")


def offer_and_count(net: Net, conf: Path, seconds: float, rate: int | None) -> tuple[float, float]:
    """Run trafgen for ``seconds`` (bounded by -n and a kill), count at gen and sink."""
    argv = ["trafgen", "--dev", net.g0, "--conf", str(conf), "--cpus", "1",
            "--num", str(int(max(seconds, 1) * 5_000_000)),
            "--no-sock-mem", "--notouch-irq", "--no-cpu-stats"]
    if rate:
        argv += ["--rate", f"{rate}pps"]
    proc = subprocess.Popen(net.gen.argv(*argv), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    net.lab.processes.append(proc)
    try:
        time.sleep(0.3)  # past trafgen's start-up
        sent0, got0, t0 = net.gen.counter(net.g0, "tx_packets"), _sink_rx(net), time.monotonic()
        time.sleep(seconds)
        sent1, got1, t1 = net.gen.counter(net.g0, "tx_packets"), _sink_rx(net), time.monotonic()
    finally:
        net.lab.stop(proc, timeout=5)
    elapsed = t1 - t0
    return (got1 - got0) / elapsed, (sent1 - sent0) / elapsed


def _sink_rx(net: Net) -> int:
    return net.sink.counter(net.s0, "rx_packets")


def ping_rtt(net: Net, count: int) -> float | None:
    """Average RTT gen -> sink in ms (``ping -i 0.01``), or None if nothing came back."""
    proc = net.gen.run("ping", "-n", "-q", "-c", str(count), "-i", "0.01", "-w",
                       str(max(5, count // 50)), SINK_ADDR, check=False, timeout=count + 30)
    match = re.search(r"= [\d.]+/([\d.]+)/", proc.stdout)
    return float(match.group(1)) if match else None


# --- the three routers ----------------------------------------------------------------------


def kernel_router(net: Net) -> None:
    net.r.ip("addr", "add", f"{R_GEN_ADDR}/24", "dev", net.rg)
    net.r.ip("addr", "add", f"{R_SINK_ADDR}/24", "dev", net.rs)
    net.r.sysctl("net.ipv4.ip_forward", "1")


def kernel_router_off(net: Net) -> None:
    net.r.sysctl("net.ipv4.ip_forward", "0")
    for ifname in (net.rg, net.rs):
        net.r.ip("addr", "flush", "dev", ifname)
    for ns, ifname in ((net.gen, net.g0), (net.sink, net.s0)):
        ns.ip("neigh", "flush", "dev", ifname)


def start_agent(net: Net, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import grpc

    from vrc.v1 import agent_pb2, agent_pb2_grpc

    target = f"unix:{workdir / 'agent.sock'}"
    argv = [*script_argv("vrc-agent"), "--interface", net.rg, "--interface", net.rs,
            "--listen", target, "--log-level", "warning", "--arp-probes", "0"]
    proc = net.lab.spawn(net.r, *argv, log=workdir / "agent.log")
    with grpc.insecure_channel(target) as channel:
        stub = agent_pb2_grpc.AgentStub(channel)

        def serving() -> bool:
            if proc.poll() is not None:
                raise LabError(f"vrc-agent exited: {(workdir / 'agent.log').read_text()}")
            try:
                stub.ListInterfaces(agent_pb2.ListInterfacesRequest(), timeout=1)
            except grpc.RpcError:
                return False
            return True

        wait_until(serving, 20.0, 0.1, "vrc-agent's API")
        for ifname, address in ((net.rg, R_GEN_ADDR), (net.rs, R_SINK_ADDR)):
            stub.AddAlias(agent_pb2.AddAliasRequest(ifname=ifname, address=f"{address}/24"),
                          timeout=10)
    return proc, target


SCAPY_FORWARDER = r"""
import sys, time
from scapy.all import IP, Ether, conf, sniff
from agents.isolation import IsolationSet
rg, rs, rs_mac, sink_mac, seconds, sink_addr = sys.argv[1:7]
isolation = IsolationSet()
for ifname in (rg, rs):
    isolation.add(ifname)
out = conf.L2socket(iface=rs)
def forward(pkt):
    if IP in pkt and pkt[IP].dst == sink_addr and pkt[IP].ttl > 1:
        pkt[Ether].src, pkt[Ether].dst = rs_mac, sink_mac
        pkt[IP].ttl -= 1
        del pkt[IP].chksum
        out.send(pkt)
print("ready", flush=True)
try:
    sniff(iface=rg, prn=forward, store=False, timeout=float(seconds))
finally:
    out.close()
    isolation.remove()
"""


def start_scapy(net: Net, seconds: float) -> subprocess.Popen[str]:
    rs_mac, sink_mac = net.r.mac(net.rs), net.sink.mac(net.s0)
    proc = subprocess.Popen(
        net.r.argv("python3", "-c", SCAPY_FORWARDER, net.rg, net.rs, rs_mac, sink_mac,
                   str(seconds + 5), SINK_ADDR),
        stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    net.lab.processes.append(proc)  # type: ignore[arg-type]
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise LabError("the scapy forwarder did not start")
    time.sleep(0.5)  # sniff() opening its socket
    return proc


# --- the run --------------------------------------------------------------------------------


def run(seconds: float, pings: int, rate: int | None) -> list[str]:
    lines: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="vrcbench", dir="/tmp"))
    lab = Lab()
    atexit.register(lab.close)
    atexit.register(shutil.rmtree, workdir, True)
    net = build(lab)
    conf = workdir / "udp64.cfg"
    write_trafgen_config(conf, udp_frame(net.r.mac(net.rg), net.gen.mac(net.g0)))
    results: list[Result] = []
    rtts: dict[str, float | None] = {}

    kernel_router(net)
    _prime(net)
    results.append(Result("kernel", *offer_and_count(net, conf, seconds, rate)))
    rtts["kernel"] = ping_rtt(net, pings)
    kernel_router_off(net)

    agent, _target = start_agent(net, workdir)
    _prime(net)
    results.append(Result("vrc-agent", *offer_and_count(net, conf, seconds, rate)))
    rtts["vrc-agent"] = ping_rtt(net, pings)
    net.lab.stop(agent, timeout=15)

    scapy = start_scapy(net, seconds)
    results.append(Result("scapy", *offer_and_count(net, conf, seconds, rate)))
    net.lab.stop(scapy, timeout=15)  # type: ignore[arg-type]

    by_name = {r.name: r for r in results}
    lines.append(f"forwarding 64-byte UDP gen -> R -> sink, {seconds:g} s per router"
                 + (f", offered {rate} pps" if rate else ", offered at trafgen's full speed"))
    lines.append(f"{'router':<10} {'delivered fps':>14} {'offered fps':>12}")
    for result in results:
        lines.append(f"{result.name:<10} {result.delivered_fps:>14,.0f} "
                     f"{result.offered_fps:>12,.0f}")
    agent_fps = by_name["vrc-agent"].delivered_fps
    lines.append(f"ratio agent/kernel: {_ratio(agent_fps, by_name['kernel'].delivered_fps)}")
    lines.append(f"ratio agent/scapy:  {_ratio(agent_fps, by_name['scapy'].delivered_fps)}")
    for name, rtt in rtts.items():
        shown = f"{rtt:.3f} ms" if rtt is not None else "no replies"
        lines.append(f"ping rtt avg gen -> sink through {name}: {shown} ({pings} pings, -i 0.01)")
    return lines


def _prime(net: Net) -> None:
    """One ping each way so every ARP cache on the path is warm before counting."""
    net.gen.run("ping", "-n", "-c", "2", "-i", "0.2", "-w", "5", SINK_ADDR, check=False,
                timeout=10)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 0 else "n/a (reference delivered nothing)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load per router (s)")
    parser.add_argument("--quick", action="store_true", help="1 s per router, 50 pings")
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--rate", type=int, default=None, help="offered frames/s (default: max)")
    args = parser.parse_args(argv)
    seconds, pings = (1.0, 50) if args.quick else (args.seconds, args.pings)
    require_root_and_tools(("ip", "ping", "trafgen"))
    # Ctrl-C / SIGTERM: leave through atexit, which removes everything made.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        for line in run(seconds, pings, args.rate):
            print(line)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Forwarding benchmark: gen -> R -> sink, R being the kernel, vrc-agent or scapy.

Run as root from the repository root::

    python3 bench/forwarding.py [--seconds 3] [--quick] [--rate PPS]

It creates three network namespaces joined by two veth pairs (unique names,
removed at exit, also on failure or Ctrl-C)::

    gen: g0 10.10.0.2/24 ── rg  R  rs ── s0 10.20.0.2/24 :sink

and offers 64-byte UDP frames (60 bytes on the wire without FCS) from gen
with trafgen, addressed to R's MAC and to the sink's IP, whose UDP socket on
the port drops them (``DISCARD``). For each R in turn —
(1) the Linux kernel with ``ip_forward=1``, (2) ``vrc-agent``, (3) a scapy
sniff-and-send forwarder — it counts the frames the sink's veth received
(``/sys/class/net/s0/statistics/rx_packets``) over the same window, and
prints frames/s and the ratios agent/kernel and agent/scapy.

For the kernel and the agent it also prints: ping RTT gen -> sink (``-i
0.01``, average and p99) idle, with trafgen offering half the router's
own rate (``--rate``: one burst a second, below) and under a smooth load
(``--gap``, frames evenly spaced); iperf3 TCP gen -> sink with the veths' default offloads (Mbit/s
and the ratio); ``ping -f`` replies/s to R's own address. For the agent:
its CPU time per forwarded frame (``/proc/PID/stat`` over the window), its
RSS, the Python it ran on, and the overload figures (its peak over a sweep
of offered rates, what it delivers when trafgen offers as fast as it can
(at least twice that peak here), and whether it still answers pings to its
own address meanwhile). Figures
vary from machine to machine; only the ratios measured in one run compare
like with like. No traffic leaves the namespaces.

trafgen's ``--rate`` (the sweep, the half-load RTT) is not smooth: it sends
each second's quota at full speed, then waits (``--rate 200000pps``: 200k
frames in 0.25 s, then 0.75 s of nothing, at g0 in 10 ms samples), so those
figures are of full-speed bursts; docs/agent.md says what that does to them.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
IPERF_PORT = 5201
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
    start_discard(lab, sink)
    return Net(lab, gen, r, sink, g0, rg, rs, s0)


#: A UDP socket on the flood's port with the smallest receive buffer, in the sink: the
#: kernel drops the flood at the full socket instead of answering every datagram with an
#: ICMP port unreachable (route lookups and the rate limiter, 10.6% of the agent's CPU in
#: a perf profile: the sink's receive runs inside the router's transmit on veth, for the
#: kernel as R in trafgen's softirq, for the agent in its loop's send()).
DISCARD = ("import socket, time\n"
           "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
           "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)\n"
           f"s.bind(('0.0.0.0', {UDP_PORT}))\n"
           "print('ready', flush=True)\n"
           "time.sleep(3600)\n")


def start_discard(lab: Lab, sink: Netns) -> None:
    proc = subprocess.Popen(sink.argv(sys.executable, "-c", DISCARD), stdout=subprocess.PIPE,
                            start_new_session=True)
    lab.processes.append(proc)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise LabError("the sink's discard socket did not open")


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


#: trafgen's --gap between frames for the smooth load (it reaches 60-90k frames/s here).
SMOOTH_GAP = "5000ns"


def start_trafgen(net: Net, conf: Path, seconds: float, rate: int | None,
                  gap: str | None = None) -> subprocess.Popen[bytes]:
    """trafgen offering the frame in ``conf`` from gen (bounded by ``--num``; stopped by us):
    at ``rate`` frames/s (in one burst a second), with ``gap`` between frames (smooth), or
    as fast as it goes."""
    argv = ["trafgen", "--dev", net.g0, "--conf", str(conf), "--cpus", "1",
            "--num", str(int(max(seconds, 1) * 5_000_000)),
            "--no-sock-mem", "--notouch-irq", "--no-cpu-stats"]
    if gap:
        argv += ["--gap", gap]
    elif rate:
        argv += ["--rate", f"{rate}pps"]
    proc = subprocess.Popen(net.gen.argv(*argv), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    net.lab.processes.append(proc)
    return proc


@dataclass
class Load:
    delivered_fps: float
    offered_fps: float
    delivered: int
    probe: float  # what ``probe`` grew by over the window (0 without one)


def offer_and_count(net: Net, conf: Path, seconds: float, rate: int | None,
                    during: Callable[[], object] | None = None,
                    probe: Callable[[], float] | None = None, gap: str | None = None) -> Load:
    """Run trafgen for ``seconds`` (bounded by -n and a kill), count at gen and sink.

    ``during`` runs while the load is on (a ping to R, say) and inside the
    window; ``probe`` (a CPU-time reading, say) is read at both ends of it.
    """
    proc = start_trafgen(net, conf, seconds, rate, gap)
    try:
        time.sleep(0.3)  # past trafgen's start-up
        p0 = probe() if probe else 0.0
        sent0, got0, t0 = net.gen.counter(net.g0, "tx_packets"), _sink_rx(net), time.monotonic()
        if during is not None:
            during()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        sent1, got1, t1 = net.gen.counter(net.g0, "tx_packets"), _sink_rx(net), time.monotonic()
        p1 = probe() if probe else 0.0
    finally:
        net.lab.stop(proc, timeout=5)
    elapsed = t1 - t0
    return Load((got1 - got0) / elapsed, (sent1 - sent0) / elapsed, got1 - got0, p1 - p0)


def _sink_rx(net: Net) -> int:
    return net.sink.counter(net.s0, "rx_packets")


@dataclass
class Rtt:
    avg_ms: float
    p99_ms: float
    replies: int
    sent: int
    duplicates: int = 0

    def show(self) -> str:
        if not self.replies:
            return f"no replies ({self.sent} sent)"
        lost = f", {self.sent - self.replies} lost" if self.replies < self.sent else ""
        dups = f", {self.duplicates} duplicates" if self.duplicates else ""
        return f"avg {self.avg_ms:.3f} ms, p99 {self.p99_ms:.3f} ms{lost}{dups}"


def ping_rtt(net: Net, count: int, address: str = SINK_ADDR, interval: str = "0.01") -> Rtt:
    """RTT gen -> ``address`` (``ping -i 0.01``): average and 99th percentile of the replies."""
    proc = net.gen.run("ping", "-n", "-c", str(count), "-i", interval, "-w",
                       str(max(5, count // 50)), address, check=False, timeout=count + 30)
    times = sorted(float(t) for t in re.findall(r"time=([\d.]+) ms$", proc.stdout, re.M))
    duplicates = len(re.findall(r"\(DUP!\)", proc.stdout))  # not a reply of its own
    if not times:
        return Rtt(0.0, 0.0, 0, count, duplicates)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return Rtt(sum(times) / len(times), p99, len(times), count, duplicates)


def flood_ping(net: Net, address: str, seconds: float = 3.0) -> float:
    """``ping -f`` from gen to ``address`` for ``seconds``: replies per second."""
    proc = net.gen.run("ping", "-n", "-q", "-f", "-w", str(int(seconds)), address,
                       check=False, timeout=seconds + 15)
    received = re.search(r"(\d+) received", proc.stdout)
    elapsed = re.search(r"time (\d+)ms", proc.stdout)
    if not received or not elapsed or int(elapsed.group(1)) == 0:
        return 0.0
    return int(received.group(1)) / (int(elapsed.group(1)) / 1000)


def iperf3_mbits(net: Net, seconds: float) -> float:
    """iperf3 TCP gen -> sink for ``seconds``, default offloads: Mbit/s the sink received."""
    server = net.lab.spawn(net.sink, "iperf3", "-s", "-1", "-p", str(IPERF_PORT))
    try:
        wait_until(lambda: f":{IPERF_PORT} " in net.sink.run("ss", "-ltnH").stdout, 10.0, 0.05,
                   "iperf3 listening in sink")
        proc = net.gen.run("iperf3", "-c", SINK_ADDR, "-p", str(IPERF_PORT), "-t",
                           str(max(1, int(seconds))), "-J", "--connect-timeout", "5000",
                           check=False, timeout=seconds + 30)
    finally:
        net.lab.stop(server, timeout=5)
    try:
        report = json.loads(proc.stdout)
        return float(report["end"]["sum_received"]["bits_per_second"]) / 1e6
    except (ValueError, KeyError):
        return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


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


def start_agent(net: Net, workdir: Path, python: str | None = None
                ) -> tuple[subprocess.Popen[bytes], str]:
    """vrc-agent from this checkout in R (on ``python``, default this interpreter)."""
    import grpc

    from vrc.v1 import agent_pb2, agent_pb2_grpc

    target = f"unix:{workdir / 'agent.sock'}"
    command = script_argv("vrc-agent")
    if python:
        command[0] = python
    argv = [*command, "--interface", net.rg, "--interface", net.rs,
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


@dataclass
class Figures:
    """Everything measured for one router R."""

    name: str
    load: Load | None = None
    rtt_idle: Rtt | None = None
    rtt_loaded: Rtt | None = None
    rtt_smooth: Rtt | None = None
    tcp_mbits: float | None = None
    flood_rps: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


def measure(net: Net, conf: Path, name: str, seconds: float, pings: int, rate: int | None,
            probe: Callable[[], float] | None = None) -> Figures:
    """The figures every R gets: frames/s, RTT idle and at half its rate, TCP, ping -f."""
    figures = Figures(name)
    figures.load = offer_and_count(net, conf, seconds, rate, probe=probe)
    time.sleep(1.0)  # the ring's backlog of the run drained: idle means idle
    figures.rtt_idle = ping_rtt(net, pings)
    half = max(1000, int(figures.load.delivered_fps / 2))
    loaded: list[Rtt] = []
    offer_and_count(net, conf, pings * 0.012 + 1.0, half,
                    during=lambda: loaded.append(ping_rtt(net, pings)))
    figures.rtt_loaded = loaded[0]
    figures.extra["load for RTT"] = f"{half:,} fps offered"
    smooth: list[Rtt] = []
    load = offer_and_count(net, conf, pings * 0.012 + 1.0, None, gap=SMOOTH_GAP,
                           during=lambda: smooth.append(ping_rtt(net, pings)))
    figures.rtt_smooth = smooth[0]
    figures.extra["smooth load"] = f"{load.offered_fps:,.0f} fps offered, --gap {SMOOTH_GAP}"
    figures.tcp_mbits = iperf3_mbits(net, seconds)
    figures.flood_rps = flood_ping(net, R_GEN_ADDR)
    return figures


def measure_overload(net: Net, conf: Path, seconds: float, full: Load
                     ) -> tuple[list[str], float]:
    """Offered at least twice what the agent forwards: does it still forward and answer?

    The peak is the best delivered rate of a sweep of offered rates around
    the full-speed figure, the full-speed and overload runs included (on a
    shared machine the agent's rate moves from second to second). The
    overload run is trafgen as fast as it goes, with pings to the agent's own
    address meanwhile; the line says how many times the peak that offered
    (not ``--rate 2x``: trafgen's pacing sends in bursts here — a run "at
    200k pps" put 1.6M frames on g0 in 2.6 s, and the agent's ring dropped
    1.09M of them, while the kernel as R delivered all 200k). Returns the
    lines and the peak.
    """
    rates = [int(full.delivered_fps * k) for k in (0.8, 1.0, 1.25, 1.5)]
    sweep = [offer_and_count(net, conf, seconds, r).delivered_fps for r in rates]
    peak = max([*sweep, full.delivered_fps])
    own: list[Rtt] = []
    overload = offer_and_count(net, conf, max(seconds, 2.5), None,
                               during=lambda: own.append(ping_rtt(net, 100, R_GEN_ADDR)))
    peak = max(peak, overload.delivered_fps)  # the best the agent was seen to forward
    offered = overload.offered_fps / peak
    lines = [
        f"  peak (best of offered {', '.join(f'{r:,}' for r in rates)} fps, the full-speed "
        f"and the overload run): {peak:,.0f} fps",
        f"  overload: offered {overload.offered_fps:,.0f} fps ({offered:.1f} x peak), "
        f"delivered {overload.delivered_fps:,.0f} fps = {overload.delivered_fps / peak:.2f} "
        "of peak",
        f"  pings to the agent's own address during overload: {own[0].replies}/{own[0].sent} "
        f"answered ({own[0].show()})",
    ]
    if offered < 2.0:
        lines.append("  (trafgen, sharing its core, could not offer twice the peak here)")
    return lines, peak


def other_pythons(net: Net, conf: Path, workdir: Path, seconds: float, pings: int,
                  rate: int | None, pythons: list[str], kernel: Load) -> list[str]:
    """The agent's frames/s, CPU per frame and idle RTT on other interpreters."""
    lines: list[str] = []
    for python in pythons:
        version = subprocess.run([python, "-c", "import platform; print("
                                  "platform.python_implementation(), platform.python_version())"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        proc, _target = start_agent(net, workdir, python)
        pid = proc.pid
        _prime(net)
        load = offer_and_count(net, conf, seconds, rate, probe=lambda pid=pid: cpu_seconds(pid))
        time.sleep(1.0)
        rtt = ping_rtt(net, pings)
        net.lab.stop(proc, timeout=15)
        per_frame = load.probe / max(1, load.delivered) * 1e6
        lines.append(f"vrc-agent on {version}: {load.delivered_fps:,.0f} fps "
                     f"(agent/kernel {_ratio(load.delivered_fps, kernel.delivered_fps)}), "
                     f"{per_frame:.2f} us CPU per frame, ping rtt idle {rtt.show()}")
    return lines


def run(seconds: float, pings: int, rate: int | None, pythons: list[str]) -> list[str]:
    workdir = Path(tempfile.mkdtemp(prefix="vrcbench", dir="/tmp"))
    lab = Lab()
    atexit.register(lab.close)
    atexit.register(shutil.rmtree, workdir, True)
    net = build(lab)
    conf = workdir / "udp64.cfg"
    write_trafgen_config(conf, udp_frame(net.r.mac(net.rg), net.gen.mac(net.g0)))

    kernel_router(net)
    _prime(net)
    kernel = measure(net, conf, "kernel", seconds, pings, rate)
    kernel_router_off(net)

    agent_proc, _target = start_agent(net, workdir)
    pid = agent_proc.pid
    _prime(net)
    agent = measure(net, conf, "vrc-agent", seconds, pings, rate, probe=lambda: cpu_seconds(pid))
    assert agent.load is not None
    per_frame = agent.load.probe / max(1, agent.load.delivered) * 1e6
    agent.extra["CPU per forwarded frame"] = f"{per_frame:.2f} us (user+system, all threads)"
    overload, peak = measure_overload(net, conf, seconds, agent.load)
    agent.extra["peak"] = f"{peak:,.0f}"
    agent.extra["RSS"] = f"{rss_mib(pid):.1f} MiB"
    net.lab.stop(agent_proc, timeout=15)

    extra_lines = other_pythons(net, conf, workdir, seconds, pings, rate, pythons,
                                kernel.load)
    scapy_proc = start_scapy(net, seconds)
    scapy_load = offer_and_count(net, conf, seconds, rate)
    net.lab.stop(scapy_proc, timeout=15)  # type: ignore[arg-type]
    return report(seconds, rate, kernel, agent, scapy_load, overload) + extra_lines


def report(seconds: float, rate: int | None, kernel: Figures, agent: Figures, scapy: Load,
           overload: list[str]) -> list[str]:
    assert kernel.load is not None and agent.load is not None
    lines = [f"forwarding gen -> R -> sink, {seconds:g} s per figure, "
             f"agent on {platform.python_implementation()} {platform.python_version()}"
             " (3.14 is not installable on this machine; --also-python adds others)",
             "64-byte UDP, " + (f"offered {rate} pps" if rate else "offered at trafgen's full "
                                "speed"),
             f"{'router':<10} {'delivered fps':>14} {'offered fps':>12}"]
    for name, load in (("kernel", kernel.load), ("vrc-agent", agent.load), ("scapy", scapy)):
        lines.append(f"{name:<10} {load.delivered_fps:>14,.0f} {load.offered_fps:>12,.0f}")
    fps_ratio = _ratio(agent.load.delivered_fps, kernel.load.delivered_fps)
    lines.append(f"ratio agent/kernel: {fps_ratio}")
    peak = float(agent.extra["peak"].replace(",", ""))
    lines.append(f"ratio agent peak/kernel: {_ratio(peak, kernel.load.delivered_fps)} "
                 "(the agent's best over its sweep)")
    lines.append(f"ratio agent/scapy:  {_ratio(agent.load.delivered_fps, scapy.delivered_fps)}")
    for figures in (kernel, agent):
        lines.append(f"{figures.name}:")
        assert figures.rtt_idle is not None and figures.rtt_loaded is not None
        lines.append(f"  ping rtt gen -> sink idle (-i 0.01): {figures.rtt_idle.show()}")
        lines.append(f"  ping rtt gen -> sink under 50% load ({figures.extra['load for RTT']}, "
                     f"in one burst a second): {figures.rtt_loaded.show()}")
        assert figures.rtt_smooth is not None
        lines.append(f"  ping rtt gen -> sink under smooth load ({figures.extra['smooth load']}): "
                     f"{figures.rtt_smooth.show()}")
        lines.append(f"  iperf3 TCP gen -> sink, default offloads: {figures.tcp_mbits:,.0f} Mbit/s")
        lines.append(f"  ping -f to R's own address: {figures.flood_rps:,.0f} replies/s")
        for key, value in figures.extra.items():
            if key not in ("load for RTT", "smooth load", "peak"):
                lines.append(f"  {key}: {value}")
    lines.extend(overload)
    lines.append(f"ratio TCP agent/kernel: {_ratio(agent.tcp_mbits or 0, kernel.tcp_mbits or 0)}")
    lines.append(f"ratio ping -f agent/kernel: "
                 f"{_ratio(agent.flood_rps or 0, kernel.flood_rps or 0)}")
    return lines


def _prime(net: Net) -> None:
    """One ping each way so every ARP cache on the path is warm before counting."""
    net.gen.run("ping", "-n", "-c", "2", "-i", "0.2", "-w", "5", SINK_ADDR, check=False,
                timeout=10)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 0 else "n/a (reference delivered nothing)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per figure")
    parser.add_argument("--quick", action="store_true", help="1 s per figure, 50 pings")
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--rate", type=int, default=None, help="offered frames/s (default: max)")
    parser.add_argument("--also-python", action="append", default=[], metavar="PYTHON",
                        help="also run the agent on this interpreter (needs the agent's "
                             "dependencies) and print its frames/s, CPU per frame and RTT")
    args = parser.parse_args(argv)
    seconds, pings = (1.0, 50) if args.quick else (args.seconds, args.pings)
    require_root_and_tools(("ip", "ping", "trafgen", "iperf3", "ss"))
    # Ctrl-C / SIGTERM: leave through atexit, which removes everything made.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        for line in run(seconds, pings, args.rate, args.also_python):
            print(line)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""AF_PACKET links and isolation on veth pairs, with the Linux kernel as the peer.

The link under test runs in namespace R inside ``nshelper.py``; a second
helper in A plays the wire's other end. No engine is involved.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import NsHelper
from tests.netns import Lab, Netns

pytestmark = pytest.mark.integration

ETHERTYPE_TEST = b"\x88\xb5"  # IEEE local experimental: nobody else answers it
BROADCAST = b"\xff" * 6
IFF_PROMISC = 0x100


def _frame(dst: bytes, src: bytes, seq: int, size: int = 64) -> bytes:
    body = struct.pack("!I", seq) * ((size - 14) // 4)
    return dst + src + ETHERTYPE_TEST + body


def _seq(frame: bytes) -> int:
    (seq,) = struct.unpack_from("!I", frame, 14)
    return seq


def _test_frames(hex_frames: list[str]) -> list[bytes]:
    frames = [bytes.fromhex(f) for f in hex_frames]
    return [f for f in frames if f[12:14] == ETHERTYPE_TEST]


class Pair:
    def __init__(self, lab: Lab) -> None:
        self.a: Netns = lab.netns("a")
        self.r: Netns = lab.netns("r")
        self.a0, self.ra = lab.veth(self.a, "a0", self.r, "ra")
        for ns, ifname in ((self.a, self.a0), (self.r, self.ra)):
            ns.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "1")
        self.lab = lab
        self.helpers: list[NsHelper] = []

    def helper(self, ns: Netns) -> NsHelper:
        helper = NsHelper(self.lab, ns)
        self.helpers.append(helper)
        return helper


@pytest.fixture
def pair(lab: Lab) -> Iterator[Pair]:
    made = Pair(lab)
    try:
        yield made
    finally:
        for helper in made.helpers:
            helper.close()


def test_read_nic_reports_the_kernels_mac_and_mtu(pair: Pair) -> None:
    pair.r.ip("link", "set", pair.ra, "mtu", "1400")
    link = pair.helper(pair.r).call("open", ifname=pair.ra)
    assert link["mac"] == pair.r.mac(pair.ra).replace(":", "")
    assert link["mtu"] == 1400


@pytest.mark.parametrize("tx_mode", ["ring", "send", "auto"])
def test_every_frame_sent_arrives_intact_and_in_order(pair: Pair, tx_mode: str) -> None:
    sender, receiver = pair.helper(pair.a), pair.helper(pair.r)
    src = bytes.fromhex(sender.call("open", ifname=pair.a0, tx_mode=tx_mode)["mac"])
    dst = bytes.fromhex(receiver.call("open", ifname=pair.ra)["mac"])
    frames = [_frame(dst, src, seq, size=60 + seq % 1400) for seq in range(600)]
    sent = sum(
        sender.call("send", frames=[f.hex() for f in frames[i : i + 100]])["sent"]
        for i in range(0, len(frames), 100)
    )
    got = _test_frames(receiver.call("recv", want=600, timeout=10)["frames"])
    assert sent == 600
    assert got == frames


def test_receive_batches_respect_max_and_resume_inside_a_block(pair: Pair) -> None:
    sender, receiver = pair.helper(pair.a), pair.helper(pair.r)
    src = bytes.fromhex(sender.call("open", ifname=pair.a0)["mac"])
    dst = bytes.fromhex(receiver.call("open", ifname=pair.ra)["mac"])
    frames = [_frame(dst, src, seq) for seq in range(50)]
    sender.call("send", frames=[f.hex() for f in frames])
    reply = receiver.call("recv", want=50, timeout=10, max=7)
    assert max(reply["batches"]) <= 7
    assert [_seq(f) for f in _test_frames(reply["frames"])] == list(range(50))


def test_a_small_ring_wraps_around_many_times(pair: Pair) -> None:
    """A small ring (32 slots) is reused many times without losing order."""
    sender, receiver = pair.helper(pair.a), pair.helper(pair.r)
    src = bytes.fromhex(sender.call("open", ifname=pair.a0)["mac"])
    dst = bytes.fromhex(receiver.call("open", ifname=pair.ra, frame_count=32)["mac"])
    seen: list[int] = []
    for start in range(0, 400, 20):  # 20 frames per round fit in the 32 slots
        sender.call("send", frames=[_frame(dst, src, s).hex() for s in range(start, start + 20)])
        got = receiver.call("recv", want=20, timeout=10)["frames"]
        seen.extend(_seq(f) for f in _test_frames(got))
    assert seen == list(range(400))


def test_our_own_transmitted_frames_are_not_received_back(pair: Pair) -> None:
    peer, link = pair.helper(pair.a), pair.helper(pair.r)
    peer.call("open", ifname=pair.a0)
    mac = bytes.fromhex(link.call("open", ifname=pair.ra)["mac"])
    frames = [_frame(BROADCAST, mac, seq) for seq in range(20)]
    assert link.call("send", frames=[f.hex() for f in frames])["sent"] == 20
    at_peer = _test_frames(peer.call("recv", want=20, timeout=10)["frames"])
    echoed = _test_frames(link.call("recv", want=1, timeout=1.0)["frames"])
    assert at_peer == frames
    assert echoed == []


def _nic_flags(ns: Netns, ifname: str) -> int:
    return int(ns.run("cat", f"/sys/class/net/{ifname}/flags").stdout.strip(), 16)


def test_promiscuous_membership_is_held_only_while_asked_and_dropped_on_close(
    pair: Pair,
) -> None:
    link = pair.helper(pair.r)
    link.call("open", ifname=pair.ra)
    assert not _nic_flags(pair.r, pair.ra) & IFF_PROMISC
    assert link.call("promisc", on=True)["promiscuous"] is True
    assert _nic_flags(pair.r, pair.ra) & IFF_PROMISC
    assert link.call("promisc", on=False)["promiscuous"] is False
    assert not _nic_flags(pair.r, pair.ra) & IFF_PROMISC
    link.call("promisc", on=True)
    link.call("close")
    assert not _nic_flags(pair.r, pair.ra) & IFF_PROMISC


def test_close_releases_the_sockets_and_rings(pair: Pair) -> None:
    link = pair.helper(pair.r)
    link.call("open", ifname=pair.ra)
    pid = link.proc.pid

    def sockets() -> int:  # distinct sockets (mmap keeps a dup of a ring's descriptor)
        listing = pair.r.run("ls", "-l", f"/proc/{pid}/fd").stdout
        return len(set(re.findall(r"socket:\[\d+\]", listing)))

    def ring_mappings() -> int:
        return pair.r.run("cat", f"/proc/{pid}/maps").stdout.count("socket:[")

    assert sockets() == 5  # receive, control (ARP) and local sockets, plain and ring transmit
    assert ring_mappings() == 4  # the receive, control, local and transmit rings
    link.call("close")
    assert sockets() == 0
    assert ring_mappings() == 0


# --- isolation: taps see frames before the tc ingress hook drops them -------------------


def _arping(ns: Netns, ifname: str, target: str) -> bool:
    proc = ns.run("arping", "-c", "2", "-w", "2", "-I", ifname, target, check=False, timeout=10)
    return proc.returncode == 0


def test_isolation_keeps_frames_for_the_agent_and_away_from_the_kernel(pair: Pair) -> None:
    pair.a.ip("addr", "add", "10.9.0.1/24", "dev", pair.a0)
    pair.r.ip("addr", "add", "10.9.0.2/24", "dev", pair.ra)
    assert _arping(pair.a, pair.a0, "10.9.0.2")  # the kernel in R answers
    link = pair.helper(pair.r)
    link.call("open", ifname=pair.ra)
    method = link.call("isolate", ifname=pair.ra, methods=["tcx", "tc"])["method"]
    assert method in ("tcx", "tc")
    link.call("recv", want=1000, timeout=0.3)  # forget what came before
    pair.a.ip("neigh", "flush", "dev", pair.a0)
    assert not _arping(pair.a, pair.a0, "10.9.0.2")  # the kernel no longer answers
    ping = pair.a.run("ping", "-c", "1", "-W", "1", "10.9.0.2", check=False)
    assert ping.returncode != 0
    frames = [bytes.fromhex(f) for f in link.call("recv", want=2, timeout=5)["frames"]]
    arp_requests = [f for f in frames if f[12:14] == b"\x08\x06" and f[38:42] == bytes(
        [10, 9, 0, 2])]
    assert arp_requests, "the agent's tap must still see the ARP requests"
    assert link.call("unisolate")["errors"] == []
    assert _arping(pair.a, pair.a0, "10.9.0.2")  # removed: the kernel answers again


def test_isolation_is_undone_exactly(pair: Pair) -> None:
    ipv6 = f"/proc/sys/net/ipv6/conf/{pair.ra}/disable_ipv6"
    pair.r.sysctl(f"net.ipv6.conf.{pair.ra}.disable_ipv6", "0")
    link = pair.helper(pair.r)
    link.call("open", ifname=pair.ra)
    link.call("isolate", ifname=pair.ra, methods=["tcx", "tc"])
    flags = pair.r.run("ip", "-o", "link", "show", pair.ra).stdout
    assert "NOARP" in flags
    assert pair.r.run("cat", ipv6).stdout.strip() == "1"
    link.call("unisolate")
    flags = pair.r.run("ip", "-o", "link", "show", pair.ra).stdout
    assert "NOARP" not in flags
    assert pair.r.run("cat", ipv6).stdout.strip() == "0"
    assert "clsact" not in pair.r.run("tc", "qdisc", "show", "dev", pair.ra).stdout


def test_tcx_drop_goes_away_when_the_holder_dies(pair: Pair) -> None:
    """The TCX link is tied to the agent's descriptor: a killed agent leaves no black hole."""
    pair.a.ip("addr", "add", "10.9.0.1/24", "dev", pair.a0)
    pair.r.ip("addr", "add", "10.9.0.2/24", "dev", pair.ra)
    link = pair.helper(pair.r)
    assert link.call("isolate", ifname=pair.ra, methods=["tcx"])["method"] == "tcx"
    pair.r.ip("link", "set", pair.ra, "arp", "on")  # only the drop filter left in place
    pair.a.ip("neigh", "flush", "dev", pair.a0)
    assert not _arping(pair.a, pair.a0, "10.9.0.2")
    link.proc.kill()
    link.proc.wait(10)
    assert _arping(pair.a, pair.a0, "10.9.0.2")


def test_tc_method_either_drops_or_fails_without_leftovers(pair: Pair) -> None:
    """``tc`` needs cls_matchall and act_gact; without them nothing may be left behind."""
    link = pair.helper(pair.r)
    try:
        method = link.call("isolate", ifname=pair.ra, methods=["tc"])["method"]
    except Exception as exc:
        assert "matchall" in str(exc) or "tc" in str(exc)
        qdiscs = pair.r.run("tc", "qdisc", "show", "dev", pair.ra).stdout
        assert "clsact" not in qdiscs
        flags = pair.r.run("ip", "-o", "link", "show", pair.ra).stdout
        assert "NOARP" not in flags
        return
    assert method == "tc"
    filters = pair.r.run("tc", "filter", "show", "dev", pair.ra, "ingress").stdout
    assert "matchall" in filters
    link.call("unisolate")
    assert "clsact" not in pair.r.run("tc", "qdisc", "show", "dev", pair.ra).stdout


# --- a killed holder: the record puts the NIC back ---------------------------------------


def _isolated_state(pair: Pair) -> tuple[bool, str, bool]:
    """(NOARP set, disable_ipv6, vrc's tc drop filter present) on ``pair.ra``."""
    flags = pair.r.run("ip", "-o", "link", "show", pair.ra).stdout
    ipv6 = pair.r.run("cat", f"/proc/sys/net/ipv6/conf/{pair.ra}/disable_ipv6").stdout.strip()
    filters = pair.r.run("tc", "filter", "show", "dev", pair.ra, "ingress", check=False).stdout
    return "NOARP" in flags, ipv6, "matchall" in filters


def test_a_killed_holder_leaves_a_record_that_puts_the_nic_back(pair: Pair,
                                                                tmp_path: Path) -> None:
    run_dir = str(tmp_path / "run")
    pair.r.sysctl(f"net.ipv6.conf.{pair.ra}.disable_ipv6", "0")
    assert _isolated_state(pair) == (False, "0", False)
    holder = pair.helper(pair.r)
    assert holder.call("isolate", ifname=pair.ra, methods=["tcx"],
                       run_dir=run_dir)["method"] == "tcx"
    assert _isolated_state(pair)[:2] == (True, "1")
    holder.proc.kill()
    holder.proc.wait(10)
    # arp off and disable_ipv6 outlive the process (the TCX link does not)
    assert _isolated_state(pair)[:2] == (True, "1")
    report = pair.helper(pair.r).call("restore_previous", run_dir=run_dir)
    assert report["restored"] == [pair.ra] and not report["failed"]
    assert _isolated_state(pair) == (False, "0", False)
    assert not Path(run_dir).exists()  # record, lock and the emptied directory gone


@pytest.mark.parametrize("someone_elses_filter", [False, True])
def test_restore_removes_a_tc_drop_left_behind_and_only_ours(
    pair: Pair, tmp_path: Path, someone_elses_filter: bool
) -> None:
    """The tc fallback's filter outlives the agent too. This kernel may lack matchall
    (the test machine does), so a classify-only u32 filter at vrc's preference stands
    in for the one a killed agent left, with the record it would have written."""
    from agents.isolation import FILTER_PREF
    from agents.nicrecord import NicOriginal, RunDir, TcOriginal

    ifindex = int(pair.r.run("cat", f"/sys/class/net/{pair.ra}/ifindex").stdout)
    netns_inode = int(pair.r.run("stat", "-L", "-c", "%i", "/proc/self/ns/net").stdout)
    run = RunDir(tmp_path / "run", netns=netns_inode)
    run.write(NicOriginal(pair.ra, ifindex, arp_off=False, disable_ipv6="0",
                          tc=TcOriginal(had_clsact=False), pid=1))
    pair.r.run("tc", "qdisc", "add", "dev", pair.ra, "clsact")
    pair.r.run("tc", "filter", "add", "dev", pair.ra, "ingress", "pref", str(FILTER_PREF),
               "protocol", "all", "u32", "match", "u32", "0", "0")
    if someone_elses_filter:
        pair.r.run("tc", "filter", "add", "dev", pair.ra, "egress", "pref", "7",
                   "protocol", "all", "u32", "match", "u32", "0", "0")
    pair.r.ip("link", "set", "dev", pair.ra, "arp", "off")
    assert _isolated_state(pair)[0] and f"pref {FILTER_PREF} " in pair.r.run(
        "tc", "filter", "show", "dev", pair.ra, "ingress").stdout
    report = pair.helper(pair.r).call("restore_previous", run_dir=str(run.path))
    assert report["restored"] == [pair.ra], report
    assert f"pref {FILTER_PREF} " not in pair.r.run(
        "tc", "filter", "show", "dev", pair.ra, "ingress", check=False).stdout
    assert "NOARP" not in pair.r.run("ip", "-o", "link", "show", pair.ra).stdout
    qdiscs = pair.r.run("tc", "qdisc", "show", "dev", pair.ra).stdout
    # our clsact goes, unless someone else's filter lives in it now
    assert ("clsact" in qdiscs) is someone_elses_filter


def test_a_clean_unisolate_removes_the_record(pair: Pair, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = pair.helper(pair.r)
    holder.call("isolate", ifname=pair.ra, methods=["tcx", "tc"], run_dir=str(run_dir))
    assert [p.suffix for p in sorted(run_dir.iterdir())] == [".json", ".lock"]
    assert holder.call("unisolate")["errors"] == []
    assert not run_dir.exists()


# --- offloads: the kernel's word on each frame, and ours on the way out ----------------

UDP_REFLECT = r"""
import json, socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("10.9.0.1", 7000))
sock.settimeout(10)
sock.setsockopt(17, 103, 1000)  # UDP_SEGMENT: GSO, 1000-byte datagrams
sock.sendto(bytes(range(256)) * 12, ("10.9.0.2", 7001))
got = []
while len(got) < 4:
    data, peer = sock.recvfrom(65536)
    got.append([data.hex(), list(peer)])
print(json.dumps(got), flush=True)
"""


def _reflect(frame: bytes) -> bytes:
    """The frame sent back: MACs, IPv4 addresses and UDP ports swapped. The partial
    checksum in the UDP header (a pseudo-header sum) is unchanged by the swap."""
    ip, udp = frame[14:34], frame[34:42]
    ip = ip[:12] + ip[16:20] + ip[12:16]
    udp = udp[2:4] + udp[0:2] + udp[4:]
    return frame[6:12] + frame[0:6] + frame[12:14] + ip + udp + frame[42:]


def test_a_gso_super_datagram_arrives_described_and_leaves_for_the_kernel_to_cut(
        pair: Pair) -> None:
    """UDP GSO from A: one 3072-byte super-frame (larger than a slot: read as a copy)
    with the kernel's description; sent back with it, R's kernel cuts and checksums it in
    software (tx offloads off on ra) and A's kernel verifies every checksum (rx off)."""
    pair.a.ip("addr", "add", "10.9.0.1/24", "dev", pair.a0)
    pair.a.ip("neigh", "add", "10.9.0.2", "lladdr", pair.r.mac(pair.ra), "dev", pair.a0)
    pair.r.run("ethtool", "-K", pair.ra, "tx", "off", "tso", "off", "gso", "off")
    pair.a.run("ethtool", "-K", pair.a0, "rx", "off")
    link = pair.helper(pair.r)
    link.call("open", ifname=pair.ra)
    sender = subprocess.Popen(pair.a.argv("python3", "-c", UDP_REFLECT), stdout=subprocess.PIPE,
                              text=True)
    pair.lab.processes.append(sender)  # type: ignore[arg-type]
    reply = link.call("recv", want=1, timeout=10)
    frames = [bytes.fromhex(f) for f in reply["frames"]]
    assert [len(f) for f in frames] == [14 + 20 + 8 + 3072]
    assert reply["offload"] == [{"flags": 1, "gso_type": 5, "hdr_len": 42, "gso_size": 1000,
                                 "csum_start": 34, "csum_offset": 6}]
    stats = link.call("stats")
    assert stats["rx_copies"] == 1 and stats["rx_truncated"] == 0
    assert link.call("send_offload", frame=_reflect(frames[0]).hex(),
                     offload=reply["offload"][0])["sent"] == 1
    out, _ = sender.communicate(timeout=20)
    got = json.loads(out)
    payload = bytes(range(256)) * 12
    assert [bytes.fromhex(data) for data, _peer in got] == [
        payload[i : i + 1000] for i in range(0, 3072, 1000)]
    assert {tuple(peer) for _data, peer in got} == {("10.9.0.2", 7001)}

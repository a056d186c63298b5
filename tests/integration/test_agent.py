"""vrc-agent as a real process in namespace R, with the Linux kernel in A and B as peers.

Each test names the behaviour it proves; (a)-(i) refer to the agent issue's
list. Traffic stays inside the namespaces the test's ``Lab`` created.
"""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.conftest import (
    A_ADDR,
    B_ADDR,
    R_A_ADDR,
    R_B_ADDR,
    AgentProc,
    Topology,
    ping,
    wait_for,
)
from tests.netns import Lab, LabError, Netns, script_argv
from vrc.v1 import agent_pb2, types_pb2

pytestmark = pytest.mark.integration

IFF_PROMISC = 0x100


def _counters(agent: AgentProc, ifname: str) -> Any:
    return agent.stub.GetInterface(agent_pb2.GetInterfaceRequest(name=ifname), timeout=10).counters


# --- (a) (b) local delivery and ARP ---------------------------------------------------------


def test_ping_to_an_alias_of_the_router_is_answered(agent: AgentProc, topo: Topology) -> None:
    result = ping(topo.a, R_A_ADDR, count=3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 received" in result.stdout
    assert re.search(rf"from {re.escape(R_A_ADDR)}: icmp_seq=\d+ ttl=64", result.stdout)


def test_arping_gets_the_routers_mac(agent: AgentProc, topo: Topology) -> None:
    mac = topo.r.mac(topo.ra).upper()
    result = topo.a.run("arping", "-c", "2", "-w", "3", "-I", topo.a0, R_A_ADDR,
                        check=False, timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"[{mac}]" in result.stdout


def test_with_arp_probes_a_new_address_is_used_only_after_rfc5227_probing(
        topo: Topology) -> None:
    agent = AgentProc(topo, "--arp-probes", "3")  # probing is an opt-in (default 0)
    try:
        agent.alias(topo.ra, f"{R_A_ADDR}/24")
        added = time.monotonic()
        early = topo.a.run("arping", "-c", "1", "-w", "1", "-I", topo.a0, R_A_ADDR,
                           check=False, timeout=10)
        assert early.returncode != 0  # still probing: the address is not ours yet
        # PROBE_WAIT (<= 1 s) + 3 probes (1-2 s apart) + ANNOUNCE_WAIT (2 s) <= 9 s
        wait_for(lambda: topo.a.run("ping", "-n", "-c", "1", "-W", "1", R_A_ADDR,
                                    check=False).returncode == 0, 15.0, "the probed address")
        assert time.monotonic() - added >= 4.0  # at least PROBE_MIN * 2 + ANNOUNCE_WAIT
    finally:
        agent.cleanup()


def test_kernel_arp_learns_the_router_and_router_learns_the_peer(
    agent: AgentProc, topo: Topology
) -> None:
    assert ping(topo.a, R_A_ADDR, count=1).returncode == 0
    neigh = topo.a.run("ip", "neigh", "show", R_A_ADDR, "dev", topo.a0).stdout
    assert topo.r.mac(topo.ra) in neigh
    entries = agent.stub.ListArp(agent_pb2.ListArpRequest(ifname=topo.ra), timeout=10).entries
    learned = {entry.ip: entry.mac for entry in entries}
    assert learned.get(A_ADDR) == topo.a.mac(topo.a0)


# --- (c) (d) forwarding -----------------------------------------------------------------------


def test_ping_through_the_router_is_forwarded_with_ttl_decremented(
    agent: AgentProc, topo: Topology
) -> None:
    result = ping(topo.a, B_ADDR, count=3)
    assert result.returncode == 0, result.stdout + result.stderr
    # B's kernel answers with TTL 64; one hop through R makes it 63.
    ttls = re.findall(rf"from {re.escape(B_ADDR)}: icmp_seq=\d+ ttl=(\d+)", result.stdout)
    assert ttls and set(ttls) == {"63"}
    entries = agent.stub.ListArp(agent_pb2.ListArpRequest(ifname=topo.rb), timeout=10).entries
    assert {entry.ip: entry.mac for entry in entries}.get(B_ADDR) == topo.b.mac(topo.b0)


def test_ping_record_route_shows_the_router_both_ways(agent: AgentProc, topo: Topology) -> None:
    """``ping -R``: the agent writes the address each direction leaves from into the
    record route option, as a kernel router does; B's kernel records its own."""
    result = ping(topo.a, B_ADDR, "-R", count=1)
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = re.search(r"RR:((?:\s+[\d.]+)+)", result.stdout)
    assert recorded is not None, result.stdout
    hops = recorded.group(1).split()
    assert hops[:3] == [A_ADDR, R_B_ADDR, B_ADDR] and R_A_ADDR in hops[3:], hops


def test_ttl_one_ping_gets_time_exceeded_from_the_router(
    agent: AgentProc, topo: Topology
) -> None:
    result = ping(topo.a, B_ADDR, "-t", "1", count=1, timeout=5)
    assert result.returncode != 0
    assert re.search(rf"From {re.escape(R_A_ADDR)} icmp_seq=1 Time to live exceeded",
                     result.stdout), result.stdout


# --- (e) the same prefix on two interfaces --------------------------------------------------


def test_same_prefix_second_gets_no_route_refuse_fails_and_owner_hands_over(
    topo: Topology,
) -> None:
    lab, r, b = topo.lab, topo.r, topo.b
    rc, b1 = lab.veth(r, "rc", b, "b1")
    b.sysctl(f"net.ipv6.conf.{b1}.disable_ipv6", "1")
    # B's two ports share one segment (a bridge) so either of R's interfaces reaches it.
    br = lab.ifname("br")
    b.ip("addr", "flush", "dev", topo.b0)
    b.ip("link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    for port in (topo.b0, b1):
        b.ip("link", "set", port, "master", br)
    b.ip("link", "set", br, "up")
    b.ip("addr", "add", f"{B_ADDR}/24", "dev", br)
    b.ip("route", "replace", "default", "via", "10.2.0.5")  # replies come back on rc
    agent = AgentProc(topo, interfaces=(topo.ra, topo.rb, rc))
    try:
        stub = agent.stub
        agent.alias(topo.ra, f"{R_A_ADDR}/24")
        agent.alias(topo.rb, f"{R_B_ADDR}/24")
        stub.SetPolicy(agent_pb2.SetPolicyRequest(same_prefix=types_pb2.POLICY_REFUSE),
                       timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            agent.alias(rc, "10.2.0.5/24")
        assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS
        stub.SetPolicy(agent_pb2.SetPolicyRequest(same_prefix=types_pb2.POLICY_ALLOW),
                       timeout=10)
        added = stub.AddAlias(agent_pb2.AddAliasRequest(ifname=rc, address="10.2.0.5/24"),
                              timeout=10)
        assert added.address.owns_route is False
        assert _route_ifname(agent, "10.2.0.0/24") == topo.rb
        assert ping(topo.a, B_ADDR, count=2).returncode == 0
        stub.DeleteAlias(agent_pb2.DeleteAliasRequest(ifname=topo.rb, address=R_B_ADDR),
                         timeout=10)
        assert _route_ifname(agent, "10.2.0.0/24") == rc
        result = ping(topo.a, B_ADDR, count=3)
        assert result.returncode == 0, result.stdout
    finally:
        agent.cleanup()


def _route_ifname(agent: AgentProc, prefix: str) -> str:
    routes = agent.stub.ListRoutes(agent_pb2.ListRoutesRequest(), timeout=10).routes
    owners = [route.ifname for route in routes if route.prefix == prefix and not route.gateway]
    assert len(owners) == 1, routes
    return owners[0]


# --- (f) address conflict -------------------------------------------------------------------


def test_peer_claiming_our_address_raises_the_conflict_event(
    agent: AgentProc, topo: Topology
) -> None:
    topo.a.ip("addr", "add", f"{R_A_ADDR}/32", "dev", topo.a0)
    topo.a.run("arping", "-U", "-c", "2", "-w", "3", "-I", topo.a0, R_A_ADDR,
               check=False, timeout=10)
    events = _watch(agent, "ARP_CONFLICT", timeout=10.0)
    assert events, "no ARP_CONFLICT event after a peer claimed 10.1.0.1"
    assert events[0].ifname == topo.ra
    assert topo.a.mac(topo.a0) in json.dumps(dict(events[0].data)).lower()


def _watch(agent: AgentProc, kind: str, timeout: float) -> list[Any]:
    request = agent_pb2.WatchEventsRequest(after_seq=0, kinds=[kind])
    found: list[Any] = []
    try:
        for batch in agent.stub.WatchEvents(request, timeout=timeout):
            found.extend(batch.events)
            if found:
                break
    except grpc.RpcError as exc:
        if exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    return found


# --- (g) capture ------------------------------------------------------------------------------


def test_capture_writes_a_pcap_that_tshark_decodes_as_the_icmp_exchange(
    agent: AgentProc, topo: Topology, tmp_path: Path
) -> None:
    assert ping(topo.a, R_A_ADDR, count=1).returncode == 0  # ARP settled before capturing
    pcap = tmp_path / "ra.pcap"
    capture = subprocess.Popen(
        [*script_argv("vrc"), "--agent", agent.target, "capture", topo.ra, "-c", "4",
         "-w", str(pcap)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_line(capture, "vrc: capturing on", 15.0)  # the tap is open
        assert ping(topo.a, R_A_ADDR, count=2).returncode == 0
        capture.wait(timeout=15)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait(5)
    assert capture.returncode == 0, capture.stderr.read() if capture.stderr else ""
    decoded = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
         "-e", "icmp.type"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split("\n")  # fmt: skip
    rows = [line.split("\t") for line in decoded if line.strip()]
    assert rows == [[A_ADDR, R_A_ADDR, "8"], [R_A_ADDR, A_ADDR, "0"]] * 2


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> None:
    """Read ``proc``'s stderr until a line starting with ``prefix`` (bounded in time)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stderr], [], [], left)
        line = proc.stderr.readline() if ready else ""
        if line.startswith(prefix):
            return
        if ready and not line:
            break
    raise LabError(f"no {prefix!r} line on stderr within {timeout}s")


# --- (h) a hook on ng0 ------------------------------------------------------------------------


def test_client_on_the_inet_hook_of_ng0_pings_b_and_gets_the_reply(
    agent: AgentProc, topo: Topology
) -> None:
    from scapy.layers.inet import ICMP, IP

    stub = agent.stub
    ng = stub.CreateVirtualInterface(agent_pb2.CreateVirtualInterfaceRequest(), timeout=10).name
    stub.AddAlias(agent_pb2.AddAliasRequest(ifname=ng, address="10.3.0.1/32",
                                            destination="10.3.0.2"), timeout=10)
    stub.SetInterface(agent_pb2.SetInterfaceRequest(name=ng, up=True), timeout=10)
    echo = bytes(IP(src="10.3.0.2", dst=B_ADDR, ttl=64) / ICMP(id=0x7672, seq=1) / b"vrc-hook")

    def requests() -> Any:
        yield agent_pb2.HookRequest(attach=agent_pb2.HookAttach(ifname=ng, hook="inet"))
        time.sleep(0.2)
        yield agent_pb2.HookRequest(packets=[echo])
        time.sleep(10)  # keep the stream open while the reply comes back

    replies: list[bytes] = []
    call = stub.Hook(requests(), timeout=10)
    try:
        for response in call:
            replies.extend(response.packets)
            if replies:
                break
    finally:
        call.cancel()
    assert replies, "no packet came back through the hook"
    reply = IP(replies[0])
    assert (reply.src, reply.dst) == (B_ADDR, "10.3.0.2")
    assert reply[ICMP].type == 0 and reply[ICMP].id == 0x7672
    assert bytes(reply[ICMP].payload) == b"vrc-hook"


# --- (i) malformed frames ---------------------------------------------------------------------


def _inject_malformed(ns: Netns, ifname: str, dst_mac: str, src_mac: str) -> None:
    """Short IPv4, bad IPv4 header checksum, bad ARP (wrong hardware length), truncated ARP."""
    script = f"""
from scapy.all import ARP, ICMP, IP, Ether, Raw, sendp
eth = Ether(dst="{dst_mac}", src="{src_mac}")
frames = [
    eth / Raw(b"\\x45\\x00\\x00"),
    eth / IP(src="{A_ADDR}", dst="{R_A_ADDR}", chksum=0x1234) / ICMP(),
    Ether(dst="ff:ff:ff:ff:ff:ff", src="{src_mac}") / ARP(hwlen=7, psrc="{A_ADDR}",
                                                          pdst="{R_A_ADDR}"),
    Ether(dst="ff:ff:ff:ff:ff:ff", src="{src_mac}", type=0x0806) / Raw(b"\\x00\\x01\\x08"),
]
frames[0].type = 0x0800
sendp(frames, iface="{ifname}", verbose=False)
"""
    ns.run("python3", "-c", script, timeout=60)


METRICS = "127.0.0.1:9464"  # inside namespace R: private to the test


def _scrape(ns: Netns) -> str:
    script = ("import urllib.request;print(urllib.request.urlopen("
              f"'http://{METRICS}/metrics', timeout=5).read().decode())")
    return ns.run("python3", "-c", script).stdout


def _drops(ns: Netns) -> dict[str, float]:
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'vrc_drops_total\{reason="([^"]+)"\} (\S+)', _scrape(ns))}


def test_malformed_frames_are_counted_by_reason_and_the_router_keeps_answering(
    topo: Topology,
) -> None:
    agent = AgentProc(topo, "--metrics", METRICS)
    try:
        agent.alias(topo.ra, f"{R_A_ADDR}/24")
        assert ping(topo.a, R_A_ADDR, count=1).returncode == 0
        before = _drops(topo.r)
        _inject_malformed(topo.a, topo.a0, topo.r.mac(topo.ra), topo.a.mac(topo.a0))
        reasons = ("ipv4.short", "ipv4.bad_checksum", "arp.bad_hlen", "arp.truncated")

        def counted() -> bool:
            after = _drops(topo.r)
            return all(after.get(r, 0) - before.get(r, 0) >= 1 for r in reasons)

        wait_for(counted, 10.0, f"drops {reasons} to be counted")
        # GetStats and /metrics read one snapshot source: the same numbers
        stats = agent.stub.GetStats(agent_pb2.GetStatsRequest(), timeout=10)
        by_reason = {drop.reason: drop.count for drop in stats.drops}
        scraped = _drops(topo.r)
        assert {r: by_reason[r] for r in reasons} == {r: scraped[r] for r in reasons}
        assert stats.dataplane.frames_in > 0 and {link.ifname for link in stats.links} == {
            topo.ra, topo.rb}
        # and each malformed header is an input error of the interface too
        ra_stats = {i.ifname: i for i in stats.interfaces}[topo.ra]
        assert ra_stats.counters.ierrors >= len(reasons)
        result = ping(topo.a, R_A_ADDR, count=2)
        assert result.returncode == 0, result.stdout
        assert agent.proc.poll() is None
    finally:
        agent.cleanup()


# --- the process: isolation, promiscuous mode, signals, logs, metrics, CLI ------------------


def _flags(ns: Netns, ifname: str) -> int:
    return int(ns.run("cat", f"/sys/class/net/{ifname}/flags").stdout.strip(), 16)


def test_kernel_in_r_stays_out_while_the_agent_runs(agent: AgentProc, topo: Topology) -> None:
    """R's kernel holds the same address as the agent but never answers: isolation."""
    topo.r.ip("addr", "add", "10.1.0.9/24", "dev", topo.ra)
    assert ping(topo.a, "10.1.0.9", count=2, timeout=4).returncode != 0
    assert ping(topo.a, R_A_ADDR, count=1).returncode == 0


def test_nic_is_not_promiscuous_when_the_engine_uses_the_nics_mac(agent: AgentProc,
                                                                  topo: Topology) -> None:
    assert ping(topo.a, R_A_ADDR, count=1).returncode == 0
    assert not _flags(topo.r, topo.ra) & IFF_PROMISC
    assert not _flags(topo.r, topo.rb) & IFF_PROMISC


def test_sigterm_stops_cleanly_and_restores_the_nics(bare_agent: AgentProc,
                                                     topo: Topology) -> None:
    link = topo.r.run("ip", "-o", "link", "show", topo.ra).stdout
    assert "NOARP" in link  # isolation applied
    bare_agent.proc.send_signal(signal.SIGTERM)
    assert bare_agent.proc.wait(timeout=20) == 0
    link = topo.r.run("ip", "-o", "link", "show", topo.ra).stdout
    assert "NOARP" not in link
    assert not _flags(topo.r, topo.ra) & IFF_PROMISC
    # The drop filter went with the agent: R's kernel answers on its NIC again.
    topo.r.ip("addr", "add", "10.1.0.9/24", "dev", topo.ra)
    assert ping(topo.a, "10.1.0.9", count=1).returncode == 0
    events = [record.get("event") for record in bare_agent.log_records()]
    assert "agent started" in events and "agent stopped" in events


def test_sigint_also_exits_zero(bare_agent: AgentProc) -> None:
    bare_agent.proc.send_signal(signal.SIGINT)
    assert bare_agent.proc.wait(timeout=20) == 0


def test_json_logs_are_one_object_per_line(bare_agent: AgentProc) -> None:
    lines = [line for line in bare_agent.logs().splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line parses
    started = [r for r in records if r.get("event") == "agent started"]
    assert started and started[0]["host"] == "r"


def test_no_isolation_leaves_the_kernel_answering(topo: Topology) -> None:
    agent = AgentProc(topo, "--no-isolation")
    try:
        assert "NOARP" not in topo.r.run("ip", "-o", "link", "show", topo.ra).stdout
        topo.r.ip("addr", "add", "10.1.0.9/24", "dev", topo.ra)
        assert ping(topo.a, "10.1.0.9", count=1).returncode == 0
    finally:
        agent.cleanup()


def test_metrics_endpoint_exports_interface_counters_and_arp_size(topo: Topology) -> None:
    agent = AgentProc(topo, "--metrics", METRICS)
    try:
        agent.alias(topo.ra, f"{R_A_ADDR}/24")
        assert ping(topo.a, R_A_ADDR, count=2).returncode == 0
        text = _scrape(topo.r)
    finally:
        agent.cleanup()
    received = re.search(rf'vrc_interface_receive_packets_total{{ifname="{topo.ra}"}} (\S+)',
                         text)
    assert received and float(received.group(1)) >= 2
    arp = re.search(rf'vrc_arp_entries{{ifname="{topo.ra}"}} (\S+)', text)
    assert arp and float(arp.group(1)) >= 1
    assert "vrc_dataplane_frames_in_total" in text


def test_cli_configures_an_alias_and_lists_interfaces_and_arp(bare_agent: AgentProc,
                                                              topo: Topology) -> None:
    bare_agent.cli("alias", "add", topo.ra, f"{R_A_ADDR}/24")
    assert ping(topo.a, R_A_ADDR, count=1).returncode == 0
    ifaces = json.loads(bare_agent.cli("-o", "json", "ifaces").stdout)
    by_name = {item["name"]: item for item in ifaces}
    assert {topo.ra, topo.rb} <= set(by_name)
    assert by_name[topo.ra]["mac"] == topo.r.mac(topo.ra)
    assert by_name[topo.ra]["addresses"][0]["address"] == R_A_ADDR
    arp = bare_agent.cli("arp").stdout
    assert A_ADDR in arp and topo.a.mac(topo.a0) in arp


def test_agent_on_a_missing_nic_fails_to_start_and_leaves_nothing(lab: Lab) -> None:
    r = lab.netns("r")
    with pytest.raises(LabError, match="vrc-agent exited"):
        AgentProc(Topology(lab, r, r, r, "", "vtnope0", "vtnope1", ""),
                  interfaces=("vtnope0",))
    assert r.run("ip", "-o", "link").stdout.count("NOARP") == 0


# --- a crash: the NICs' original state survives it (issue 11 item 3) ------------------------


def _nic_state(topo: Topology, ifname: str) -> tuple[bool, str]:
    """(NOARP set, disable_ipv6) of one of R's NICs."""
    flags = topo.r.run("ip", "-o", "link", "show", ifname).stdout
    ipv6 = topo.r.run("cat", f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").stdout.strip()
    return "NOARP" in flags, ipv6


def _kill_isolating_agent(topo: Topology, run_dir: str) -> None:
    """Start an agent with ``run_dir``, check it isolated R's NICs, SIGKILL it."""
    for ifname in (topo.ra, topo.rb):
        topo.r.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "0")
        assert _nic_state(topo, ifname) == (False, "0")
    first = AgentProc(topo, "--run-dir", run_dir)
    try:
        assert _nic_state(topo, topo.ra) == (True, "1")
        first.proc.kill()
        first.proc.wait(10)
    finally:
        first.cleanup()
    # what a crash leaves: the NICs stay cut off from the kernel
    for ifname in (topo.ra, topo.rb):
        assert _nic_state(topo, ifname) == (True, "1")


def test_after_a_crash_the_next_agent_restores_the_nics_original_state(
    topo: Topology, tmp_path: Path
) -> None:
    run_dir = str(tmp_path / "run")
    _kill_isolating_agent(topo, run_dir)
    second = AgentProc(topo, "--run-dir", run_dir)
    try:
        assert _nic_state(topo, topo.ra) == (True, "1")  # isolated again while it runs
        records = [record.get("event") for record in second.log_records()]
        assert records.count("NIC restored from the record of an agent that did not stop "
                             "cleanly") == 2
    finally:
        assert second.stop() == 0
        second.cleanup()
    # its clean stop puts back the state from before the first agent, not the isolated one
    for ifname in (topo.ra, topo.rb):
        assert _nic_state(topo, ifname) == (False, "0")
    assert not Path(run_dir).exists()  # nothing left behind: records, locks, the directory


def test_restore_nics_puts_back_what_a_killed_agent_left(topo: Topology,
                                                         tmp_path: Path) -> None:
    from tests.netns import script_argv

    run_dir = str(tmp_path / "run")
    _kill_isolating_agent(topo, run_dir)
    restored = topo.r.run(*script_argv("vrc-agent"), "--restore-nics", "--run-dir", run_dir,
                          "--log-format", "json", check=False, timeout=60)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    for ifname in (topo.ra, topo.rb):
        assert _nic_state(topo, ifname) == (False, "0")
    again = topo.r.run(*script_argv("vrc-agent"), "--restore-nics", "--run-dir", run_dir,
                       check=False, timeout=60)
    assert again.returncode == 0 and "no NIC to restore" in again.stdout + again.stderr


def test_a_second_agent_on_the_same_nic_is_refused_and_changes_nothing(
    agent: AgentProc, topo: Topology
) -> None:
    run_dir = str(agent.dir / "run")  # the running agent's
    with pytest.raises(LabError, match="another vrc-agent"):
        AgentProc(topo, "--run-dir", run_dir, "--listen", f"unix:{agent.dir}/second.sock")
    assert ping(topo.a, R_A_ADDR, count=1).returncode == 0  # the first one is unharmed
    assert _nic_state(topo, topo.ra)[0]

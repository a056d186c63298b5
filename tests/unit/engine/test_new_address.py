"""A new address is used at once and announced (issue 11 item 16).

As in the seed, FreeBSD and Linux: no RFC 5227 probing by default — the
address answers ARP and ping from the moment it is added, and a gratuitous
ARP announces it. Conflict detection and defence (RFC 5227 section 2.4) stay
on. Probing is an opt-in, for the whole engine (``ArpConfig.probe_num``) or
for one alias (``add_alias(probes=N)``).
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from router import ArpConfig, Engine, EngineConfig
from router.arp.acd import AcdState
from router.errors import EINVAL, RouterError
from router.events import EventKind

R_MAC, PEER_MAC, OTHER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:99", "02:00:00:00:00:66"


def router(config: EngineConfig | None = None) -> Engine:
    e = Engine(config)
    e.add_ethernet("eth0", R_MAC)
    e.tick(5.0)
    return e


def arp_request(target: str, sender: str = "10.88.1.2", mac: str = PEER_MAC) -> bytes:
    return bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op=1, hwsrc=mac, psrc=sender, pdst=target))


def frames(e: Engine) -> list[Ether]:
    return [Ether(f) for _, f in e.transmit()]


def test_probing_is_off_by_default() -> None:
    assert ArpConfig().probe_num == 0


def test_a_new_address_answers_arp_and_ping_at_once() -> None:
    e = router()
    e.add_alias("eth0", "10.88.1.1/24")
    announced = frames(e)
    assert [(f[ARP].psrc, f[ARP].pdst, f.dst) for f in announced] == [
        ("10.88.1.1", "10.88.1.1", "ff:ff:ff:ff:ff:ff")]  # gratuitous ARP, in the same call
    eth0 = e.interface("eth0")
    assert eth0 is not None
    e.receive(eth0.index, arp_request("10.88.1.1"), 5.0)  # no time has passed
    (answer,) = frames(e)
    assert answer[ARP].op == 2 and answer[ARP].hwsrc == R_MAC
    e.receive(eth0.index, bytes(Ether(src=PEER_MAC, dst=R_MAC)
                                / IP(src="10.88.1.2", dst="10.88.1.1") / ICMP(id=3, seq=1)), 5.0)
    (reply,) = frames(e)
    assert reply[ICMP].type == 0 and reply[IP].src == "10.88.1.1"


def test_the_announcement_is_repeated_and_defence_stays_on() -> None:
    e = router()
    e.add_alias("eth0", "10.88.1.1/24")
    frames(e)
    e.tick(7.0)  # ANNOUNCE_INTERVAL later: the second gratuitous ARP
    assert [f[ARP].psrc for f in frames(e)] == ["10.88.1.1"]
    e.tick(9.0)  # announcing done: defending
    assert frames(e) == []
    eth0 = e.interface("eth0")
    assert eth0 is not None
    # another host claims the address: reported, and defended with an announcement
    e.receive(eth0.index, arp_request("10.88.1.9", sender="10.88.1.1", mac=OTHER_MAC), 20.0)
    conflicts = [ev for ev in e.drain_events() if ev.kind is EventKind.ARP_CONFLICT]
    assert conflicts and conflicts[-1].data["defended"] is True
    assert [f[ARP].psrc for f in frames(e)] == ["10.88.1.1"]
    assert e.arp.acd_state(eth0, 0x0A580101) is AcdState.DEFENDING


def test_probes_are_an_opt_in_per_alias() -> None:
    e = router()
    e.add_alias("eth0", "10.88.1.1/24", probes=2)
    eth0 = e.interface("eth0")
    assert eth0 is not None
    assert e.arp.acd_state(eth0, 0x0A580101) is AcdState.PROBING
    e.receive(eth0.index, arp_request("10.88.1.1"), 5.0)
    assert frames(e) == []  # tentative: not answered yet
    probes = []
    now = 5.0
    while (deadline := e.next_deadline()) is not None and deadline < 15.0:
        now = deadline
        e.tick(now)
        probes += [f for f in frames(e) if f[ARP].psrc == "0.0.0.0"]
    assert len(probes) == 2
    assert e.arp.acd_state(eth0, 0x0A580101) is AcdState.DEFENDING
    e.receive(eth0.index, arp_request("10.88.1.1"), now)
    assert [f[ARP].op for f in frames(e)] == [2]


def test_engine_wide_probing_is_an_opt_in_too_and_an_alias_can_skip_it() -> None:
    e = router(EngineConfig(arp=ArpConfig(probe_num=3)))
    eth0 = e.interface("eth0")
    assert eth0 is not None
    e.add_alias("eth0", "10.88.1.1/24")
    e.add_alias("eth0", "10.88.2.1/24", probes=0)
    assert e.arp.acd_state(eth0, 0x0A580101) is AcdState.PROBING
    assert e.arp.acd_state(eth0, 0x0A580201) is AcdState.ANNOUNCING


@pytest.mark.parametrize("probes", [-1, True, 1.5, "3", 256])
def test_a_bad_probe_count_is_einval_and_adds_nothing(probes: object) -> None:
    e = router()
    with pytest.raises(RouterError) as info:
        e.add_alias("eth0", "10.88.1.1/24", probes=probes)  # type: ignore[arg-type]
    assert (info.value.errno, info.value.field) == (EINVAL, "probes")
    eth0 = e.interface("eth0")
    assert eth0 is not None and e.inet.addresses(eth0) == []

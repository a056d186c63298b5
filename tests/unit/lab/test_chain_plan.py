"""The chain plan of ``vrc up``: names, addresses, claims and the path, without a namespace."""

from __future__ import annotations

import ipaddress

import pytest

from lab.chain import END_A, END_B, MAX_HOSTS, plan_chain, plan_ring


def test_three_hosts_make_four_segments_with_the_ends_on_the_outer_ones() -> None:
    plan = plan_chain("vu123456", 3)
    assert plan.hosts == ("h1", "h2", "h3")
    assert [seg.subnet for seg in plan.segments] == [
        "10.99.0.0/24", "10.99.1.0/24", "10.99.2.0/24", "10.99.3.0/24"]
    assert plan.a.node == END_A and plan.a.address == "10.99.0.1/24"
    assert plan.b.node == END_B and plan.b.address == "10.99.3.2/24"
    assert plan.gateway_of(END_A) == "10.99.0.2"
    assert plan.gateway_of(END_B) == "10.99.3.1"


def test_every_router_host_has_one_port_on_each_neighbouring_segment() -> None:
    plan = plan_chain("vu123456", 3)
    for k, host in enumerate(plan.hosts, start=1):
        ports = plan.ports_of(host)
        assert [p.address for p in ports] == [f"10.99.{k - 1}.2/24", f"10.99.{k}.1/24"]
        for port in ports:  # its address is inside the segment it sits on
            seg = next(s for s in plan.segments if port in (s.left, s.right))
            assert ipaddress.ip_interface(port.address).network == \
                ipaddress.ip_network(seg.subnet)


def test_interface_names_carry_the_run_prefix_and_fit_ifnamsiz() -> None:
    plan = plan_chain("vu123456", MAX_HOSTS)
    names = [p.ifname for seg in plan.segments for p in (seg.left, seg.right)]
    assert len(set(names)) == len(names)
    assert all(name.startswith("vu123456") and len(name) <= 15 for name in names)
    assert plan.netns_name("h2") == "vu123456-h2"


def test_the_end_subnets_are_claimed_by_the_router_host_on_them() -> None:
    plan = plan_chain("vu123456", 3)
    claims = [(c.prefix, c.host, c.ifname) for c in plan.claims()]
    assert claims == [("10.99.0.0/24", "h1", "vu123456s0b"),
                      ("10.99.3.0/24", "h3", "vu123456s3a")]


def test_the_path_from_a_to_b_is_each_router_s_address_towards_a() -> None:
    assert plan_chain("vu123456", 3).path() == ["10.99.0.2", "10.99.1.2", "10.99.2.2"]
    assert plan_chain("vu123456", 1).path() == ["10.99.0.2"]


@pytest.mark.parametrize("hosts", [0, -1, MAX_HOSTS + 1])
def test_a_host_count_out_of_range_names_the_flag(hosts: int) -> None:
    with pytest.raises(ValueError, match=f"--hosts {hosts}: must be 1..{MAX_HOSTS}"):
        plan_chain("vu123456", hosts)


def test_a_run_prefix_too_long_for_interface_names_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 15"):
        plan_chain("vu1234567890ab", 3)


def test_a_ring_of_four_puts_the_ends_on_opposite_hosts_with_two_paths_between() -> None:
    plan = plan_ring("vu123456", 4)
    assert plan.a.node == END_A and plan.segments[0].right.node == "h1"
    assert plan.segments[-1].left.node == "h3" and plan.b.node == END_B
    assert sorted(plan.neighbours("h1")) == ["h2", "h4"]
    assert sorted(plan.neighbours("h3")) == ["h2", "h4"]
    assert [(c.prefix, c.host) for c in plan.claims()] == [("10.99.0.0/24", "h1"),
                                                           ("10.99.5.0/24", "h3")]
    assert len(plan.ports_of("h1")) == 3 and len(plan.ports_of("h2")) == 2


def test_a_ring_needs_three_hosts() -> None:
    with pytest.raises(ValueError, match="ring of 2 hosts"):
        plan_ring("vu123456", 2)

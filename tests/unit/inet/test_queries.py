"""The ioctl entry (in_control) and the queries (in_localaddr, in_localip,
in_canforward, in_broadcast)."""

from __future__ import annotations

import errno

import pytest

from router.contracts import IoctlCmd
from router.errors import EADDRNOTAVAIL, EINVAL, EOPNOTSUPP, RouterError
from router.inet.domain import AliasRequest, DeleteRequest
from router.link.ifnet import IfFlags
from tests.unit.inet.support import P2P, Rig, StubDriver, ip, make_if

MASK24 = ip("255.255.255.0")


def errno_of(call: object, *args: object) -> int:
    with pytest.raises(RouterError) as err:
        call(*args)  # type: ignore[operator]
    return err.value.errno


# -- gets ---------------------------------------------------------------------


def test_get_address_answers_the_first_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.0.1.1"), MASK24)
    assert rig.inet.get(eth, IoctlCmd.SIOCGIFADDR) == ip("10.0.0.1")
    # As in the seed, SIOCGIFADDR ignores the address it is given.
    assert rig.inet.get(eth, IoctlCmd.SIOCGIFADDR, ip("10.0.1.1")) == ip("10.0.0.1")


def test_get_netmask_of_given_or_first_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.1.0.1"), ip("255.255.0.0"))
    assert rig.inet.get(eth, IoctlCmd.SIOCGIFNETMASK, ip("10.1.0.1")) == ip("255.255.0.0")
    assert rig.inet.get(eth, IoctlCmd.SIOCGIFNETMASK) == MASK24
    assert rig.inet.get(eth, IoctlCmd.SIOCGIFNETMASK, 0) == MASK24


def test_get_broadcast_on_broadcast_interface() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    assert rig.inet.get(eth, IoctlCmd.SIOCGIFBRDADDR, ip("10.0.0.1")) == ip("10.0.0.255")


def test_get_broadcast_without_broadcast_flag_is_einval() -> None:
    rig = Rig()
    ng = make_if("ng0", 1, P2P)
    rig.inet.add_alias(ng, ip("10.0.0.1"), dest=ip("10.0.0.2"))
    assert errno_of(rig.inet.get, ng, IoctlCmd.SIOCGIFBRDADDR) == EINVAL


def test_get_destination_on_point_to_point() -> None:
    rig = Rig()
    ng = make_if("ng0", 1, P2P)
    rig.inet.add_alias(ng, ip("10.0.0.1"), dest=ip("10.0.0.2"))
    assert rig.inet.get(ng, IoctlCmd.SIOCGIFDSTADDR) == ip("10.0.0.2")


def test_get_destination_without_pointopoint_is_einval() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    assert errno_of(rig.inet.get, eth, IoctlCmd.SIOCGIFDSTADDR) == EINVAL


def test_get_unknown_address_is_eaddrnotavail() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    assert errno_of(rig.inet.get, eth, IoctlCmd.SIOCGIFNETMASK, ip("10.0.0.2")) == EADDRNOTAVAIL


def test_get_on_interface_without_address_is_eaddrnotavail() -> None:
    assert errno_of(Rig().inet.get, make_if("eth0", 1), IoctlCmd.SIOCGIFADDR) == EADDRNOTAVAIL


def test_control_without_interface_is_eaddrnotavail() -> None:
    rig = Rig()
    for cmd in (IoctlCmd.SIOCGIFADDR, IoctlCmd.SIOCAIFADDR, IoctlCmd.SIOCSIFMTU):
        assert errno_of(rig.inet.control, None, cmd) == EADDRNOTAVAIL
    assert errno_of(rig.inet.get, None, IoctlCmd.SIOCGIFADDR) == EADDRNOTAVAIL


@pytest.mark.parametrize(
    "cmd",
    [IoctlCmd.SIOCSIFADDR, IoctlCmd.SIOCSIFBRDADDR, IoctlCmd.SIOCSIFDSTADDR,
     IoctlCmd.SIOCSIFNETMASK],
)
def test_old_set_commands_are_einval(cmd: IoctlCmd) -> None:
    eth = make_if("eth0", 1)
    eth.driver = driver = StubDriver()
    assert errno_of(Rig().inet.control, eth, cmd, ip("10.0.0.1")) == EINVAL
    assert driver.seen == []


def test_other_commands_go_to_the_driver() -> None:
    eth = make_if("eth0", 1)
    eth.driver = driver = StubDriver()
    assert Rig().inet.control(eth, IoctlCmd.SIOCSIFMTU, 9000) == 0
    assert driver.seen == [(IoctlCmd.SIOCSIFMTU, 9000)]


def test_driver_error_on_forwarded_command_is_raised() -> None:
    eth = make_if("eth0", 1)
    eth.driver = StubDriver(errno.EBUSY)
    assert errno_of(Rig().inet.control, eth, IoctlCmd.SIOCSIFMTU, 9000) == errno.EBUSY


def test_forwarded_command_without_driver_is_eopnotsupp() -> None:
    assert errno_of(Rig().inet.control, make_if("eth0", 1), IoctlCmd.SIOCSIFMTU, 1) == EOPNOTSUPP


def test_control_adds_deletes_and_gets() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    assert rig.inet.control(eth, IoctlCmd.SIOCAIFADDR, AliasRequest(ip("10.0.0.1"), MASK24)) == 0
    assert rig.inet.control(eth, IoctlCmd.SIOCGIFNETMASK) == MASK24
    assert rig.inet.control(eth, IoctlCmd.SIOCDIFADDR, DeleteRequest(ip("10.0.0.1"))) == 0
    assert errno_of(rig.inet.control, eth, IoctlCmd.SIOCDIFADDR, None) == EADDRNOTAVAIL


def test_control_delete_takes_a_plain_address_value() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    b = rig.inet.add_alias(eth, ip("10.0.1.1"), MASK24)
    rig.inet.control(eth, IoctlCmd.SIOCDIFADDR, ip("10.0.0.1"))
    assert rig.inet.addresses(eth) == [b]


def test_control_add_without_alias_request_is_einval() -> None:
    assert errno_of(Rig().inet.control, make_if("eth0", 1), IoctlCmd.SIOCAIFADDR, 5) == EINVAL


# -- queries ------------------------------------------------------------------


def test_local_subnet_covers_every_configured_subnet() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("172.16.5.1"), ip("255.255.0.0"))
    assert rig.inet.local_subnet(ip("10.0.0.200"))
    assert rig.inet.local_subnet(ip("172.16.99.1"))
    assert not rig.inet.local_subnet(ip("10.0.1.1"))


def test_local_subnet_stays_while_another_address_has_it() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.0.0.2"), MASK24)
    rig.inet.delete_alias(eth, ip("10.0.0.1"))
    assert rig.inet.local_subnet(ip("10.0.0.9"))
    rig.inet.delete_alias(eth, ip("10.0.0.2"))
    assert not rig.inet.local_subnet(ip("10.0.0.9"))


def test_local_ip_is_true_only_for_configured_addresses() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    assert rig.inet.local_ip(ip("10.0.0.1"))
    assert not rig.inet.local_ip(ip("10.0.0.2"))
    assert rig.inet.find(ip("10.0.0.1")) is rig.inet.addresses(eth)[0]
    assert rig.inet.find(ip("10.0.0.2")) is None


@pytest.mark.parametrize(
    ("addr", "ok"),
    [("10.1.1.1", True), ("8.8.8.8", True), ("172.16.0.1", True), ("192.168.1.1", True),
     ("240.0.0.1", False), ("255.255.255.255", False), ("224.0.0.1", False),
     ("239.255.255.255", False), ("169.254.1.1", False), ("0.1.2.3", False),
     ("127.0.0.1", False), ("169.253.1.1", True), ("128.0.0.1", True)],
)
def test_can_forward_excludes_reserved_space(addr: str, ok: bool) -> None:
    assert Rig().inet.can_forward(ip(addr)) is ok


def test_limited_broadcast_and_zero_are_broadcast_everywhere() -> None:
    rig = Rig()
    ng = make_if("ng0", 1, P2P)
    assert rig.inet.is_broadcast(ip("255.255.255.255"), ng)
    assert rig.inet.is_broadcast(0, ng)


def test_broadcast_needs_a_broadcast_interface() -> None:
    rig = Rig()
    ifp = make_if("tun0", 1, IfFlags.UP)
    rig.inet.add_alias(ifp, ip("10.0.0.1"), MASK24)
    assert not rig.inet.is_broadcast(ip("10.0.0.255"), ifp)
    assert not rig.inet.is_broadcast(ip("10.0.0.0"), ifp)


def test_subnet_broadcast_and_host_zero_are_broadcast() -> None:
    rig = Rig()
    eth, other = make_if("eth0", 1), make_if("eth1", 2)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    assert rig.inet.is_broadcast(ip("10.0.0.255"), eth)
    assert rig.inet.is_broadcast(ip("10.0.0.0"), eth)
    assert not rig.inet.is_broadcast(ip("10.0.0.7"), eth)
    assert not rig.inet.is_broadcast(ip("10.0.0.255"), other)


def test_slash_31_subnet_number_is_not_broadcast() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.2"), ip("255.255.255.254"))
    assert not rig.inet.is_broadcast(ip("10.0.0.2"), eth)
    assert rig.inet.is_broadcast(ip("255.255.255.255"), eth)


def test_all_ones_mask_address_makes_nothing_broadcast() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.5"), ip("255.255.255.255"), broadcast=ip("10.0.0.255"))
    assert not rig.inet.is_broadcast(ip("10.0.0.255"), eth)
    assert not rig.inet.is_broadcast(ip("10.0.0.5"), eth)


def test_broadcast_forgotten_with_its_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    rig.inet.add_alias(eth, ip("10.0.0.1"), MASK24)
    rig.inet.add_alias(eth, ip("10.0.0.2"), MASK24)
    rig.inet.delete_alias(eth, ip("10.0.0.1"))
    assert rig.inet.is_broadcast(ip("10.0.0.255"), eth)
    rig.inet.delete_alias(eth, ip("10.0.0.2"))
    assert not rig.inet.is_broadcast(ip("10.0.0.255"), eth)


def test_address_finds_the_value_or_the_first_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    assert rig.inet.address(eth) is None
    a = rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    b = rig.inet.add_alias(eth, ip("10.0.1.1"), ip("255.255.255.0"))
    assert rig.inet.address(eth) is a and rig.inet.address(eth, 0) is a
    assert rig.inet.address(eth, ip("10.0.1.1")) is b
    assert rig.inet.address(eth, ip("10.0.2.1")) is None


def test_address_on_prefers_the_destination_subnet_then_the_first_address() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    assert rig.inet.address_on(eth, ip("10.0.1.9")) == 0
    rig.inet.add_alias(eth, ip("10.0.0.1"), ip("255.255.255.0"))
    rig.inet.add_alias(eth, ip("10.0.1.1"), ip("255.255.255.0"))
    rig.inet.add_alias(eth, ip("10.0.1.2"), ip("255.255.0.0"))
    assert rig.inet.address_on(eth, ip("10.0.1.9")) == ip("10.0.1.1")
    assert rig.inet.address_on(eth, ip("10.0.7.7")) == ip("10.0.1.2")
    assert rig.inet.address_on(eth, ip("192.0.2.1")) == ip("10.0.0.1")

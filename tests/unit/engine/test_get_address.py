"""``Engine.get_address`` asks the seed's questions (in.c ``in_control``, the gets).

SIOCGIFADDR answers the interface's first address whatever address is named
and is ``EADDRNOTAVAIL`` only when the interface has none; the netmask,
broadcast and destination gets look the named address up.
"""

from __future__ import annotations

import pytest

from router import Engine
from router.errors import EADDRNOTAVAIL, EINVAL, RouterError


def two_addresses() -> Engine:
    engine = Engine()
    engine.add_ethernet("eth0", "02:00:00:00:00:01")
    engine.add_ethernet("eth1", "02:00:00:00:00:02")
    engine.add_alias("eth0", "10.0.0.1/24")
    engine.add_alias("eth0", "10.7.0.1/16")
    return engine


def errno_of(call: object, *args: object, **kwargs: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(RouterError) as info:
        call(*args, **kwargs)
    return info.value.errno, info.value.field


@pytest.mark.parametrize("named", [None, "10.0.0.1", "10.7.0.1", "10.9.9.9"])
def test_siocgifaddr_answers_the_first_address_whatever_address_is_named(
        named: str | None) -> None:
    record = two_addresses().get_address("eth0", named, which="address")
    assert record["address"] == "10.0.0.1"
    assert (record["netmask"], record["plen"]) == ("255.255.255.0", 24)


def test_siocgifaddr_without_any_address_is_eaddrnotavail() -> None:
    engine = two_addresses()
    assert errno_of(engine.get_address, "eth1", "10.0.0.1", which="address")[0] == EADDRNOTAVAIL
    assert errno_of(engine.get_address, "eth1", which="address")[0] == EADDRNOTAVAIL


def test_the_other_gets_look_the_named_address_up() -> None:
    engine = two_addresses()
    assert engine.get_address("eth0", "10.7.0.1", which="netmask")["netmask"] == "255.255.0.0"
    assert engine.get_address("eth0", "10.7.0.1", which="broadcast")["broadcast"] == (
        "10.7.255.255")
    assert engine.get_address("eth0", "10.7.0.1")["address"] == "10.7.0.1"
    for which in ("netmask", "broadcast", None):
        assert errno_of(engine.get_address, "eth0", "10.9.9.9", which=which)[0] == EADDRNOTAVAIL
    assert errno_of(engine.get_address, "eth0", "10.7.0.1", which="destination")[0] == EINVAL

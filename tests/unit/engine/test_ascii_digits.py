"""Text the Engine parses takes ASCII digits only (issue 11 item 7).

``str.isdigit`` and ``int`` accept superscripts, Arabic-Indic and full-width
digits; an address, a prefix length, a mask, a MAC or an MTU written with
them is ``EINVAL`` naming the field, and nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from router import Engine
from router.errors import EINVAL, RouterError

SUPERSCRIPT_TWO = "\u00b2"  # '²': isdigit() is True, int() refuses it
ARABIC_INDIC = "\u0662\u0664"  # '٢٤': int() reads 24
FULL_WIDTH = "\uff11\uff10"  # full-width one, zero: int() reads 10


def engine() -> Engine:
    e = Engine()
    e.add_ethernet("eth0", "02:00:00:00:00:01")
    e.add_alias("eth0", "10.0.0.1/24")
    return e


Call = Callable[[Engine], Any]

CASES: list[tuple[str, Call, str]] = [
    ("plen superscript", lambda e: e.add_alias("eth0", f"10.9.9.1/{SUPERSCRIPT_TWO}"), "address"),
    ("plen arabic-indic", lambda e: e.add_alias("eth0", f"10.9.9.1/{ARABIC_INDIC}"), "address"),
    ("octet arabic-indic", lambda e: e.add_alias("eth0", f"{ARABIC_INDIC}.9.9.1/24"), "address"),
    ("octet full-width", lambda e: e.add_alias("eth0", f"{FULL_WIDTH}.9.9.1"), "address"),
    ("mask arabic-indic",
     lambda e: e.add_alias("eth0", "10.9.9.1", mask=f"255.255.{ARABIC_INDIC}5.0"), "mask"),
    ("broadcast full-width",
     lambda e: e.add_alias("eth0", "10.9.9.1/24", broadcast=f"{FULL_WIDTH}.9.9.255"),
     "broadcast"),
    ("route prefix", lambda e: e.add_route(f"{FULL_WIDTH}.5.0.0/16", ifname="eth0"), "prefix"),
    ("route plen", lambda e: e.add_route(f"10.5.0.0/{ARABIC_INDIC}", ifname="eth0"), "prefix"),
    ("route gateway",
     lambda e: e.add_route("10.5.0.0/16", gateway=f"10.0.0.{ARABIC_INDIC}"), "gateway"),
    ("arp ip", lambda e: e.set_arp("eth0", f"10.0.0.{ARABIC_INDIC}", "02:00:00:00:00:05"), "ip"),
    ("arp mac arabic-indic",
     lambda e: e.set_arp("eth0", "10.0.0.5", "\u0660\u0662:00:00:00:00:05"), "mac"),
    ("arp mac full-width", lambda e: e.set_arp("eth0", "10.0.0.5", "02:00:00:00:00:\uff15"), "mac"),
    ("arp mac sign", lambda e: e.set_arp("eth0", "10.0.0.5", "+2:00:00:00:00:05"), "mac"),
    ("arp mac space", lambda e: e.set_arp("eth0", "10.0.0.5", " 2:00:00:00:00:05"), "mac"),
    ("ethernet mac", lambda e: e.add_ethernet("eth1", "02:00:00:00:00:\u0662"), "mac"),
    ("ethernet mtu text", lambda e: e.add_ethernet("eth1", "02:00:00:00:00:02",
                                                   mtu="\u0661\u0665\u0660\u0660"), "mtu"),
    ("interface mtu text", lambda e: e.set_interface("eth0", mtu="\u0661\u0665\u0660\u0660"),
     "mtu"),
    ("delete alias", lambda e: e.delete_alias("eth0", f"10.0.0.{SUPERSCRIPT_TWO}"), "address"),
    ("get address", lambda e: e.get_address("eth0", f"10.0.0.{ARABIC_INDIC}"), "address"),
    ("query", lambda e: e.query("local-address", f"10.0.0.{ARABIC_INDIC}"), "address"),
]


@pytest.mark.parametrize(("call", "field"), [(c, f) for _, c, f in CASES],
                         ids=[name for name, _, _ in CASES])
def test_non_ascii_digits_are_einval_naming_the_field(call: Call, field: str) -> None:
    e = engine()
    routes, arp = e.routes(), e.arp_entries()
    names = [ifp.name for ifp in e.interfaces()]
    with pytest.raises(RouterError) as info:
        call(e)
    assert (info.value.errno, info.value.field) == (EINVAL, field)
    assert e.routes() == routes and e.arp_entries() == arp
    assert [ifp.name for ifp in e.interfaces()] == names


def test_ascii_text_of_the_same_values_is_accepted() -> None:
    e = engine()
    e.add_alias("eth0", "10.9.9.1/24", broadcast="10.9.9.255")
    e.add_route("10.5.0.0/16", gateway="10.0.0.24")
    assert e.set_arp("eth0", "10.0.0.5", "02:00:00:00:00:05").lladdr == bytes.fromhex(
        "020000000005")
    assert e.set_arp("eth0", "10.0.0.6", "2-0-0-0-0-6").lladdr == bytes.fromhex("020000000006")
    e.add_ethernet("eth1", "02:00:00:00:00:0A", mtu=1500)

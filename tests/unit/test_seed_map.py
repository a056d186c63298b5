"""docs/seed-map.md names, for every seed function, a vrc function and tests that exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_MAP = ROOT / "docs" / "seed-map.md"

DLIL = """ifnet_attach ifnet_detach ifnet_detach_final dlil_if_acquire dlil_if_release
ifnet_is_attached ifnet_decr_iorefcnt ifnet_attach_protocol ifnet_attach_protocol_v2
ifnet_detach_protocol if_proto_free dlil_attach_filter dlil_detach_filter ifnet_input
dlil_input_packet_list dlil_interface_filters_input dlil_interface_filters_output dlil_output
ifnet_ioctl dlil_event_internal dlil_post_msg dlil_send_arp dlil_resolve_multi""".split()
IN_C = """in_localaddr in_localip in_localip_more in_canforward in_control in_aifaddr_ioctl
in_difaddr_ioctl in_addralias_rtmsg in_addprefix in_scrubprefix in_broadcast in_ifdetach
in_purgemaddrs in_lltable_new in_lltable_free in_lltable_prefix_free in_lltable_rtcheck
in_lltable_lookup in_lltable_dump in_domifattach in_domifdetach""".split()
NG = """ng_iface_constructor ng_iface_newhook ng_iface_rcvmsg ng_iface_rcvdata ng_iface_output
ng_iface_send ng_iface_bpftap ng_iface_ioctl ng_iface_shutdown ng_iface_disconnect""".split()

TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")
FUNC_REF = re.compile(r"`((?:router|agents)\.[\w.]+)`")


def _rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in SEED_MAP.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0]:
            rows[cells[0].strip("`")] = line
    return rows


def test_every_seed_function_has_a_row() -> None:
    rows = _rows()
    missing = [name for name in DLIL + IN_C + NG if name not in rows]
    assert not missing, f"seed functions without a row in docs/seed-map.md: {missing}"


def test_every_row_names_existing_tests() -> None:
    rows = _rows()
    for name in DLIL + IN_C + NG:
        refs = TEST_REF.findall(rows.get(name, ""))
        assert refs, f"{name}: no test named"
        for path, test in refs:
            source = (ROOT / path).read_text()
            assert re.search(rf"def {test}\b", source), f"{name}: {path}::{test} does not exist"


def test_every_row_names_an_existing_vrc_function() -> None:
    rows = _rows()
    for name in DLIL + IN_C + NG:
        refs = FUNC_REF.findall(rows.get(name, ""))
        assert refs, f"{name}: no vrc function named"
        for ref in refs:
            assert _resolves(ref), f"{name}: {ref} does not exist"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False

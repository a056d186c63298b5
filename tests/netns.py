"""Network namespaces, veth pairs and processes for tests and benches: :mod:`lab`.

The implementation is the product's (``vrc up`` builds its cluster with
it); this module keeps the names the tests import. Everything a ``Lab``
makes has a per-run prefix and is removed by ``Lab.close()``, also on
failure; every command and wait is bounded.
"""

from __future__ import annotations

from lab.netns import (
    IFNAMSIZ,
    REQUIRED_TOOLS,
    Lab,
    LabError,
    Netns,
    delete_netns,
    netns_exists,
    require_root_and_tools,
    wait_until,
)
from lab.procs import CONSOLE_SCRIPTS, PACKAGE_ROOT, console_argv

REPO_ROOT = PACKAGE_ROOT
script_argv = console_argv

__all__ = ["CONSOLE_SCRIPTS", "IFNAMSIZ", "REPO_ROOT", "REQUIRED_TOOLS", "Lab", "LabError",
           "Netns", "delete_netns", "netns_exists", "require_root_and_tools", "script_argv",
           "wait_until"]

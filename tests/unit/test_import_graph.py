"""No run-time import circle inside router/, and every module imports on its own.

Two checks of one rule. The graph check reads every module's imports from
its source (``if TYPE_CHECKING:`` blocks left out: they never run) and
asserts the graph of router modules is acyclic; a circle is reported as the
chain of modules that closes it. The isolation check imports each module
first thing in a fresh interpreter, which is what a circle would break.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUTER = ROOT / "router"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROUTER.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Every statement of ``body``, nested ones included, except ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            found.extend(_statements(node.orelse))
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                for child in children:
                    if isinstance(child, ast.stmt):
                        found.extend(_statements([child]))
                    else:  # an except handler or a match case: its body holds statements
                        found.extend(_statements(child.body))
    return found


def runtime_imports(module: str, source: str) -> set[str]:
    """The router modules ``module`` imports when it runs."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    imported: set[str] = set()
    for node in _statements(ast.parse(source).body):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            imported.add(base)
            imported.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in imported if name in MODULES and name != module}


def import_graph() -> dict[str, set[str]]:
    return {module: runtime_imports(module, path.read_text()) for module, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as ``[a, b, ..., a]``, or None if it is acyclic."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return [*path[path.index(nxt):], nxt]
            if nxt not in done:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_router_has_no_runtime_import_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "run-time import circle: " + " -> ".join(cycle or [])


#: The layers bottom up (docs/architecture.md): a module imports only from its
#: own package and from lower layers; packages on one level are independent.
LAYERS = {
    "router.wire": 0, "router.errors": 0, "router.events": 0,
    "router.contracts": 1, "router.offload": 1,
    "router.link": 2,
    "router.inet": 3, "router.arp": 3,
    "router.ipv4": 4, "router.ng": 4,
    "router.engine": 5,
    "router": 6,
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_imports_go_down_the_layers() -> None:
    upward = sorted(
        f"{module} -> {imported}"
        for module, imports in import_graph().items()
        for imported in imports
        if layer_of(module) != layer_of(imported)
        and LAYERS[layer_of(imported)] >= LAYERS[layer_of(module)]
    )
    assert not upward, f"imports that do not go down the layers: {upward}"


def test_every_package_has_a_layer() -> None:
    assert {layer_of(module) for module in MODULES} == set(LAYERS)


def test_the_graph_sees_every_layer() -> None:
    graph = import_graph()
    assert len(MODULES) > 40
    assert "router.link.ifnet" in graph["router.link.datalink"]
    assert "router.contracts" in graph["router.link.ifnet"]
    # the type-only reference back is not a run-time edge
    assert "router.link.ifnet" not in graph["router.contracts"]
    assert "router.link.datalink" not in graph["router.link.io"]


def test_the_check_finds_a_circle_and_skips_type_checking_blocks() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from router.link.datalink import DataLink\nelse:\n"
              "    import router.errors\ndef f():\n    from router.events import Event\n")
    assert runtime_imports("router.link.io", source) == {"router.errors", "router.events"}
    relative = "from . import ifnet\nfrom ..errors import RouterError\n"
    assert runtime_imports("router.link.io", relative) == {
        "router.link", "router.link.ifnet", "router.errors"}


ISOLATED_IMPORT = """
import importlib, sys, traceback
sys.path.insert(0, sys.argv[1])
failed = []
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m == "router" or m.startswith("router.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.timeout(120)
def test_every_router_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each module imported first, with no router module loaded before it.

    One interpreter for all of them (the standard library stays loaded, which
    is no part of the question); ``router`` and everything under it is
    forgotten before each import.
    """
    proc = subprocess.run([sys.executable, "-c", ISOLATED_IMPORT, str(ROOT), *MODULES],
                          capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, f"modules that fail to import alone:\n{proc.stdout}{proc.stderr}"

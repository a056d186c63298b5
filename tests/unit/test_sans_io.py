"""The engine in router/ does no I/O: no sockets, threads, processes, sleeps or clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

ROUTER = Path(__file__).resolve().parents[2] / "router"
FORBIDDEN_MODULES = {
    "socket", "threading", "_thread", "asyncio", "select", "selectors", "subprocess",
    "multiprocessing", "time", "os", "signal", "mmap", "concurrent",
}
FORBIDDEN_CALLS = {"open", "print", "input"}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _called_builtins(tree: ast.AST) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def test_router_imports_no_io_module() -> None:
    offenders = {}
    for path in sorted(ROUTER.rglob("*.py")):
        bad = _imports(ast.parse(path.read_text())) & FORBIDDEN_MODULES
        if bad:
            offenders[str(path.relative_to(ROUTER))] = sorted(bad)
    assert not offenders, f"router/ modules importing I/O modules: {offenders}"


def test_router_calls_no_io_builtin() -> None:
    offenders = {}
    for path in sorted(ROUTER.rglob("*.py")):
        bad = _called_builtins(ast.parse(path.read_text())) & FORBIDDEN_CALLS
        if bad:
            offenders[str(path.relative_to(ROUTER))] = sorted(bad)
    assert not offenders, f"router/ modules calling I/O builtins: {offenders}"


def test_the_check_sees_a_forbidden_import() -> None:
    assert _imports(ast.parse("import socket\nfrom time import monotonic\n")) == {"socket", "time"}

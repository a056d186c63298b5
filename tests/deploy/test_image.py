"""The container image: the Dockerfile's rules, .dockerignore, and the no-Docker smoke build.

No Docker engine runs on these machines, so ``scripts/image_smoke.py`` builds
the image's environment (the wheel and its dependencies in a fresh venv, from a
context filtered by .dockerignore) and starts every console script; this test
runs it and reads its report.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SMOKE = ROOT / "scripts" / "image_smoke.py"
SMOKE_TIMEOUT = 900


def smoke_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_smoke", SMOKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_smoke"] = module
    spec.loader.exec_module(module)
    return module


def dockerfile_lines() -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    joined, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return joined


def test_base_is_slim_cpython_314_pinned_by_tag() -> None:
    args = {line.split()[1].split("=")[0]: line.split("=", 1)[1]
            for line in dockerfile_lines() if line.startswith("ARG ") and "=" in line}
    image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.14\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image


def test_two_stages_build_then_install_with_no_index() -> None:
    lines = dockerfile_lines()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms == ["FROM ${PYTHON_IMAGE} AS build", "FROM ${PYTHON_IMAGE}"]
    assert any("pip wheel --wheel-dir /wheels ." in line for line in lines)
    install = next(line for line in lines if "pip install" in line)
    assert "--no-index --find-links /wheels vrc" in install
    for script in ("vrc", "vrc-agent", "vrc-controller"):
        assert f"/opt/vrc/bin/{script} --help" in install


def test_image_runs_as_a_numeric_non_root_user() -> None:
    users = [line.split()[1] for line in dockerfile_lines() if line.startswith("USER ")]
    assert users, "no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert gid.isdigit() and int(gid) != 0


def test_dockerignore_keeps_what_the_wheel_needs_and_drops_the_rest() -> None:
    smoke = smoke_module()
    rules = smoke.read_dockerignore(ROOT / ".dockerignore")
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)
    for kept in ("pyproject.toml", project["project"]["readme"], "router/__init__.py",
                 "router/link/datalink.py", "agents/daemon.py", "cli/main.py",
                 "vrc/v1/agent_pb2.py"):
        assert not smoke.is_ignored(kept, rules), kept
    for dropped in (".git/config", "tests/unit/link/test_ifnet.py",
                    "deploy/base/kustomization.yaml", "router/__pycache__/x.cpython-311.pyc",
                    "vrc.egg-info/PKG-INFO", "agents/sub/__pycache__/y.pyc", "captures/a.pcap",
                    "Dockerfile"):
        assert smoke.is_ignored(dropped, rules), dropped


@pytest.mark.parametrize(("lines", "path", "ignored"), [
    (["docs"], "docs/deploy.md", True),
    (["*.md"], "README.md", True),
    (["*.md"], "docs/deploy.md", False),  # * does not cross a directory
    (["**/*.md"], "docs/deploy.md", True),
    (["docs", "!docs/keep.md"], "docs/keep.md", False),
    (["!docs/keep.md", "docs"], "docs/keep.md", True),  # the last match wins
    (["/build"], "build/lib/x.py", True),
])
def test_dockerignore_rules_follow_dockers_matching(tmp_path: Path, lines: list[str],
                                                    path: str, ignored: bool) -> None:
    smoke = smoke_module()
    (tmp_path / ".dockerignore").write_text("\n".join(lines) + "\n")
    assert smoke.is_ignored(path, smoke.read_dockerignore(tmp_path / ".dockerignore")) is ignored


def test_image_environment_builds_without_docker_and_every_script_starts() -> None:
    proc = subprocess.run([sys.executable, str(SMOKE)], capture_output=True, text=True,
                          timeout=SMOKE_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    with (ROOT / "pyproject.toml").open("rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    assert {"vrc", "vrc-agent"} <= set(scripts)
    for name in scripts:
        assert f"ok   {name} --help" in report, report
    assert "ok   stage 2: fresh venv, pip install --no-index" in report
    assert "ok   vrc-agent refuses to start without a usable NIC" in report
    if "vrc-controller" in scripts:
        assert "ok   vrc-controller with its private etcd answers" in report, report

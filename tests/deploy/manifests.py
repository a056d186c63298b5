"""Rendering deploy/ with kubectl kustomize, and reading the objects it makes.

kubectl comes from scripts/install-deps.sh (scripts/install-kubectl.sh when the
machine has none); a missing one fails the tests with that hint, never skips.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs" / "deploy.md"
NAMESPACE = "vrc-system"
RENDER_TIMEOUT = 120.0
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod")


def kustomizations() -> list[str]:
    """Every directory under deploy/ with a kustomization, relative to deploy/."""
    found = DEPLOY.rglob("kustomization.yaml")
    return sorted(str(path.parent.relative_to(DEPLOY)) for path in found)


def overlays() -> list[str]:
    return [name for name in kustomizations() if name.startswith("overlays/")]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise AssertionError("kubectl is not on PATH: run scripts/install-deps.sh "
                             "(scripts/install-kubectl.sh installs it)")
    return found


@functools.cache
def render(name: str) -> tuple[dict[str, Any], ...]:
    proc = subprocess.run([kubectl(), "kustomize", str(DEPLOY / name)], capture_output=True,
                          text=True, timeout=RENDER_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize deploy/{name}: {proc.stderr.strip()}")
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def objects(name: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in render(name) if doc["kind"] == kind]


def one(name: str, kind: str, object_name: str) -> dict[str, Any]:
    matches = [doc for doc in objects(name, kind) if doc["metadata"]["name"] == object_name]
    assert len(matches) == 1, f"deploy/{name}: {len(matches)} {kind}/{object_name}"
    return matches[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "Pod":
        return dict(workload["spec"])
    if workload["kind"] == "CronJob":
        return dict(workload["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(workload["spec"]["template"]["spec"])


def containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def workloads(name: str) -> list[dict[str, Any]]:
    return [doc for doc in render(name) if doc["kind"] in WORKLOAD_KINDS]


def every_workload() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in kustomizations():
        for workload in workloads(name):
            yield name, workload


def config(name: str) -> dict[str, str]:
    """The data of the vrc-config ConfigMap (its generated name has a hash suffix)."""
    maps = [doc for doc in objects(name, "ConfigMap")
            if doc["metadata"]["name"].startswith("vrc-config")]
    assert len(maps) == 1, maps
    return dict(maps[0]["data"])


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command and args (unknown names stay as written)."""
    return _REFERENCE.sub(lambda match: env.get(match.group(1), match.group(0)), value)


def container_env(name: str, container: dict[str, Any], downward: dict[str, str]
                  ) -> dict[str, str]:
    """The container's environment as Kubernetes would build it; ``downward`` gives
    the values of fieldRef paths (``spec.nodeName``...)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"].startswith("vrc-config"), source
            env.update(config(name))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "fieldRef" in item.get("valueFrom", {}):
            env[item["name"]] = downward[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def flag_values(args: list[str], flag: str) -> list[str]:
    """The values of ``--flag=V`` / ``--flag V`` in an argv."""
    values = []
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
        elif arg == flag and index + 1 < len(args):
            values.append(args[index + 1])
    return values


def package_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def console_scripts() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["project"]["scripts"])


def documented_agent_capabilities() -> set[str]:
    """The capabilities docs/deploy.md gives the agent: its line starting
    ``**Capabilities:**``, every backticked name on it."""
    for line in DOCS.read_text().splitlines():
        if line.startswith("**Capabilities:**"):
            return set(re.findall(r"`([A-Z_]+)`", line))
    raise AssertionError("docs/deploy.md has no **Capabilities:** line")

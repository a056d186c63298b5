"""The checked-in generated code under vrc/v1/ matches proto/vrc/v1/*.proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "vrc" / "v1"
PROTOS = sorted((ROOT / "proto" / "vrc" / "v1").glob("*.proto"))


def _generate(out: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iproto",
         f"--python_out={out}", f"--grpc_python_out={out}", f"--pyi_out={out}",
         *(str(p.relative_to(ROOT)) for p in PROTOS)],
        cwd=ROOT, check=True, capture_output=True,
    )


def _generated_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*_pb2*"))
            if p.suffix in (".py", ".pyi")}


def test_checked_in_generated_code_is_fresh(tmp_path: Path) -> None:
    _generate(tmp_path)
    fresh = _generated_files(tmp_path / "vrc" / "v1")
    checked_in = _generated_files(GENERATED)
    assert fresh, "protoc produced nothing"
    assert sorted(checked_in) == sorted(fresh), "file set differs: run scripts/gen-proto.sh"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stale generated code {stale}: run scripts/gen-proto.sh"


def test_gen_proto_script_writes_the_same_files(tmp_path: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-proto.sh"), str(tmp_path)],
                   check=True, capture_output=True)
    assert _generated_files(tmp_path / "vrc" / "v1") == _generated_files(GENERATED)


def test_generated_modules_import_each_other_by_package() -> None:
    text = (GENERATED / "agent_pb2.py").read_text()
    assert "from vrc.v1 import types_pb2" in text
    from vrc.v1 import agent_pb2, agent_pb2_grpc

    assert agent_pb2.DESCRIPTOR.package == "vrc.v1"
    assert hasattr(agent_pb2_grpc, "AgentServicer")


def test_every_proto_declares_package_vrc_v1() -> None:
    assert PROTOS
    for proto in PROTOS:
        assert "package vrc.v1;" in proto.read_text(), proto.name

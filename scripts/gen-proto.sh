#!/usr/bin/env bash
# Regenerate the checked-in Python for proto/vrc/v1/*.proto into vrc/v1/.
# Usage: scripts/gen-proto.sh [OUTDIR]   (OUTDIR defaults to the repo root)
# Run from anywhere; the generated modules import each other as
# `from vrc.v1 import types_pb2`, so no import line is rewritten.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root}"
mkdir -p "$out/vrc/v1"
cd "$root"
python3 -m grpc_tools.protoc -Iproto \
    --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" \
    proto/vrc/v1/*.proto

#!/usr/bin/env bash
# The one test command (README Quickstart, .ci/run): installs what the tests
# need on a fresh Debian machine (root), then runs lint, types and every test,
# the root-only integration tests included. Missing prerequisites fail; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "== ruff"; python3 -m ruff check router agents controller serving cli lab tests bench
echo "== mypy router/ controller/ serving/ lab/"; python3 -m mypy router controller serving lab
echo "== pytest"
export VRC_REQUIRE_INTEGRATION=1
python3 -m pytest -q -p no:cacheprovider tests "$@"

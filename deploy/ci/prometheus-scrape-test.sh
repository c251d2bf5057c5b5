#!/usr/bin/env bash
# A real Prometheus scrapes a local process cluster (deploy/local/cluster.sh:
# Redis, three gateways, presence, history) with the project's alert rules
# loaded, and every target must be up and report Redis reachable.
#
# Installs prometheus (Debian's package) when run as root and missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "scrape-test: $*" >&2; }
if ! command -v prometheus >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { log "prometheus is missing: apt-get install prometheus"; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi

work=$(mktemp -d)
export CLUSTER_DIR="$work/cluster" CLUSTER_PROFILE=debug
port=19090
cleanup() {
    [ -n "${prom_pid:-}" ] && kill "$prom_pid" 2>/dev/null || true
    deploy/local/cluster.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
deploy/local/cluster.sh up >/dev/null

cp deploy/prometheus/alerts.yml "$work/alerts.yml"
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [alerts.yml]
scrape_configs:
  - job_name: gateway
    static_configs: [{targets: ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"]}]
  - job_name: presence
    static_configs: [{targets: ["127.0.0.1:8090"]}]
  - job_name: history
    static_configs: [{targets: ["127.0.0.1:8091"]}]
YAML
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!

query() { curl -sf "http://127.0.0.1:$port/api/v1/$1"; }
deadline=$((SECONDS + 60))
while :; do
    if targets=$(query targets) && redis_up=$(query 'query?query=sum(chat_redis_up)'); then
        verdict=$(python3 - "$targets" "$redis_up" <<'PY'
import json, sys
targets = json.loads(sys.argv[1])["data"]["activeTargets"]
up = sorted(t["labels"]["job"] + "/" + t["labels"]["instance"] for t in targets if t["health"] == "up")
result = json.loads(sys.argv[2])["data"]["result"]
redis = float(result[0]["value"][1]) if result else 0
print("ok" if len(targets) == 5 and len(up) == 5 and redis == 5 else f"waiting: {len(up)}/{len(targets)} up {up}, chat_redis_up sum {redis}")
PY
)
        [ "$verdict" = ok ] && break
    fi
    if [ $SECONDS -gt $deadline ]; then
        log "not every target up: ${verdict:-prometheus not answering}"
        tail -20 "$work/prometheus.log" >&2
        exit 1
    fi
    sleep 1
done
rules=$(query rules | python3 -c 'import json,sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
[ "$rules" -ge 6 ] || { log "alert rules not loaded ($rules)"; exit 1; }
log "ok: 5 targets up, Redis reachable from all, $rules alert rules loaded"

#!/usr/bin/env bash
# A local cluster of processes for development: one Redis, three gateways on
# ports 8081-8083, the presence service on 8090 and the history service on
# 8091, all logs in one folder.
#
#   deploy/local/cluster.sh up     # build (release) and start
#   deploy/local/cluster.sh down   # drain the gateways, stop Redis
#   deploy/local/cluster.sh status
#
# Settings (environment): CLUSTER_DIR (default .cluster), CLUSTER_REDIS_PORT
# (default 6380), CLUSTER_ADMIN_KEY (default dev-admin-key), CLUSTER_PROFILE
# (release, or debug for a quicker build in tests), CLUSTER_BIN_DIR (run the
# binaries in this folder as they are, without building: a kept "before"
# build for side-by-side measurements).
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${CLUSTER_DIR:-.cluster}
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
redis_port=${CLUSTER_REDIS_PORT:-6380}
admin_key=${CLUSTER_ADMIN_KEY:-dev-admin-key}
gateway_ports=(8081 8082 8083)
presence_port=8090
history_port=8091
profile=${CLUSTER_PROFILE:-release}
bin_dir=${CLUSTER_BIN_DIR:-target/$profile}
bin=$bin_dir/gateway
presence_bin=$bin_dir/presence
history_bin=$bin_dir/history

up() {
    deploy/local/ensure-redis.sh
    if [ -n "${CLUSTER_BIN_DIR:-}" ]; then
        : # run what is there
    elif [ "$profile" = release ]; then
        cargo build --release --locked -p gateway -p presence -p history
    else
        cargo build --locked -p gateway -p presence -p history
    fi
    mkdir -p "$dir/logs" "$dir/pids" "$dir/redis"
    if [ -f "$dir/pids/redis" ] && kill -0 "$(cat "$dir/pids/redis")" 2>/dev/null; then
        echo "already running; run '$0 down' first" >&2
        exit 1
    fi
    for port in "$redis_port" "${gateway_ports[@]}" "$presence_port" "$history_port"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "port $port is in use (another cluster? CLUSTER_DIR=… $0 down stops it)" >&2
            exit 1
        fi
    done
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" \
        --save '' --appendonly yes --appendfsync everysec \
        --logfile "$dir/logs/redis.log" --daemonize yes --pidfile "$dir/pids/redis"
    for _ in $(seq 50); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    # One environment for the whole cluster: every service reads the
    # cluster-wide keys (redis, history, presence, …) and its own section;
    # the caller's CHAT_* settings reach every service too.
    export CHAT_REDIS__URL="redis://127.0.0.1:$redis_port"
    export CHAT_GATEWAY__ENGINE=redis
    export CHAT_GATEWAY__ADMIN__API_KEY="$admin_key"
    export CHAT_GATEWAY__HISTORY_SERVICE__URL="http://127.0.0.1:$history_port"
    export CHAT_GATEWAY__LIMITS__USER_MESSAGES_PER_SECOND="${CHAT_GATEWAY__LIMITS__USER_MESSAGES_PER_SECOND:-50}"
    export CHAT_PRESENCE_SERVICE__LISTEN="127.0.0.1:$presence_port"
    export CHAT_PRESENCE_SERVICE__REPLICA_ID=presence-1
    export CHAT_HISTORY_SERVICE__LISTEN="127.0.0.1:$history_port"
    local i=1
    for port in "${gateway_ports[@]}"; do
        CHAT_GATEWAY__LISTEN="127.0.0.1:$port" CHAT_GATEWAY__NODE_ID="gw-$i" \
            nohup "$bin" >"$dir/logs/gateway-$i.log" 2>&1 &
        echo $! >"$dir/pids/gateway-$i"
        i=$((i + 1))
    done
    nohup "$presence_bin" >"$dir/logs/presence.log" 2>&1 &
    echo $! >"$dir/pids/presence"
    nohup "$history_bin" >"$dir/logs/history.log" 2>&1 &
    echo $! >"$dir/pids/history"
    for port in "${gateway_ports[@]}" "$presence_port" "$history_port"; do
        for _ in $(seq 100); do
            curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
    status
    echo "logs: $dir/logs   admin key: $admin_key"
    echo "connect: ws://127.0.0.1:8081/ws?name=alice  ws://127.0.0.1:8082/ws?name=bob  ws://127.0.0.1:8083/ws?name=carol"
}

down() {
    for pidfile in "$dir"/pids/gateway-* "$dir"/pids/presence "$dir"/pids/history; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pidfile in "$dir"/pids/gateway-* "$dir"/pids/presence "$dir"/pids/history; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        for _ in $(seq 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
    if [ -f "$dir/pids/redis" ]; then
        redis-cli -p "$redis_port" shutdown >/dev/null 2>&1 || kill "$(cat "$dir/pids/redis")" 2>/dev/null || true
        rm -f "$dir/pids/redis"
    fi
    echo "stopped (logs kept in $dir/logs)"
}

status() {
    printf 'redis  127.0.0.1:%s  %s\n' "$redis_port" "$(redis-cli -p "$redis_port" ping 2>/dev/null || echo down)"
    local i=1
    for port in "${gateway_ports[@]}"; do
        ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null || true)
        printf 'gw-%s   127.0.0.1:%s  readyz %s\n' "$i" "$port" "${ready:-down}"
        i=$((i + 1))
    done
    ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$presence_port/readyz" 2>/dev/null || true)
    printf 'presence 127.0.0.1:%s  readyz %s\n' "$presence_port" "${ready:-down}"
    ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$history_port/readyz" 2>/dev/null || true)
    printf 'history  127.0.0.1:%s  readyz %s\n' "$history_port" "${ready:-down}"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

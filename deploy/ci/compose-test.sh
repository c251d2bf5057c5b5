#!/usr/bin/env bash
# Brings docker-compose.yml up on a real Docker engine and drives it from
# outside: two clients chat through the load balancer while on different
# gateways, then one gateway container is killed mid-session and its client
# reconnects through the load balancer and resumes what it missed
# (services/gateway/tests/api/stack.rs). The chat page, in headless Chromium,
# signs in with a token and chats through the load balancer
# (services/gateway/web/test/stack.test.js).
#
# Installs what it needs when run as root (docker.io, docker-compose,
# debootstrap) and starts dockerd if none answers. Images come from
# deploy/ci/docker-images.sh (no registry here; it says why).
set -euo pipefail
cd "$(dirname "$0")/../.."

project=${CHAT_STACK_PROJECT:-chatci}
log() { echo "compose-test: $*" >&2; }

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        log "missing: ${missing[*]} (install them, or run as root)"
        exit 1
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    (dockerd >/tmp/chat-dockerd.log 2>&1 &)
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -20 /tmp/chat-dockerd.log >&2; exit 1; }
fi

cargo build --locked -p gateway -p presence -p history
eval "$(deploy/ci/docker-images.sh)"
docker-compose -p "$project" config -q

cleanup() {
    docker-compose -p "$project" logs --no-color --tail 40 >"/tmp/$project-compose.log" 2>&1 || true
    docker-compose -p "$project" down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT
docker-compose -p "$project" down -v --remove-orphans >/dev/null 2>&1 || true
docker-compose -p "$project" up -d --no-build

log "waiting for every service to be healthy"
deadline=$((SECONDS + 120))
while :; do
    unhealthy=0
    for id in $(docker-compose -p "$project" ps -q); do
        state=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}healthy{{end}}' "$id")
        [ "$state" = "running healthy" ] || unhealthy=$((unhealthy + 1))
    done
    lb=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/readyz || true)
    [ "$unhealthy" = 0 ] && [ "$lb" = 200 ] && break
    if [ $SECONDS -gt $deadline ]; then
        docker-compose -p "$project" ps >&2
        docker-compose -p "$project" logs --no-color --tail 30 >&2
        exit 1
    fi
    sleep 2
done
docker-compose -p "$project" ps

log "the chat page through the load balancer, in headless Chromium"
deploy/local/ensure-web-test-tools.sh
CHAT_STACK_HTTP=http://127.0.0.1:8080 \
CHAT_STACK_SECRET=${CHAT_DEV_SECRET:-dev-secret-change-me} \
    npm run --prefix services/gateway/web test:stack

CHAT_STACK_URL=ws://127.0.0.1:8080/ws \
CHAT_STACK_SECRET=${CHAT_DEV_SECRET:-dev-secret-change-me} \
CHAT_STACK_PROJECT=$project \
    cargo test --locked -p gateway --test api stack:: -- --ignored

log "a development token from the image, as the README says"
token=$(docker-compose -p "$project" run --rm -T gateway-1 gateway token --sub alice)
[ "$(printf '%s' "$token" | tr -cd '.' | wc -c)" = 2 ] || { log "no token: $token"; exit 1; }
log "ok"

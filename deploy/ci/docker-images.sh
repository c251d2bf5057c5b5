#!/usr/bin/env bash
# Builds, without any image registry, the images docker-compose.yml needs,
# under local names, and prints the environment that points the compose file
# at them.
#
# Why: CI machines reach Debian's package mirror and crates.io but no image
# registry, so `rust`, `debian`, `redis`, `haproxy` and `prom/prometheus`
# cannot be pulled, and HTTPS to crates.io fails inside a container. So:
# - a Debian base image is made with debootstrap and imported;
# - redis, haproxy and Prometheus images are that base plus Debian's packages;
# - the chat image is that base plus the binaries built on the host
#   (`cargo build`), instead of the Dockerfile's from-source build stage.
# The user-facing Dockerfile and docker-compose.yml stay standard; only the
# image names change (CHAT_IMAGE, REDIS_IMAGE, HAPROXY_IMAGE,
# PROMETHEUS_IMAGE), and `docker-compose up --no-build` uses these.
#
#   eval "$(deploy/ci/docker-images.sh)"   # needs root, dockerd running, binaries in target/debug
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=${CHAT_BINARIES:-target/debug}
base=chat-ci/debian:bookworm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "docker-images: $*" >&2; }

if ! docker image inspect "$base" >/dev/null 2>&1; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    log "debootstrap bookworm from $mirror (about a minute)"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    tar -C "$work/rootfs" -c . | docker import - "$base" >/dev/null
    rm -rf "$work/rootfs"
fi

build() { # name, Dockerfile text, context
    log "building $1"
    printf '%s\n' "$2" | docker build -q -t "$1" -f - "$3" >/dev/null
}

build chat-ci/redis:7 "FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*
WORKDIR /data
CMD [\"redis-server\", \"--protected-mode\", \"no\"]" "$work"

build chat-ci/haproxy:2.6 "FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends haproxy && rm -rf /var/lib/apt/lists/*
CMD [\"haproxy\", \"-W\", \"-db\", \"-f\", \"/usr/local/etc/haproxy/haproxy.cfg\"]" "$work"

build chat-ci/prometheus:2 "FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends prometheus && rm -rf /var/lib/apt/lists/*
ENTRYPOINT [\"/usr/bin/prometheus\"]" "$work"

# The Dockerfile's runtime stage, with the host's binaries.
mkdir -p "$work/chat"
cp "$profile/gateway" "$profile/presence" "$profile/history" deploy/docker/healthcheck "$work/chat/"
build chat-ci/chat:latest "FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \\
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin chat
COPY gateway presence history healthcheck /usr/local/bin/
USER 10001:10001
ENV CHAT_GATEWAY__LISTEN=0.0.0.0:8080 CHAT_PRESENCE_SERVICE__LISTEN=0.0.0.0:8090 CHAT_HISTORY_SERVICE__LISTEN=0.0.0.0:8091 CHAT_LOG__FORMAT=json
CMD [\"gateway\"]" "$work/chat"

echo "export CHAT_IMAGE=chat-ci/chat:latest REDIS_IMAGE=chat-ci/redis:7 HAPROXY_IMAGE=chat-ci/haproxy:2.6 PROMETHEUS_IMAGE=chat-ci/prometheus:2"

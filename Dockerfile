# One image with the three binaries of the cluster: gateway, presence, history.
#
#   docker build -t chat .
#   docker run --rm -p 8080:8080 chat                                           # a gateway, embedded engine
#   docker run --rm chat presence  |  docker run --rm chat history              # the other services
#
# Build stage: the official Rust image, compiling from source with the lock file.
ARG RUST_IMAGE=rust:1.85-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY shared shared
COPY crates crates
COPY services services
RUN cargo build --release --locked -p gateway -p presence -p history \
 && mkdir -p /out \
 && cp target/release/gateway target/release/presence target/release/history /out/

# Runtime stage: a slim Debian, no compiler, no shell tools beyond bash, a
# non-root user. Each service listens on 0.0.0.0 inside the container, on
# its own port (one environment holds all three addresses).
FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin chat
COPY --from=build /out/gateway /out/presence /out/history /usr/local/bin/
COPY deploy/docker/healthcheck /usr/local/bin/healthcheck
# The directory store's default place in a container (a volume mounted
# here takes this owner on first use).
RUN mkdir -p /data/files && chown 10001:10001 /data/files
USER 10001:10001
ENV CHAT_GATEWAY__LISTEN=0.0.0.0:8080 \
    CHAT_PRESENCE_SERVICE__LISTEN=0.0.0.0:8090 \
    CHAT_HISTORY_SERVICE__LISTEN=0.0.0.0:8091 \
    CHAT_LOG__FORMAT=json
EXPOSE 8080
# `healthcheck PORT [PATH]`: GET http://127.0.0.1:PORT/PATH answers 200.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["healthcheck", "8080", "/readyz"]
ENTRYPOINT []
CMD ["gateway"]

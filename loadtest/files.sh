#!/usr/bin/env bash
# Upload and download throughput of a 10 MiB file through one gateway, and
# its memory while 20 such uploads stream at once (docs/benchmarks.md).
#
#   loadtest/files.sh directory|s3 [UPLOADS_AT_ONCE]
#
# One release gateway on the embedded engine, the files in a directory or in
# a real S3-compatible server (s3s-fs, from deploy/local/ensure-s3s.sh) on
# loopback. Each figure is the median of 5 transfers with curl; RSS is
# sampled every 20 ms while UPLOADS_AT_ONCE (default 20) uploads run.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?directory or s3}
at_once=${2:-20}
bin=${BENCH_BIN_DIR:-target/release}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=8097
env=(CHAT_GATEWAY__LISTEN=127.0.0.1:$port CHAT_LOG__LEVEL=warn CHAT_GATEWAY__FILES__DIRECTORY="$work/files"
     CHAT_GATEWAY__FILES__MAX_CONCURRENT_UPLOADS=64)
if [ "$store" = s3 ]; then
    deploy/local/ensure-s3s.sh
    mkdir -p "$work/s3/bench"
    target/tools/bin/s3s-fs --host 127.0.0.1 --port 8098 --access-key bench --secret-key bench-secret-0123 "$work/s3" \
        >"$work/s3.log" 2>&1 &
    pids+=($!)
    env+=(CHAT_GATEWAY__FILES__STORE=s3 CHAT_GATEWAY__FILES__S3__ENDPOINT=http://127.0.0.1:8098
          CHAT_GATEWAY__FILES__S3__BUCKET=bench CHAT_GATEWAY__FILES__S3__ALLOW_HTTP=true
          AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-0123)
fi
env "${env[@]}" "$bin/gateway" >"$work/gw.log" 2>&1 &
gw=$!
pids+=($gw)
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.1; done

head -c $((10 * 1024 * 1024)) /dev/urandom >"$work/file.bin"
up() { # user → seconds; prints the file's url to $work/url
    curl -sf -o "$work/up.json" -w '%{time_total}' -H 'content-type: application/octet-stream' \
        --data-binary @"$work/file.bin" "http://127.0.0.1:$port/v1/files?room=bench&filename=file.bin&user=$1"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
mbps() { awk -v s="$1" 'BEGIN {printf "%.0f", 10 / s}'; }

up warm >/dev/null
ups=$(for i in 1 2 3 4 5; do up "u$i"; echo; done | median)
url=$(sed 's/.*"url":"\([^"]*\)".*/\1/' "$work/up.json")
downs=$(for i in 1 2 3 4 5; do
    curl -sf -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port$url?user=u5"
done | median)

rss() { awk '/VmRSS/ {print $2}' "/proc/$gw/status"; }
base=$(rss)
peak=$base
for i in $(seq 1 "$at_once"); do up "c$i" >/dev/null & done
uploads=$(jobs -p | tail -n "$at_once")
while kill -0 $uploads 2>/dev/null; do
    now=$(rss)
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.02
done
wait $uploads 2>/dev/null || true
stored=$(grep -c . <<<"$(ls "$work/files/files/bench" 2>/dev/null; ls "$work/s3/bench/files/bench" 2>/dev/null)" || true)

echo "store=$store upload_10MiB: $(mbps "$ups") MB/s (median ${ups}s)  download_10MiB: $(mbps "$downs") MB/s (median ${downs}s)"
echo "store=$store rss before ${base} KiB, peak during $at_once uploads at once ${peak} KiB: +$(( (peak - base) / 1024 )) MiB for $(( at_once * 10 )) MiB of files (files stored: $stored)"

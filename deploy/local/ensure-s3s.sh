#!/usr/bin/env bash
# Makes sure the S3-compatible server the tests start (s3s-fs, from
# crates.io) is built: into target/tools/bin, once. The tests find it there
# through S3S_FS (the Makefile sets it), or on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=target/tools/bin/s3s-fs
if [ -x "$bin" ]; then
    exit 0
fi
if command -v s3s-fs >/dev/null 2>&1; then
    mkdir -p target/tools/bin
    ln -sf "$(command -v s3s-fs)" "$bin"
    exit 0
fi
# 0.14.1 is the newest release that builds with Rust 1.92 to 1.95 (0.17 needs 1.96).
echo "building s3s-fs 0.14.1 into target/tools (about two minutes, once)" >&2
cargo install s3s-fs@0.14.1 --features binary --locked --root target/tools --quiet

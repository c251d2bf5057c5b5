#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (Redis 7) are on PATH: the tests start
# their own servers on free ports. Installs them with apt-get when run as root
# on Debian or Ubuntu (as CI does); otherwise says what to install.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    exit 0
fi
cat >&2 <<'MSG'
The tests need redis-server and redis-cli (Redis 7 or newer) on PATH.
Install them, for example:
  Debian/Ubuntu: sudo apt-get install -y redis-server
  macOS:         brew install redis
then run `make test` again.
MSG
exit 1

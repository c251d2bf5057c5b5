#!/usr/bin/env bash
# Makes sure the browser and client-library tests can run: Node.js 20 or
# newer with npm, headless Chromium (Debian's package; the tests drive it with
# playwright-core, never a downloaded browser), a colour emoji font (for
# reactions) and haproxy (the local load balancer in front of two gateways). Installs Chromium and haproxy with
# apt-get when run as root on Debian or Ubuntu (as CI does); otherwise says
# what to install. Then installs the tests' npm packages from the lock file
# when they are missing or older than it.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
# Emoji reactions render as boxes without a colour emoji font.
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || ! command -v apt-get >/dev/null 2>&1 \
    || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${missing[*]} with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        cat >&2 <<MSG
The browser tests need: ${missing[*]}
  Debian/Ubuntu: sudo apt-get install -y ${missing[*]}
  elsewhere: install Chromium and haproxy, and set CHROMIUM=/path/to/chromium
then run \`make test\` again.
MSG
        exit 1
    fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
    echo "The client and browser tests need Node.js 20 or newer with npm (https://nodejs.org)." >&2
    exit 1
fi
web=services/gateway/web
if [ ! -d "$web/node_modules/playwright-core" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
fi

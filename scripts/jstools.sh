#!/usr/bin/env bash
# Node.js tools of the chart page (ESLint, and the MessagePack decoder its tests use),
# pinned in package-lock.json and installed into node_modules/ with `npm ci` when missing
# or older than the lock file. Node.js itself comes from apt-get when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "jstools: installing nodejs and npm"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "jstools: Node.js and npm are needed (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

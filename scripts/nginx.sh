#!/usr/bin/env bash
# nginx for the benchmarks' proxy_cache baseline: Debian's package, installed with apt-get
# when missing and when running as root. Otherwise those rows are skipped with a note.
set -u
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "nginx: installing nginx-light"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
    || echo "nginx: apt-get failed; the benchmarks skip the nginx baseline"
  # the package starts a system nginx on port 80; the benchmarks start their own
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
  if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
else
  echo "nginx: not installed (needs root: apt-get install nginx-light); the benchmarks skip the nginx baseline"
fi
exit 0

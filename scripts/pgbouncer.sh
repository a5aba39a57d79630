#!/usr/bin/env bash
# PgBouncer for the connection-pooling test (tests/e2e/test_replica.py starts its own):
# installed with apt-get when missing and when running as root; otherwise that test
# skips (or, with CI=true, fails).
set -u
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "services: installing pgbouncer"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; } \
    || echo "services: apt-get failed; the PgBouncer test will skip"
else
  echo "services: pgbouncer not installed (needs root: apt-get install pgbouncer); its test will skip"
fi
exit 0

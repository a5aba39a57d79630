#!/usr/bin/env bash
# wrk for the benchmarks' load scenarios: Debian's package, installed with apt-get when
# missing and when running as root. Otherwise those scenarios load with the Python client
# and the report says so.
set -u
if command -v wrk >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "wrk: installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null \
    || echo "wrk: apt-get failed; the load scenarios use the Python client"
else
  echo "wrk: not installed (needs root: apt-get install wrk); the load scenarios use the Python client"
fi
exit 0

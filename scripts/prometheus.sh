#!/usr/bin/env bash
# promtool (Debian package prometheus) for the tests that drive the Prometheus query API
# with a client nobody here wrote: installed with apt-get when missing and when running
# as root. Otherwise those tests skip (or, with CI=true, fail).
set -u
if command -v promtool >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "prometheus: installing promtool (Debian package prometheus)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || echo "prometheus: apt-get failed; the promtool tests will skip"
else
  echo "prometheus: promtool not installed (needs root: apt-get install prometheus); the promtool tests will skip"
fi
exit 0

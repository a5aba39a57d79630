#!/usr/bin/env bash
# Headless Chromium for the chart-page tests: installed with apt-get when missing and
# when running as root. Otherwise those tests skip (or, with CI=true, fail).
set -u
if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromedriver ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing chromium and chromium-driver"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
    || echo "browser: apt-get failed; the chart-page tests will skip"
else
  echo "browser: chromium/chromedriver not installed (needs root: apt-get install chromium chromium-driver); the chart-page tests will skip"
fi
exit 0

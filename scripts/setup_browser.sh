#!/usr/bin/env bash
# Debian's chromium for the browser test (Playwright drives it; no browser download). Skipped when present.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup] chromium not found and cannot be installed here (needs root and apt-get); the browser test will skip"
  exit 0
fi
echo "[setup] installing Debian's chromium for the browser test"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the dashboard page's browser tests (Debian packages).
# Installs them when missing (as root, as on CI); says so and carries on otherwise, and the
# browser tests then fail with that reason.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo ">> chromium/chromedriver missing and cannot be installed here (not root or no apt-get)" >&2
  exit 0
fi
echo ">> installing chromium and chromium-driver (Debian packages) for the browser tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null

#!/bin/sh
# Installs Debian's chromium for the browser test (test/browser.test.ts), idempotently.
# Debian's package ships SwiftShader (/usr/lib/chromium/vk_swiftshader_icd.json), which gives
# headless Chromium a WebGPU adapter without a GPU. Run as root (CI runs it before `npm test`).
set -eu
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium.sh: run as root (apt-get install -y chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version

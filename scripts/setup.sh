#!/usr/bin/env bash
# One-time machine set-up after `npm ci`: builds the embedded FerretDB test
# server (unless cached for the current sources) and installs Debian's
# Chromium for the browser test when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

node --import tsx test/mongo-server.ts build

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "Installing Debian's chromium and chromium-driver for the browser test..."
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi

#!/usr/bin/env bash
# One-time machine set-up after `npm ci`: builds the embedded FerretDB test
# server (unless cached for the current sources), and installs Debian's
# PostgreSQL (for the PostgreSQL backend's tests), Chromium (for the
# browser test) and curl (for the README's curl lines, which the package
# check runs) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

node --import tsx servers/mongo.ts build

packages=()
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || packages+=(chromium chromium-driver)
command -v curl > /dev/null || packages+=(curl)
if [ -z "${PG_URI:-}" ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null; then
  packages+=(postgresql)
fi
if [ ${#packages[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${packages[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Node 20: system packages, npm packages, native build.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in libopenblas-dev libdnnl-dev openmpi-bin libopenmpi-dev python3-numpy python3-pil python3-skimage chromium; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# npm ci installs dependencies and runs the "install" script (node-gyp rebuild of native/).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/mope_native.node ]; then
  npm ci --no-audit --no-fund >&2
fi

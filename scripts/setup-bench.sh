#!/usr/bin/env bash
# Debian packages of the PyTorch twins that `npm run bench` runs beside ours (src/bench/torch_*.py) and of the
# golden-making scripts in tools/: python3-torch (Debian's 1.13, oneDNN inside), python3-numpy, python3-pil and
# python3-skimage. `npm test` never needs them (its goldens are committed). Idempotent: installs only what is
# missing; uses sudo when not run as root.
set -euo pipefail
need=()
for p in python3-torch python3-numpy python3-pil python3-skimage; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "setup-bench: installing Debian packages: ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2

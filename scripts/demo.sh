#!/usr/bin/env bash
# The README's main command (`npm run demo`): set-up, then `mope-clip demo` — the shipped small teacher compressed to
# half width per tower with MoPE, magnitude, Taylor and random importance, distilled, one table. Extra arguments go to
# the demo (e.g. `npm run demo -- --retrain-teacher`, `--out DIR`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/mope-clip.mjs demo "$@"

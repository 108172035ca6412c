#!/usr/bin/env bash
# The README's main command (`npm run demo`): set-up, then `mope-clip demo` — a small study: the shipped small teacher
# compressed (both towers) to half width and to half width + half depth with MoPE, magnitude, random and scratch,
# distilled with one budget, over several seeds; one table of mean ± std. Extra arguments go to the demo
# (e.g. `npm run demo -- --seeds 2`, `--retrain-teacher`, `--out DIR`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/mope-clip.mjs demo "$@"

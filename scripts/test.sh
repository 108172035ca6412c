#!/usr/bin/env bash
# The test command (README, .ci/run): set-up, type check, then every test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc --noEmit -p .
exec node --import tsx --test --test-concurrency=2 test/*.test.ts

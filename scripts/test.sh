#!/usr/bin/env bash
# The test command (README, .ci/run): set-up, type check, style check, then every test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc --noEmit -p .
bash scripts/lint.sh
exec node --import tsx --test --test-concurrency=2 test/*.test.ts

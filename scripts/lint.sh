#!/usr/bin/env bash
# Style check (part of `npm test`): ESLint and Prettier for TypeScript/JavaScript, clang-format for native/.
# `npm run format` (this script with --fix) rewrites the files instead of checking them.
set -euo pipefail
cd "$(dirname "$0")/.."
JS=("src/**/*.ts" "test/**/*.ts" "web/*.js" "scripts/*.mjs" "*.js")
C=(native/*.c native/*.h)
if [ "${1:-}" = "--fix" ]; then
  npx prettier --log-level warn --write "${JS[@]}"
  npx eslint --fix src test web scripts/*.mjs
  clang-format -i "${C[@]}"
else
  npx prettier --log-level warn --check "${JS[@]}"
  npx eslint --max-warnings 0 src test web scripts/*.mjs
  clang-format --dry-run --Werror "${C[@]}"
fi

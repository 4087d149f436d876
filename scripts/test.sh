#!/usr/bin/env bash
# Runs every test file (node:test through tsx). Node 20 does not glob, so the files are listed here.
# Usage: scripts/test.sh [PATH_FILTER...]   e.g. scripts/test.sh src/store test/integration/build
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  mapfile -t files < <(for p in "$@"; do if [ -f "$p" ]; then echo "$p"; else find "$p" -name '*.test.ts'; fi; done | sort -u)
else
  mapfile -t files < <(find src test -name '*.test.ts' | sort)
  # tsx runs the tests without type-checking them: the whole suite starts by checking the sources and the tests
  node_modules/.bin/tsc -p tsconfig.test.json
fi
[ ${#files[@]} -gt 0 ] || { echo "no test files found" >&2; exit 1; }
exec node --import tsx --test --test-concurrency="${KILN_TEST_CONCURRENCY:-2}" --test-reporter=spec "${files[@]}"

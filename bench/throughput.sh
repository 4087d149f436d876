#!/usr/bin/env bash
# kiln serve --database throughput: N small builds with 1 and 2 workers, and a template rebuilt on a fresh worker
# from the registry cache vs cold (what and why: bench/throughput.ts). Usage: bench/throughput.sh [BUILDS]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/index.js ] || npm run build >/dev/null
exec node --import tsx bench/throughput.ts --builds "${1:-8}"

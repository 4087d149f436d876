#!/usr/bin/env bash
# Multi-stage parallelism: cold build of bench/scenarios/multistage (three independent ~3 s stages, a final stage
# copying from all three) against the slowest stage built alone (--target), each in a cold state directory.
# Target (issue 3): full build ≤ 1.2 × the slowest stage's own time on 2 cores.
# Usage: bench/multistage.sh [RUNS]   (needs root and runc; builds dist/ first if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
[ -f dist/cli/index.js ] || npx tsc -p . >/dev/null
kiln="$PWD/bin/kiln"
work="$(mktemp -d /tmp/kiln-bench-multistage.XXXXXX)"
cleanup() {
  grep -o " $work[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ctx="$work/ctx"; mkdir -p "$ctx"; cp bench/scenarios/multistage/Dockerfile "$ctx/"
bash scripts/make-busybox-rootfs.sh "$work/busybox.tar"
fresh_root() { local r; r="$(mktemp -d "$work/root.XXXXXX")"; "$kiln" import --root "$r" "$work/busybox.tar" busybox:latest >/dev/null; echo "$r"; }
ms() { date +%s%3N; }
# wall time of one cold build (process start to exit), in ms, left in $took
took=0
timed_build() {
  local root t0 t1
  root="$(fresh_root)"
  t0="$(ms)"
  if ! "$kiln" build --root "$root" --progress=quiet "$@" "$ctx" >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
  fi
  t1="$(ms)"
  took=$((t1 - t0))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

stage_times=(); full_times=()
for i in $(seq "$runs"); do
  # the slowest stage alone: the three are alike, so time each and keep the slowest
  slowest=0
  for s in one two three; do timed_build --target "$s"; [ "$took" -gt "$slowest" ] && slowest="$took"; done
  stage_times+=("$slowest")
  timed_build
  full_times+=("$took")
  echo "run $i: slowest stage alone ${slowest} ms, full build ${full_times[-1]} ms"
done
stage="$(printf '%s\n' "${stage_times[@]}" | median)"
full="$(printf '%s\n' "${full_times[@]}" | median)"
ratio="$(awk -v a="$full" -v b="$stage" 'BEGIN {printf "%.2f", a / b}')"
echo "slowest stage alone (median of $runs): ${stage} ms"
echo "full cold build (median of $runs):     ${full} ms"
echo "ratio: ${ratio}x (target ≤ 1.20x)"
awk -v r="$ratio" 'BEGIN {exit !(r <= 1.2)}' || { echo "FAIL: the stages did not run in parallel well enough" >&2; exit 1; }

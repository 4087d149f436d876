#!/usr/bin/env bash
# Cache import from a registry on loopback vs. no cache, for the `layers` scenario (three ~1.4 s RUNs writing 4 MB
# each, a COPY, a final RUN), each time in a cold state directory.
#   1. a warm state dir builds once and exports its cache: --cache-to type=registry,ref=…,mode=max
#   2. cold state dir, no cache                      → every step runs
#   3. cold state dir, --cache-from the registry     → every step cached; time = import (fetch + verify) + assembly
# Usage: bench/cache-import.sh [RUNS]   (needs root, runc, docker-registry; builds dist/ first if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
[ -f dist/cli/index.js ] || npx tsc -p . >/dev/null
kiln="$PWD/bin/kiln"
work="$(mktemp -d /tmp/kiln-bench-cache-import.XXXXXX)"
reg_pid=""
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
  grep -o " $work[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# the scenario: Dockerfile from bench/scenarios/layers, src/ generated (deterministic)
ctx="$work/ctx"; mkdir -p "$ctx/src"; cp bench/scenarios/layers/Dockerfile "$ctx/"
for tag in a b c; do for i in $(seq 0 199); do echo "$tag line $i lorem ipsum dolor sit amet"; done > "$ctx/src/$tag.txt"; done
bash scripts/make-busybox-rootfs.sh "$work/busybox.tar"

# a registry on a free loopback port
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" & reg_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref="127.0.0.1:$port/bench/layers:cache"

fresh_root() { local r; r="$(mktemp -d "$work/root.XXXXXX")"; "$kiln" import --root "$r" "$work/busybox.tar" busybox:latest >/dev/null; echo "$r"; }
ms() { date +%s%3N; }
build_ms() { # root extra-args... → prints elapsed ms; fails loudly if the build fails
  local root="$1"; shift; local t0 t1
  t0=$(ms); "$kiln" build --root "$root" --progress=plain --metadata-file "$root/meta.json" "$@" "$ctx" >"$root/build.log" 2>&1 || { cat "$root/build.log" >&2; exit 1; }
  t1=$(ms); echo $((t1 - t0))
}
cached_steps() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["kiln.steps"]; print(str(sum(x["cached"] for x in s)) + "/" + str(len(s)))' "$1/meta.json"; }

warm="$(fresh_root)"
t=$(build_ms "$warm" --cache-to "type=registry,ref=$ref,mode=max")
echo "warm build + cache export to $ref: ${t} ms ($(grep -o 'exported cache.*' "$warm/build.log"))"

printf '%-34s %10s %10s\n' "cold state dir" "ms" "cached"
for i in $(seq "$runs"); do
  r="$(fresh_root)"; t=$(build_ms "$r"); printf '%-34s %10s %10s\n' "no cache (run $i)" "$t" "$(cached_steps "$r")"; nocache+=("$t")
  r="$(fresh_root)"; t=$(build_ms "$r" --cache-from "type=registry,ref=$ref"); printf '%-34s %10s %10s\n' "--cache-from registry (run $i)" "$t" "$(cached_steps "$r")"; imported+=("$t")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
a=$(median "${nocache[@]}"); b=$(median "${imported[@]}")
echo "median: no cache ${a} ms, cache import ${b} ms ($(python3 -c "print(f'{$a/$b:.1f}x')") faster)"

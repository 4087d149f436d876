#!/usr/bin/env bash
# The shared per-step cache (--cache-registry) on a fresh worker: time to rebuild a template in an empty state root
# from the registry cache vs. a cold build, for the `layers` scenario (three ~1.4 s RUNs writing 4 MB each, a COPY, a
# final RUN) and a small TypeScript template (.ts).
#   1. a warm root builds once with --cache-registry REF       → every step pushed, the base too
#   2. cold root (busybox imported), no cache                  → every step runs
#   3. EMPTY root (nothing imported), --cache-registry REF     → base + every step from the registry, no RUN
# Usage: bench/remote-cache.sh [RUNS]   (needs root, runc, docker-registry; builds dist/ first if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
[ -f dist/cli/index.js ] || npm run build >/dev/null
kiln="$PWD/bin/kiln"
work="$(mktemp -d /tmp/kiln-bench-remote-cache.XXXXXX)"
reg_pid=""
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
  grep -o " $work[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ctx="$work/ctx"; mkdir -p "$ctx/src"; cp bench/scenarios/layers/Dockerfile "$ctx/"
for tag in a b c; do for i in $(seq 0 199); do echo "$tag line $i lorem ipsum dolor sit amet"; done > "$ctx/src/$tag.txt"; done
# a template: the same kind of steps through the SDK, with a cache mount
tpl="$work/tpl"; mkdir -p "$tpl"
cat > "$tpl/template.ts" <<TS
import { Template } from '$PWD/dist/api/index.js';
export default Template()
  .fromImage('busybox')
  .runCmd('dd if=/dev/urandom of=/blob1 bs=1M count=4 2>/dev/null && sleep 1')
  .runCmd('mkdir -p /app && seq 1 20000 > /app/numbers && sleep 1')
  .setEnv('MODE', 'bench')
  .runCmd('sha256sum /blob1 /app/numbers > /app/sums');
TS
bash scripts/make-busybox-rootfs.sh "$work/busybox.tar"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" & reg_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref="127.0.0.1:$port/bench/cache"

cold_root() { local r; r="$(mktemp -d "$work/root.XXXXXX")"; "$kiln" import --root "$r" "$work/busybox.tar" busybox:latest >/dev/null; echo "$r"; }
empty_root() { mktemp -d "$work/root.XXXXXX"; }
ms() { date +%s%3N; }
build_ms() { # root input extra-args... → prints elapsed ms; fails loudly if the build fails
  local root="$1" input="$2"; shift 2; local t0 t1
  t0=$(ms); "$kiln" build --root "$root" --progress=plain --metadata-file "$root/meta.json" "$@" "$input" >"$root/build.log" 2>&1 || { cat "$root/build.log" >&2; exit 1; }
  t1=$(ms); echo $((t1 - t0))
}
steps() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["kiln.steps"]; print("%d/%d cached, %d remote" % (sum(x["cached"] for x in s), len(s), sum(bool(x.get("remote")) for x in s)))' "$1/meta.json"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for name in layers template; do
  input="$ctx"; [ "$name" = template ] && input="$tpl/template.ts"
  warm="$(cold_root)"
  t=$(build_ms "$warm" "$input" --cache-registry "$ref")
  echo "$name: warm build pushing to $ref: ${t} ms ($(grep -o 'shared cache .*' "$warm/build.log"))"
  cold=(); shared=()
  printf '  %-44s %8s  %s\n' "fresh root" "ms" "steps"
  for i in $(seq "$runs"); do
    r="$(cold_root)"; t=$(build_ms "$r" "$input"); printf '  %-44s %8s  %s\n' "cold build, no cache (run $i)" "$t" "$(steps "$r")"; cold+=("$t")
    r="$(empty_root)"; t=$(build_ms "$r" "$input" --cache-registry "$ref"); printf '  %-44s %8s  %s\n' "empty root, --cache-registry (run $i)" "$t" "$(steps "$r")"; shared+=("$t")
  done
  a=$(median "${cold[@]}"); b=$(median "${shared[@]}")
  echo "  median: cold ${a} ms, from the registry cache ${b} ms ($(python3 -c "print(f'{$a/$b:.1f}x')") faster)"
done

#!/usr/bin/env bash
# kiln alone on the lab's bigcontext scenario (20,000 small files + 10 x 5 MiB, COPY . /app, RUN find):
# cold, nochange, touch-one, edit-one, edit-two, each with wall and CPU (user+sys) time and the KILN_TRACE lines.
#   bench/bigcontext-rebuild.sh [OUT_DIR]     (needs the lab at $LAB_DIR, default /tmp/lab: bench/lab.sh sets it up)
# Targets (issue 2, ratio to BuildKit on the same machine): edit-one <= 0.5x, cold <= 1.0x, nochange/touch <= 0.5x.
# The machine may be shared: compare CPU time as well as wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
K="$(pwd)/bin/kiln"
W="${1:-/tmp/kiln-bigcontext-bench}"
LAB="${LAB_DIR:-/tmp/lab}"
[ -d "$LAB/scenarios/bigcontext" ] || { echo "run bench/lab.sh -s bigcontext -b kiln-inproc once first (LAB_DIR=$LAB)" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W/root"
cp -a "$LAB/scenarios/bigcontext" "$W/ctx"
"$K" import --root "$W/root" "$LAB/bases/busybox-rootfs.tar" lab/busybox:latest >/dev/null
step() {
  local name=$1 edit=$2
  (cd "$W/ctx" && eval "$edit")
  sync
  /usr/bin/time -f "$name wall=%es cpu(user+sys)=%U+%S" env KILN_TRACE=1 "$K" build --root "$W/root" --progress=plain -t bench/bigcontext:latest "$W/ctx" >"$W/$name.log" 2>&1
  tail -1 "$W/$name.log"
  grep '^\[trace\]' "$W/$name.log" | sed 's/^/    /' || true
}
step cold :
step nochange :
step touch-one 'touch small/d100/f050.txt'
step edit-one 'echo changed >> small/d100/f050.txt'
step edit-two 'echo changed >> small/d101/f051.txt'

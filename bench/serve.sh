#!/usr/bin/env bash
# kiln build in-process vs through `kiln serve` (remote: --host, with content-addressed uploads; local hand-off:
# plain `kiln build` handed to ROOT/kiln.sock) on the lab's layers and bigcontext scenarios: cold, unchanged rebuild
# and a one-file-changed rebuild, with wall time and the bytes uploaded. Not a test: numbers go in the README.
#   bench/serve.sh [WORK_DIR]          (default /tmp/kiln-serve-bench; needs root, runc; kiln built)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
K="$REPO/bin/kiln"
W="${1:-/tmp/kiln-serve-bench}"
SCENARIOS="${SCENARIOS:-layers bigcontext}"
rm -rf "$W"; mkdir -p "$W"
cp -a "$REPO/../shared/lab" "$W/lab"; chmod -R u+w "$W/lab"   # the lab writes beside itself: a private copy
for s in $SCENARIOS; do "$W/lab/make-scenarios.sh" "$s" >/dev/null; done
bash "$REPO/scripts/make-busybox-rootfs.sh" "$W/busybox.tar" >/dev/null
for r in inproc serve; do "$K" import --root "$W/root-$r" "$W/busybox.tar" lab/busybox:latest >/dev/null; done
"$K" --root "$W/root-serve" admin team create bench >/dev/null
KEY=$("$K" --root "$W/root-serve" admin key create --team bench 2>/dev/null)
"$K" --root "$W/root-serve" serve --listen 127.0.0.1:0 >"$W/serve.log" 2>&1 &
SERVE_PID=$!
trap 'kill -TERM $SERVE_PID 2>/dev/null || true; wait $SERVE_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '"msg":"listening"' "$W/serve.log" && break; sleep 0.1; done
URL=$(grep -o '"url":"[^"]*"' "$W/serve.log" | head -1 | cut -d'"' -f4)
echo "kiln serve at $URL (root $W/root-serve)"
printf '%-11s %-10s %-12s %9s %s\n' scenario step mode wall uploaded
run() { # scenario step mode ctx
  local s=$1 step=$2 mode=$3 ctx=$4 log="$W/$1-$2-$3.log" t0 t1 up=""
  t0=$(date +%s.%N)
  case $mode in
    in-process) "$K" --root "$W/root-inproc" build --no-daemon --progress=plain -t "bench/$s" "$ctx" >"$log" 2>&1 ;;
    hand-off)   "$K" --root "$W/root-serve" build --progress=plain -t "bench/$s" "$ctx" >"$log" 2>&1 ;;
    remote)     KILN_API_KEY=$KEY "$K" --root "$W/root-client" --host "$URL" build --progress=plain -t "bench-$s" "$ctx" >"$log" 2>&1 ;;
  esac
  t1=$(date +%s.%N)
  [ "$mode" = remote ] && up=$(grep -o 'uploaded [0-9]* file(s), [^ ]*' "$log" | sed 's/uploaded //')
  [ "$mode" = hand-off ] && ! grep -q 'handing the build to kiln serve' "$log" && up="(not handed off!)"
  printf '%-11s %-10s %-12s %8.2fs %s\n' "$s" "$step" "$mode" "$(echo "$t1 - $t0" | bc)" "$up"
}
for s in $SCENARIOS; do
  for mode in in-process hand-off remote; do
    ctx="$W/ctx-$s-$mode"; rm -rf "$ctx"; cp -a "$W/lab/scenarios/$s" "$ctx"
    run "$s" cold "$mode" "$ctx"
    run "$s" nochange "$mode" "$ctx"
    run "$s" nochange2 "$mode" "$ctx"
    case $s in
      layers) (cd "$ctx" && echo changed >> src/b.txt) ;;
      *) (cd "$ctx" && echo changed >> small/d100/f050.txt) ;;
    esac
    run "$s" edit-one "$mode" "$ctx"
  done
done

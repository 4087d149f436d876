#!/usr/bin/env bash
# Side-by-side cache benchmark: kiln vs BuildKit (dockerd from Debian's docker.io) on ../shared/lab scenarios.
#   bench/lab.sh [-n REPS] [-s "layers bigcontext"] [-b "docker-buildkit kiln"]
# Copies the lab to /tmp/lab (it writes beside itself), builds its bases and scenarios once, starts dockerd when the
# docker-buildkit builder is asked for (apt-get install docker.io first), and prints the medians table.
# Results: /tmp/lab/results/*.summary.txt (copied to bench/results/).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
REPS=3; SCEN="layers bigcontext"; BUILDERS="docker-buildkit kiln"
while getopts "n:s:b:" o; do case "$o" in n) REPS="$OPTARG";; s) SCEN="$OPTARG";; b) BUILDERS="$OPTARG";; *) exit 2;; esac; done
LAB=/tmp/lab
[ -d "$LAB" ] || { cp -a "$REPO/../shared/lab" "$LAB"; chmod -R u+w "$LAB"; }
case " $BUILDERS " in *" docker-buildkit "*)
  command -v dockerd >/dev/null || { echo "docker.io is not installed (apt-get install docker.io)" >&2; exit 1; }
  "$LAB/start-dockerd.sh" ;;
esac
[ -f "$LAB/bases/busybox-rootfs.tar" ] || "$LAB/make-bases.sh" all
for s in $SCEN; do [ -f "$LAB/scenarios/$s.steps" ] || "$LAB/make-scenarios.sh" "$s" >/dev/null; done
LAB_KILN_REPO="$REPO" "$LAB/bench.sh" -n "$REPS" -b "$BUILDERS" -s "$SCEN"
mkdir -p "$REPO/bench/results"
cp "$(ls -t "$LAB"/results/*.summary.txt | head -1)" "$REPO/bench/results/"

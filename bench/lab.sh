#!/usr/bin/env bash
# Side-by-side cache benchmark: kiln vs BuildKit (dockerd 20.10 from Debian's docker.io) on the ../shared/lab scenarios.
#   bench/lab.sh [-n REPS] [-s "layers bigcontext multistage cachemount npm"] [-b "docker-buildkit kiln-inproc kiln-serve"]
# Defaults: 3 repetitions, all five scenarios, three builders: BuildKit, kiln in-process (`--no-daemon`) and kiln
# handing each build to a `kiln serve` on the same root (ROOT/kiln.sock; bench/lab-builders/kiln-lab.sh). Copies the lab to $LAB_DIR (default /tmp/lab; it writes
# beside itself), builds its bases and scenarios once, starts dockerd when docker-buildkit is asked for (apt-get
# install docker.io first), runs the lab, copies the medians to bench/results/ and prints the ratio table
# (bench/lab-ratios.py) that the README's performance table is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
REPS=3; SCEN="layers bigcontext multistage cachemount npm"; BUILDERS="docker-buildkit kiln-inproc kiln-serve"
while getopts "n:s:b:" o; do case "$o" in n) REPS="$OPTARG";; s) SCEN="$OPTARG";; b) BUILDERS="$OPTARG";; *) exit 2;; esac; done
LAB="${LAB_DIR:-/tmp/lab}"
[ -d "$LAB" ] || { cp -a "$REPO/../shared/lab" "$LAB"; chmod -R u+w "$LAB"; }
for b in kiln-inproc kiln-serve; do cp "$REPO/bench/lab-builders/kiln-lab.sh" "$LAB/builders.d/$b"; done
STARTED_DOCKERD=""
stop_all() {
  "$LAB/builders.d/kiln-serve" stop 2>/dev/null || true
  # a dockerd this run started is stopped again (one that was running before is left alone)
  if [ -n "$STARTED_DOCKERD" ] && [ -f "$LAB/dockerd.pid" ]; then
    local pid; pid="$(cat "$LAB/dockerd.pid")"
    kill -TERM "$pid" 2>/dev/null && for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$LAB/dockerd.pid"
  fi
}
trap stop_all EXIT
case " $BUILDERS " in *" docker-buildkit "*)
  command -v dockerd >/dev/null || { echo "docker.io is not installed (apt-get install docker.io)" >&2; exit 1; }
  [ -f "$LAB/dockerd.pid" ] && [ "$(cat "/proc/$(cat "$LAB/dockerd.pid")/comm" 2>/dev/null)" = dockerd ] || STARTED_DOCKERD=1
  "$LAB/start-dockerd.sh" ;;
esac
[ -f "$LAB/bases/busybox-rootfs.tar" ] || "$LAB/make-bases.sh" all
# dockerd builds only from bases imported into it (a fresh dockerd has none): import each tarball it lacks
case " $BUILDERS " in *" docker-buildkit "*)
  for b in busybox-rootfs.tar:lab/busybox:latest:/bin/sh debian-bookworm-rootfs.tar:lab/debian:bookworm:bash node20-rootfs.tar:lab/node:20:node; do
    IFS=: read -r tarball name tag cmd <<< "$b"
    [ -f "$LAB/bases/$tarball" ] || continue
    /usr/bin/docker image inspect "$name:$tag" >/dev/null 2>&1 && continue
    /usr/bin/docker import -c "CMD [\"$cmd\"]" -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$LAB/bases/$tarball" "$name:$tag" >/dev/null
  done ;;
esac
for s in $SCEN; do [ -f "$LAB/scenarios/$s.steps" ] || "$LAB/make-scenarios.sh" "$s" >/dev/null; done
echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
LAB_KILN_REPO="$REPO" "$LAB/bench.sh" -n "$REPS" -b "$BUILDERS" -s "$SCEN"
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$REPO/bench/results"
summary="$(ls -t "$LAB"/results/*.summary.txt | head -1)"
cp "$summary" "$REPO/bench/results/"
python3 "$REPO/bench/lab-ratios.py" "$summary" docker-buildkit $(printf '%s\n' $BUILDERS | grep -v '^docker-buildkit$' | xargs) | tee "$REPO/bench/results/$(basename "$summary" .summary.txt).ratios.md"

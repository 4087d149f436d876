#!/usr/bin/env bash
# The lab's `cachemount` scenario with kiln: apt-get install under locked cache mounts on a debootstrapped Debian base.
#   cold       first build (downloads lists and curl jq)
#   nochange   rebuild, every step cached
#   edit-pkgs  `curl jq` -> `curl jq tree`: the RUN reruns; apt must fetch only tree
# and the reference: the time apt takes to install that one package (tree) from the same warm caches, on the image of
# the cold build (update + install, timed inside the container). Target: edit-pkgs wall <= 1.1x the reference.
# Usage: bench/cachemount.sh [RUNS]   (needs root, runc, debootstrap and the Debian mirror of this machine's apt sources)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
[ -f dist/cli/index.js ] || npx tsc -p . >/dev/null
kiln="$PWD/bin/kiln"
work="$(mktemp -d /tmp/kiln-bench-cachemount.XXXXXX)"
cleanup() {
  grep -o " $work[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
tar="$(bash test/helpers/make-debian-rootfs.sh)"
sources="$(ls /etc/apt/sources.list.d/*.sources | head -1)"
ms() { date +%s%3N; }
# bytes apt said it fetched for archives ("Need to get X kB/Y kB" or "Need to get X kB"), and the packages it got
need() { grep -oE 'Need to get [0-9.,]+ [kM]?B' "$1" | head -1 | sed 's/Need to get //' || echo "0 B"; }
pkgs() { grep -oE 'Get:[0-9]+ \S+ \S+ \S+ \S+ \S+ \S+ \[' "$1" | awk '$4 ~ /^(amd64|arm64|all|i386)$/ {print $5}' | tr '\n' ' ' || true; }

printf '%-4s %-10s %9s %14s  %s\n' run step wall_ms apt_need fetched
for run in $(seq "$runs"); do
  root="$work/root$run"; ctx="$work/ctx$run"; mkdir -p "$ctx"
  "$kiln" import --root "$root" "$tar" debian:bookworm >/dev/null
  cp bench/scenarios/cachemount/Dockerfile "$ctx/"
  b() { "$kiln" build --root "$root" --progress=plain --secret "id=aptsources,src=$sources" "$@" "$ctx" > "$work/out" 2>&1 || { tail -20 "$work/out"; exit 1; }; }
  t0=$(ms); b -t cm:cold; t1=$(ms); printf '%-4s %-10s %9d %14s  %s\n' "$run" cold $((t1 - t0)) "$(need "$work/out")" "$(pkgs "$work/out")"
  t0=$(ms); b; t1=$(ms); printf '%-4s %-10s %9d %14s  %s\n' "$run" nochange $((t1 - t0)) "-" "$(grep -c CACHED "$work/out") steps CACHED"
  sed -i 's/curl jq$/curl jq tree/' "$ctx/Dockerfile"
  t0=$(ms); b; t1=$(ms); edit=$((t1 - t0))
  printf '%-4s %-10s %9d %14s  %s\n' "$run" edit-pkgs "$edit" "$(need "$work/out")" "$(pkgs "$work/out")"
  # reference: apt installing tree alone from the same warm caches, on the cold image (timed inside the container);
  # the caches are reset to what edit-pkgs started from by removing tree's .deb
  rm -f "$(dirname "$(ls -d "$root"/cache-mounts/*/data/archives 2>/dev/null | head -1)")"/archives/tree_*.deb 2>/dev/null || true
  ref="$work/ref$run"; mkdir -p "$ref"
  cat > "$ref/Dockerfile" <<'DF'
FROM cm:cold
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=secret,id=aptsources,target=/etc/apt/sources.list.d/host.sources \
    s=$(date +%s%3N); apt-get update && apt-get install -y --no-install-recommends tree; e=$(date +%s%3N); echo "APT_MS=$((e - s))"
DF
  "$kiln" build --root "$root" --progress=plain --no-cache --secret "id=aptsources,src=$sources" "$ref" > "$work/out" 2>&1 || { tail -20 "$work/out"; exit 1; }
  apt_ms=$(grep -oE 'APT_MS=[0-9]+' "$work/out" | cut -d= -f2)
  printf '%-4s %-10s %9d %14s  %s\n' "$run" apt-tree "$apt_ms" "$(need "$work/out")" "$(pkgs "$work/out")  (reference)"
  # second reference: apt doing exactly the edit-pkgs RUN's work (update + install curl jq tree on the base image) from
  # the warm caches, timed inside the container: the rebuild minus this is kiln's own overhead
  cat > "$ref/Dockerfile" <<'DF'
FROM debian:bookworm
RUN rm -f /etc/apt/apt.conf.d/docker-clean && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=secret,id=aptsources,target=/etc/apt/sources.list.d/host.sources \
    s=$(date +%s%3N); apt-get update && apt-get install -y --no-install-recommends curl jq tree; e=$(date +%s%3N); echo "APT_MS=$((e - s))"
DF
  "$kiln" build --root "$root" --progress=plain --secret "id=aptsources,src=$sources" "$ref" > "$work/out" 2>&1 || { tail -20 "$work/out"; exit 1; }
  all_ms=$(grep -oE 'APT_MS=[0-9]+' "$work/out" | cut -d= -f2)
  printf '%-4s %-10s %9d %14s  %s\n' "$run" apt-all "$all_ms" "$(need "$work/out")" "(reference: the edit-pkgs RUN's apt work alone)"
  printf '%-4s %-10s %9s   edit-pkgs/apt-all %s, kiln overhead %d ms\n' "$run" ratio "$(awk -v a="$edit" -v b="$apt_ms" 'BEGIN{printf "%.2fx", a/b}')" \
    "$(awk -v a="$edit" -v b="$all_ms" 'BEGIN{printf "%.2fx", a/b}')" $((edit - all_ms))
done

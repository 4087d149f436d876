#!/usr/bin/env bash
# A 10 GiB sparse file (`truncate -s 10G`, a few bytes of data) in the build context: wall time and kiln's peak memory
# of a cold `COPY` build (issue 14: under a minute, under 1 GiB). Usage: bench/sparse.sh [SIZE, default 10G]
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-10G}"
work="$(mktemp -d /tmp/kiln-bench-sparse.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx"
truncate -s "$size" "$work/ctx/big"
printf 'data in the middle' | dd of="$work/ctx/big" bs=1 seek=5000000000 conv=notrunc status=none
printf 'FROM busybox\nCOPY big /big\nRUN ls -ls /big\n' > "$work/ctx/Dockerfile"
bash scripts/make-busybox-rootfs.sh "$work/busybox.tar" >/dev/null
./bin/kiln import --root "$work/root" "$work/busybox.tar" busybox:latest >/dev/null
/usr/bin/time -f 'wall %e s, kiln peak RSS %M KiB' ./bin/kiln build --root "$work/root" --progress=plain -t sparse:bench "$work/ctx" 2>&1 | tail -n 20
echo "layer blobs (bytes):"
find "$work/root/content/blobs" -type f -newer "$work/ctx/Dockerfile" -printf '%s\n' | sort -n | tail -3

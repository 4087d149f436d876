#!/usr/bin/env bash
# Make a minimal Debian bookworm rootfs tar with debootstrap (1-2 min), cached at $1 (default
# /var/tmp/kiln-test-debian-bookworm.tar): an existing tar is reused as is.
# The mirror is read from this machine's apt sources at run time; no apt sources are left in the image.
set -euo pipefail
out="${1:-/var/tmp/kiln-test-debian-bookworm.tar}"
[ -s "$out" ] && { echo "$out"; exit 0; }
mirror=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
[ -n "$mirror" ] || { echo "no apt mirror found in /etc/apt/sources.list.d/*.sources" >&2; exit 1; }
dir=$(mktemp -d /var/tmp/kiln-debootstrap.XXXXXX)
trap 'rm -rf "$dir"' EXIT
if ! debootstrap --variant=minbase bookworm "$dir/root" "$mirror" >"$dir/log" 2>&1; then
  tail -20 "$dir/log" | sed "s#$mirror#<mirror>#g" >&2
  exit 1
fi
r="$dir/root"
rm -f "$r/etc/apt/sources.list" "$r"/etc/apt/sources.list.d/*
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/log/apt/* "$r/debootstrap"
tar --numeric-owner -C "$r" -cf "$out.tmp.$$" .
mv "$out.tmp.$$" "$out"
echo "$out"

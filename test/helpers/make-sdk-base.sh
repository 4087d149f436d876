#!/usr/bin/env bash
# Make a Debian bookworm rootfs tar with extra packages, cached at OUT (an existing tar is reused as is). Used by the
# SDK tests for their python3+pip and nodejs+npm bases.
# Usage: make-sdk-base.sh OUT DEBOOTSTRAP_PKGS [APT_PKGS]
#   DEBOOTSTRAP_PKGS: comma-separated, installed by debootstrap --variant=minbase --include=...
#   APT_PKGS: space-separated, installed afterwards with apt-get inside the new root (for packages whose many
#   dependencies debootstrap cannot configure in one pass, such as npm)
# The mirror is read from this machine's apt sources at run time; no apt sources or lists are left in the image.
# Like the official python images, the rootfs has no EXTERNALLY-MANAGED marker, so `pip install` works as root.
set -euo pipefail
out="$1"
pkgs="$2"
extra="${3:-}"
[ -s "$out" ] && { echo "$out"; exit 0; }
mirror=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
[ -n "$mirror" ] || { echo "no apt mirror found in /etc/apt/sources.list.d/*.sources" >&2; exit 1; }
dir=$(mktemp -d /var/tmp/kiln-sdk-debootstrap.XXXXXX)
r="$dir/root"
cleanup() {
  umount "$r/proc" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
if ! debootstrap --variant=minbase --include="$pkgs" bookworm "$r" "$mirror" >"$dir/log" 2>&1; then
  tail -20 "$dir/log" | sed "s#$mirror#<mirror>#g" >&2
  exit 1
fi
if [ -n "$extra" ]; then
  cp /etc/apt/sources.list.d/*.sources "$r/etc/apt/sources.list.d/"
  mount -t proc proc "$r/proc"
  if ! { chroot "$r" apt-get update && DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y --no-install-recommends $extra; } >>"$dir/log" 2>&1; then
    tail -20 "$dir/log" | sed "s#$mirror#<mirror>#g" >&2
    exit 1
  fi
  umount "$r/proc"
fi
rm -f "$r/etc/apt/sources.list" "$r"/etc/apt/sources.list.d/*
rm -f "$r"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/log/apt/* "$r/debootstrap"
# a normal user, as sandbox images have one
if [ -x "$r/usr/sbin/useradd" ]; then chroot "$r" /usr/sbin/useradd -m -u 1000 -s /bin/bash user; fi
tar --numeric-owner -C "$r" -cf "$out.tmp.$$" .
mv "$out.tmp.$$" "$out"
echo "$out"

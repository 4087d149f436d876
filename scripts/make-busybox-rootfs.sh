#!/usr/bin/env bash
# Writes a reproducible busybox root filesystem tar (static busybox from Debian + applet symlinks + minimal /etc).
# Usage: scripts/make-busybox-rootfs.sh OUT.tar
set -euo pipefail
out="$1"
bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
r="$tmp/rootfs"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/home" "$r/var" "$r/usr/bin" "$r/usr/sbin" "$r/sbin"
chmod 1777 "$r/tmp"; chmod 700 "$r/root"
cp "$bb" "$r/bin/busybox"
for a in $("$bb" --list-full 2>/dev/null || "$bb" --list | sed 's#^#bin/#'); do
  [ "$a" = bin/busybox ] && continue
  mkdir -p "$r/$(dirname "$a")"
  rel="$(realpath -m --relative-to="$r/$(dirname "$a")" "$r/bin/busybox")"
  [ -e "$r/$a" ] || ln -s "$rel" "$r/$a"
done
cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$r/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
wheel:x:10:root
users:x:100:
nogroup:x:65534:
G
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$r" -cf "$out" .

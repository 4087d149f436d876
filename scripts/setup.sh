#!/usr/bin/env bash
# kiln setup: installs what kiln needs (Debian apt + npm), builds it, puts `kiln` on PATH, creates the local
# `busybox:latest` base image, then (unless --no-demo) builds examples/hello twice: the second build is fully cached.
# Run as root on Debian 12:   ./scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
DEMO=1
for a in "$@"; do case "$a" in --no-demo) DEMO=0;; *) echo "usage: $0 [--no-demo]" >&2; exit 2;; esac; done

[ "$(id -u)" = 0 ] || { echo "setup must run as root (kiln runs containers with runc and mounts overlayfs)" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null; then
  echo "kiln needs Node.js 20 or later with npm (found: $(node --version 2>/dev/null || echo none)); Debian 12's nodejs is 18 —" >&2
  echo "install Node 20+ first (for example: npm install -g node@20 with an older npm, or your distribution's backports)" >&2
  exit 1
fi

# ---- system packages (Debian apt only)
# runc: the OCI runtime; busybox-static: the built-in base image; skopeo: an independent OCI client for tests;
# debootstrap: Debian base images in tests; docker-registry: a real registry for cache sharing tests;
# postgresql: PostgreSQL 15 for the service metadata and build-queue tests (each test starts its own server);
# attr: getfattr/setfattr, the tests' independent check of the xattrs kiln reads and writes (kiln calls libc); tar/gzip/bzip2/xz-utils: ADD archive tests;
# docker.io: a private dockerd (test/helpers/dockerd.ts) proves `docker load` of kiln's docker-archive output.
PKGS=(runc busybox-static skopeo debootstrap docker-registry postgresql attr tar gzip bzip2 xz-utils zstd ca-certificates time slirp4netns util-linux bsdutils chromium docker.io)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the registry package starts a service on :5000 we do not use; tests start their own on a free loopback port
systemctl disable --now docker-registry >/dev/null 2>&1 || true
# likewise the postgresql package's own cluster on :5432: tests run servers of their own under temp dirs
systemctl disable --now postgresql >/dev/null 2>&1 || true
# and docker.io's daemon: tests start a private dockerd (own data root and socket under a temp dir), nothing on the host
systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1 || true

# ---- npm packages and build
echo "==> npm ci"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
echo "==> tsc"
npm run --silent build
ln -sf "$REPO/bin/kiln" /usr/local/bin/kiln

# ---- the local busybox base image
echo "==> busybox:latest"
bash scripts/make-busybox-rootfs.sh /tmp/kiln-busybox-rootfs.tar
"$REPO/bin/kiln" import /tmp/kiln-busybox-rootfs.tar busybox:latest

if [ "$DEMO" = 1 ]; then
  echo "==> demo: building examples/hello twice (the second build is fully cached)"
  "$REPO/bin/kiln" build --progress=plain -t hello:latest examples/hello
  "$REPO/bin/kiln" build --progress=plain -t hello:latest examples/hello
fi
echo "==> kiln is ready: $(command -v kiln)"

#!/bin/sh
# Lab builder plug-ins (installed into the lab copy's builders.d/ by bench/lab.sh) for kiln's two paths on ONE root:
#   kiln-inproc  `kiln build --no-daemon`: the engine in the CLI process
#   kiln-serve   plain `kiln build`, handed to a `kiln serve` running on the same root (ROOT/kiln.sock)
# Both wrap the lab's own `kiln` plug-in (flags, imports, hits). `clear` stops the server (the root is wiped), and
# kiln-serve's `clear` starts it again after the bases are imported, so its start-up is never in a timed build.
set -u
# Every line before the `exec` of a build is in the timed command (BuildKit's plug-in has one shell layer, this
# wrapper adds a second): POSIX sh (dash starts ~5 ms sooner than bash here), no subshells or helper programs on
# that path.
case $0 in */*) D=${0%/*} ;; *) D=. ;; esac
case $D in /*) ;; *) D="$PWD/$D" ;; esac
export LAB_KILN_ROOT="${LAB_KILN_ROOT:-/tmp/lab-work/kiln-root}"
K="${LAB_KILN_REPO:+$LAB_KILN_REPO/bin/kiln}"; [ -n "$K" ] && [ -x "$K" ] || K="$(command -v kiln || true)"
PIDF=/tmp/lab-work/kiln-serve.pid
MODE=${0##*/}
stop_server() {
  [ -f "$PIDF" ] || return 0
  local pid; pid="$(cat "$PIDF")"; rm -f "$PIDF"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
start_server() {
  local pid=
  [ -f "$PIDF" ] && read -r pid < "$PIDF" && kill -0 "$pid" 2>/dev/null && [ -S "$LAB_KILN_ROOT/kiln.sock" ] && return 0
  mkdir -p /tmp/lab-work
  # the TCP API on an ephemeral loopback port (unused here); builds come in on ROOT/kiln.sock
  setsid "$K" --root "$LAB_KILN_ROOT" serve --listen 127.0.0.1:0 >>/tmp/lab-work/kiln-serve.log 2>&1 < /dev/null &
  echo $! > "$PIDF"
  for _ in $(seq 300); do [ -S "$LAB_KILN_ROOT/kiln.sock" ] && return 0; sleep 0.1; done
  echo "kiln serve did not open $LAB_KILN_ROOT/kiln.sock (see /tmp/lab-work/kiln-serve.log)" >&2; return 1
}
case "$1" in
  available) "$D/kiln" available ;;
  clear)
    stop_server
    "$D/kiln" clear
    [ "$MODE" = kiln-serve ] && start_server ;;
  build)
    if [ "$MODE" = kiln-serve ]; then
      [ -d "$LAB_KILN_ROOT" ] || "$D/kiln" clear
      start_server || exit 1
      exec "$D/kiln" "$@"   # nothing after it: the timed build is the CLI's alone (hits checks the hand-off)
    fi
    stop_server
    exec "$D/kiln" "$@" --no-daemon ;;
  hits)
    # a kiln-serve build that was not handed off is marked in the "ran" column (the summary shows it)
    if [ "$MODE" = kiln-serve ] && ! grep -q 'handing the build to kiln serve' "$2"; then
      "$D/kiln" "$@" | sed 's/$/ NOT-HANDED-OFF/'
    else "$D/kiln" "$@"; fi ;;
  stop) stop_server ;;
  *) echo "usage: $0 available|clear|build|hits" >&2; exit 2 ;;
esac

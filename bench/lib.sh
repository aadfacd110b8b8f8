# bench/lib.sh: what the bench scripts share. Source it, set work (the
# script's scratch directory) and `trap bench_cleanup EXIT`.

server_pid=

# bench_cleanup stops the server the script started and removes $work.
# Not a && list: under set -e its failing wait (the server dies of the
# signal) would end the trap before the rm.
bench_cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}

# serve_dir DIR: serves DIR over HTTP on a free loopback port, setting
# server_pid and base (http://127.0.0.1:PORT).
serve_dir() {
  python3 -m http.server 0 --bind 127.0.0.1 --directory "$1" >"$work/server.log" 2>&1 &
  server_pid=$!
  local port=
  for _ in $(seq 50); do
    port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/server.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$0: the web server did not start" >&2; exit 1; }
  base="http://127.0.0.1:$port"
}

# median: the median of the numbers on stdin, one per line (the mean of
# the middle two for an even count).
median() {
  sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

# medians FILE: the median of each space-separated column of FILE.
medians() {
  local cols col
  cols=$(head -1 "$1" | wc -w)
  for ((col = 1; col <= cols; col++)); do
    cut -d' ' -f$col "$1" | median
  done | paste -sd' '
}

#!/usr/bin/env bash
# bench/registry.sh: whole-command throughput of bakery push/pull against
# crane and skopeo, on one embedded registry (bakery registry serve) over
# loopback. Runs are interleaved (each round runs every tool once) and the
# median of BENCH_ROUNDS rounds is reported as a Markdown table on stdout.
#
#   bench/registry.sh            # 200 MiB image, 5 rounds
#   BENCH_SIZE_MB=50 BENCH_ROUNDS=3 bench/registry.sh
set -euo pipefail

size_mb=${BENCH_SIZE_MB:-200}
rounds=${BENCH_ROUNDS:-5}
repo_root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
. "$repo_root/bench/lib.sh"
trap bench_cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "bench/registry.sh: $1 not found ($2)" >&2; exit 1; }; }
need mksquashfs "apt-get install squashfs-tools"
need skopeo "apt-get install skopeo"
"$repo_root/scripts/install-go-tools" >&2
export PATH="${BAKERY_TOOLS:-$(go env GOPATH)/bin}:$PATH"
need crane "scripts/install-go-tools"

(cd "$repo_root" && go build -o "$work/bakery" ./cmd/bakery)
bakery="$work/bakery"

# One ${size_mb} MiB image of incompressible data.
mkdir -p "$work/tree/usr/lib/extension-release.d" "$work/tree/usr/bin" "$work/out"
printf 'ID=_any\nARCHITECTURE=x86-64\nSYSEXT_ID=big\nSYSEXT_VERSION_ID=1.0\n' >"$work/tree/usr/lib/extension-release.d/extension-release.big"
head -c "${size_mb}M" /dev/urandom >"$work/tree/usr/bin/big"
mksquashfs "$work/tree" "$work/out/big-1.0-x86-64.raw" -all-root -noappend -no-progress -comp gzip >/dev/null
rm -rf "$work/tree"
bytes=$(stat -c %s "$work/out/big-1.0-x86-64.raw")
# As bake leaves it: SHA256SUMS gives push the digest, as index.json gives
# it to crane push. A second directory without it makes push hash first.
(cd "$work/out" && sha256sum -- *.raw >SHA256SUMS)
mkdir "$work/out-nosums"
ln "$work/out/big-1.0-x86-64.raw" "$work/out-nosums/"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
"$bakery" registry serve --addr "$reg" --root "$work/registry" 2>"$work/registry.log" &
server_pid=$!
for _ in $(seq 100); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done

# The same artifact as an OCI layout, for crane push and skopeo copy.
"$bakery" push "$work/out" "$reg/seed/big" --insecure --no-catalog >/dev/null 2>"$work/err" || { echo "bench/registry.sh: bakery push of the seed failed:" >&2; cat "$work/err" >&2; exit 1; }
crane pull --insecure --format oci "$reg/seed/big:1.0" "$work/layout" 2>/dev/null

# time_cmd NAME CMD…: run CMD, append its wall time in seconds to $work/NAME.
# The registry shares this file system: sync first, so that no command
# (bakery pull's fsync above all) pays for writing out what an earlier
# command left dirty.
time_cmd() {
  local name=$1; shift
  local t0 t1
  sync
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "bench/registry.sh: $name failed: $*" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l >>"$work/$name"
}

for i in $(seq "$rounds"); do
  time_cmd "bakery push" "$bakery" push "$work/out" "$reg/bakery$i/big" --insecure --no-catalog
  time_cmd "bakery push (no SHA256SUMS)" "$bakery" push "$work/out-nosums" "$reg/nosums$i/big" --insecure --no-catalog
  time_cmd "crane push" crane push --insecure --index "$work/layout" "$reg/bench/crane$i:1.0"
  # skopeo remembers which blobs a registry has (blob-info cache) and would
  # mount them from an earlier round's repository instead of uploading.
  rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb "${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb"
  time_cmd "skopeo copy (push)" skopeo copy --dest-tls-verify=false "oci:$work/layout" "docker://$reg/bench/skopeo$i:1.0"
  rm -rf "$work/pull"; mkdir "$work/pull"
  time_cmd "bakery pull" "$bakery" pull "$reg/bakery$i/big:1.0" --arch x86-64 --out "$work/pull" --insecure
  rm -rf "$work/pull"; mkdir "$work/pull"
  time_cmd "crane pull" crane pull --insecure --format oci "$reg/bakery$i/big:1.0" "$work/pull/oci"
  rm -rf "$work/pull"; mkdir "$work/pull"
  digest=$(sha256sum "$work/out/big-1.0-x86-64.raw" | cut -d' ' -f1)
  time_cmd "crane blob" sh -c "crane blob --insecure '$reg/bakery$i/big@sha256:$digest' >'$work/pull/blob'"
  rm -rf "$work/pull"; mkdir "$work/pull"
  time_cmd "skopeo copy (pull)" skopeo copy --src-tls-verify=false "docker://$reg/bakery$i/big:1.0" "oci:$work/pull/oci"
  rm -rf "$work/pull"
done

echo "### Registry push/pull, $((bytes / 1048576)) MiB image, loopback, embedded registry, median of $rounds interleaved rounds"
echo
echo "| command | median s | MiB/s | its time ÷ bakery's (< 1: faster than bakery) |"
echo "|---|---:|---:|---:|"
for dir in push pull; do
  base=$(median <"$work/bakery $dir")
  names=("bakery $dir" "crane $dir" "skopeo copy ($dir)")
  if [ $dir = push ]; then names+=("bakery push (no SHA256SUMS)"); else names+=("crane blob"); fi
  for name in "${names[@]}"; do
    m=$(median <"$work/$name")
    printf '| %s | %.2f | %.0f | %.2f× |\n' "$name" "$m" "$(echo "$bytes / 1048576 / $m" | bc -l)" "$(echo "$m / $base" | bc -l)"
  done
done

#!/bin/bash
# bench/merge.sh [BAKERY] [RUNS]: whole-command merge of N extensions (N in
# $COUNTS, default "10 50"), `bakery merge --require-signature` (digest
# check included) vs `systemd-sysext merge`, on the same root, interleaved,
# in a private mount namespace; prints the median wall time of
# merge+unmerge for each and the ratio. Needs root, squashfs-tools and
# systemd-sysext.
set -euo pipefail
bakery=$(realpath "${1:-./bakery}")
runs=${2:-11}
counts=${COUNTS:-10 50}
[ "$(id -u)" = 0 ] || { echo "merge.sh: needs root" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# root N: a root holding N extensions of 1 MiB each, with a state.json
# that records their digests as verified.
root() {
  local n=$1 r=$work/root$1 i src sum state sep=
  mkdir -p "$r/usr/lib" "$r/usr/bin" "$r/var/lib/extensions" "$r/var/lib/bakery"
  printf 'ID=debian\nVERSION_ID=12\n' >"$r/usr/lib/os-release"
  echo host >"$r/usr/bin/host"
  state='{"schema":2,"extensions":{'
  for i in $(seq -w 1 "$n"); do
    src=$work/src$n-$i
    mkdir -p "$src/usr/lib/extension-release.d" "$src/usr/share/ext$i"
    echo ID=_any >"$src/usr/lib/extension-release.d/extension-release.ext$i"
    head -c 1048576 /dev/urandom >"$src/usr/share/ext$i/data"
    mksquashfs "$src" "$r/var/lib/extensions/ext$i.raw" -all-root -noappend -quiet -no-progress >/dev/null
    rm -rf "$src"
    sum=$(sha256sum "$r/var/lib/extensions/ext$i.raw" | cut -d' ' -f1)
    state+="$sep\"ext$i\":{\"ref\":\"bench\",\"digest\":\"sha256:$sum\",\"installed\":\"2026-01-01T00:00:00Z\",\"verification\":{\"at\":\"2026-01-01T00:00:00Z\",\"signature\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\",\"key\":\"/etc/bakery/keys/bench.pub\"}}"
    sep=,
  done
  echo "$state}}" >"$r/var/lib/bakery/state.json"
}
for n in $counts; do root "$n"; done
exec unshare -m --propagation private bash -s "$bakery" "$work" "$runs" "$counts" "$(realpath "$(dirname "$0")")/lib.sh" <<'INNER'
set -euo pipefail
bakery=$1 work=$2 runs=$3 counts=$4
. "$5"
mount --make-rshared /
mount -t tmpfs tmpfs /run && mount --make-shared /run
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
for n in $counts; do
  root=$work/root$n
  # Both must really merge all of them, or the numbers mean nothing.
  for m in "$bakery merge --root $root --require-signature" "systemd-sysext merge --root=$root"; do
    $m >/dev/null 2>&1 || true
    got=$(wc -l <"$root/usr/.systemd-sysext/extensions" 2>/dev/null || echo 0)
    [ "$got" = "$n" ] || { echo "merge.sh: '$m' merged $got extensions, not $n" >&2; exit 1; }
    systemd-sysext unmerge --root="$root" >/dev/null 2>&1
  done
  b=() s=()
  for _ in $(seq "$runs"); do
    t1=$(ms "$bakery" merge --root "$root" --require-signature); t2=$(ms "$bakery" unmerge --root "$root"); b+=($((t1 + t2)))
    t1=$(ms systemd-sysext merge --root="$root"); t2=$(ms systemd-sysext unmerge --root="$root"); s+=($((t1 + t2)))
  done
  mb=$(printf '%s\n' "${b[@]}" | median) msd=$(printf '%s\n' "${s[@]}" | median)
  echo "### Merge of $n extensions (merge + unmerge, median of $runs interleaved runs)"
  echo
  echo "| command | median ms | ms per extension | vs systemd-sysext |"
  echo "|---|---:|---:|---:|"
  awk -v a="$mb" -v b="$msd" -v n="$n" 'BEGIN {
    printf "| bakery merge --require-signature (sha256 of every image included) | %d | %.1f | %.2f× |\n", a, a / n, a / b
    printf "| systemd-sysext merge | %d | %.1f | 1.00× |\n", b, b / n }'
  echo
done
INNER

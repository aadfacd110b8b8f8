#!/bin/bash
# bench/merge.sh [BAKERY] [RUNS]: whole-command merge of 10 extensions,
# `bakery merge --require-signature` (digest check included) vs
# `systemd-sysext merge`, on the same root, interleaved, in a private mount
# namespace; prints the median wall time of merge+unmerge for each and the
# ratio. Needs root, squashfs-tools and systemd-sysext.
set -euo pipefail
bakery=$(realpath "${1:-./bakery}")
runs=${2:-11}
[ "$(id -u)" = 0 ] || { echo "merge.sh: needs root" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/usr/lib" "$root/usr/bin" "$root/var/lib/extensions" "$root/var/lib/bakery"
printf 'ID=debian\nVERSION_ID=12\n' >"$root/usr/lib/os-release"
echo host >"$root/usr/bin/host"
state='{"schema":2,"extensions":{'
for i in $(seq 0 9); do
  src=$work/src$i
  mkdir -p "$src/usr/lib/extension-release.d" "$src/usr/share/ext$i"
  echo ID=_any >"$src/usr/lib/extension-release.d/extension-release.ext$i"
  head -c 1048576 /dev/urandom >"$src/usr/share/ext$i/data"
  mksquashfs "$src" "$root/var/lib/extensions/ext$i.raw" -all-root -noappend -quiet -no-progress >/dev/null
  sum=$(sha256sum "$root/var/lib/extensions/ext$i.raw" | cut -d' ' -f1)
  state+="$([ "$i" = 0 ] || echo ,)\"ext$i\":{\"ref\":\"bench\",\"digest\":\"sha256:$sum\",\"installed\":\"2026-01-01T00:00:00Z\",\"verification\":{\"at\":\"2026-01-01T00:00:00Z\",\"signature\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\",\"key\":\"/etc/bakery/keys/bench.pub\"}}"
done
echo "$state}}" >"$root/var/lib/bakery/state.json"
exec unshare -m --propagation private bash -s "$bakery" "$root" "$runs" <<'INNER'
set -euo pipefail
bakery=$1 root=$2 runs=$3
mount --make-rshared /
mount -t tmpfs tmpfs /run && mount --make-shared /run
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
# Both must really merge all ten, or the numbers mean nothing.
for m in "$bakery merge --root $root --require-signature" "systemd-sysext merge --root=$root"; do
  $m >/dev/null 2>&1
  n=$(wc -l <"$root/usr/.systemd-sysext/extensions" 2>/dev/null || echo 0)
  [ "$n" = 10 ] || { echo "merge.sh: '$m' merged $n extensions, not 10" >&2; exit 1; }
  systemd-sysext unmerge --root="$root" >/dev/null
done
b=() s=()
for _ in $(seq "$runs"); do
  t1=$(ms "$bakery" merge --root "$root" --require-signature); t2=$(ms "$bakery" unmerge --root "$root"); b+=($((t1 + t2)))
  t1=$(ms systemd-sysext merge --root="$root"); t2=$(ms systemd-sysext unmerge --root="$root"); s+=($((t1 + t2)))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${b[@]}") msd=$(median "${s[@]}")
echo "### Merge of 10 extensions (merge + unmerge, median of $runs interleaved runs)"
echo
echo "| command | median ms | vs systemd-sysext |"
echo "|---|---:|---:|"
awk -v a="$mb" -v b="$msd" 'BEGIN {
  printf "| bakery merge --require-signature (sha256 of every image included) | %d | %.2f× |\n", a, a / b
  printf "| systemd-sysext merge | %d | 1.00× |\n", b }'
INNER

#!/usr/bin/env bash
# bench/images.sh BAKERY: whole-command image-building benchmark, native
# writers against mksquashfs and mkfs.erofs at matched settings, on a copy of
# the Go toolchain (/usr/local/go, ~270 MB, 16.7k entries), on generated
# trees of 100k and 500k small files (files100k, files500k) and of 1 GiB
# and 4 GiB of data (gen1g, gen4g). Runs are interleaved A/B/A/B…; the table
# shows medians of RUNS runs (default 3), and the cores kept busy (CPU time
# over wall time). Each tree gets the settings wanted() names (the slow ones
# only where issue 14 sets a target); SETTINGS, a regular expression, picks
# the settings for every tree instead.
# Prints a Markdown section on stdout.
#   TREES="go files500k" SETTINGS="zstd 15|xz" bench/images.sh bin/bakery
set -euo pipefail
bakery=$(realpath "${1:?usage: bench/images.sh path/to/bakery}")
runs=${RUNS:-3}
trees=${TREES:-go files100k files500k gen1g gen4g}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bakery-bench.XXXXXX")
cd "$(dirname "$0")/.."
. bench/lib.sh
trap bench_cleanup EXIT

prepare() { # NAME -> path of the tree
  case $1 in
    go) cp -a "$(go env GOROOT)" "$work/go"; echo "$work/go" ;;
    gen1g) go run ./bench/gentree -size 1G "$work/gen1g"; echo "$work/gen1g" ;;
    gen4g) go run ./bench/gentree -size 4G "$work/gen4g"; echo "$work/gen4g" ;;
    files100k) go run ./bench/gentree -files 100000 "$work/files100k"; echo "$work/files100k" ;;
    files500k) go run ./bench/gentree -files 500000 "$work/files500k"; echo "$work/files500k" ;;
  esac
}

# measure OUT CMD… -> "wall cpu maxrss_kb size" of one run
measure() {
  local out=$1; shift
  rm -f "$out"
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r wall user sys rss <"$work/time"
  echo "$wall $(awk "BEGIN {print $user + $sys}") $rss $(stat -c %s "$out")"
}

# wanted TREE LABEL: whether the tree gets the setting.
wanted() {
  if [ -n "${SETTINGS:-}" ]; then
    [[ $2 =~ $SETTINGS ]]
    return
  fi
  case $1 in
    go) true ;;
    files100k) [[ $2 =~ zstd ]] ;;
    files500k) [[ $2 =~ zstd|xz ]] ;;
    gen1g | gen4g) [[ $2 =~ "zstd 3"|erofs ]] ;;
  esac
}

# setting label | native command | reference command (SRC, OUT substituted)
settings=(
  "squashfs zstd 3|BAKERY image create SRC OUT --builder native --compression zstd --level 3 --epoch 0|mksquashfs SRC OUT -noappend -all-root -quiet -no-progress -mkfs-time 0 -all-time 0 -comp zstd -Xcompression-level 3"
  "squashfs zstd 15|BAKERY image create SRC OUT --builder native --compression zstd --level 15 --epoch 0|mksquashfs SRC OUT -noappend -all-root -quiet -no-progress -mkfs-time 0 -all-time 0 -comp zstd -Xcompression-level 15"
  "squashfs gzip 9|BAKERY image create SRC OUT --builder native --compression gzip --level 9 --epoch 0|mksquashfs SRC OUT -noappend -all-root -quiet -no-progress -mkfs-time 0 -all-time 0 -comp gzip -Xcompression-level 9"
  "squashfs xz|BAKERY image create SRC OUT --builder native --compression xz --epoch 0|mksquashfs SRC OUT -noappend -all-root -quiet -no-progress -mkfs-time 0 -all-time 0 -comp xz"
  "erofs uncompressed|BAKERY image create SRC OUT --builder native --format erofs --epoch 0|mkfs.erofs --quiet -T0 -Ud7a5c6f0-5a1e-4b3a-9c1d-000000000000 --all-root OUT SRC"
)

# cmdline TEMPLATE SRC OUT -> the command with its placeholders filled in
cmdline() { local c=${1//BAKERY/$bakery}; c=${c//SRC/$2}; echo "${c//OUT/$3}"; }

echo "### Image builders (RUNS=$runs, medians of interleaved runs)"
echo
echo "| tree | setting | tool | wall s | CPU s | cores busy | peak RSS MB | size MB | wall vs ref | size vs ref |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
for tree in $trees; do
  src=$(prepare "$tree")
  tar -cf /dev/null "$src" # warm the page cache
  for s in "${settings[@]}"; do
    IFS='|' read -r label native ref <<<"$s"
    wanted "$tree" "$label" || continue
    : >"$work/a"; : >"$work/b"
    for ((i = 0; i < runs; i++)); do
      # shellcheck disable=SC2046
      measure "$work/out.a" $(cmdline "$native" "$src" "$work/out.a") >>"$work/a"
      # shellcheck disable=SC2046
      measure "$work/out.b" $(cmdline "$ref" "$src" "$work/out.b") >>"$work/b"
    done
    read -r wa ca ra sa <<<"$(medians "$work/a")"
    read -r wb cb rb sb <<<"$(medians "$work/b")"
    awk -v t="$tree" -v l="$label" -v r="${ref%% *}" -v wa="$wa" -v ca="$ca" -v ra="$ra" -v sa="$sa" \
        -v wb="$wb" -v cb="$cb" -v rb="$rb" -v sb="$sb" 'BEGIN {
      printf "| %s | %s | bakery native | %.2f | %.2f | %.2f | %.0f | %.1f | %.2f× | %.3f× |\n", t, l, wa, ca, ca/wa, ra/1024, sa/1048576, wa/wb, sa/sb
      printf "| %s | %s | %s | %.2f | %.2f | %.2f | %.0f | %.1f | 1.00× | 1.000× |\n", t, l, r, wb, cb, cb/wb, rb/1024, sb/1048576 }'
  done
  rm -rf "$src"
done

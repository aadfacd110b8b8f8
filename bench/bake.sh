#!/usr/bin/env bash
# bench/bake.sh BAKERY: a whole bake against the shell pipeline Flatcar's
# sysext-bakery runs (curl, sha256sum -c, tar x, write extension-release,
# mksquashfs), on one fixture: a .tar.gz of the Go toolchain ($(go env
# GOROOT), ~100 MB) served with its SHA256SUMS on loopback. All at zstd 3.
#   pipeline     the shell pipeline, downloading (it has no cache)
#   bake cold    bakery bake with an empty download cache
#   bake warm    bakery bake with the source cached (nothing downloaded)
#   unsorted     the same from an archive not in walk order: the image is
#                written once the tree is staged instead of while it is
#   image create bakery image create of the pipeline's staged tree
# Runs are interleaved (the four, then again), RUNS times (default 5); the
# table shows medians and the ratios issue 14 sets targets for. Each run
# stages everything on one file system: the whole benchmark runs once in
# each of BENCH_DIRS (default "/var/tmp /dev/shm": the disk, then a tmpfs;
# bakery stages under $TMPDIR, set to it). Prints a Markdown section per
# directory on stdout.
set -euo pipefail
bakery=$(realpath "${1:?usage: bench/bake.sh path/to/bakery}")
runs=${RUNS:-5}
cd "$(dirname "$0")/.."
. bench/lib.sh
# bench_on DIR: the whole benchmark with its files in DIR, in a subshell
# that removes them.
bench_on() (
work=$(mktemp -d "$1/bakery-bake.XXXXXX")
trap bench_cleanup EXIT
export TMPDIR=$work

# The fixture and its checksum list, on a loopback web server.
goroot=$(go env GOROOT)
mkdir -p "$work/www" "$work/recipe" "$work/warm-cache"
# go.tar.gz has its members in walk order (sorted by name in each
# directory), as reproducible release tarballs have them (Go's own,
# goreleaser's); unsorted.tar.gz in the order the host lists directories.
tar --sort=name -C "$(dirname "$goroot")" -cf - "$(basename "$goroot")" | gzip -6 >"$work/www/go.tar.gz"
tar -C "$(dirname "$goroot")" -cf - "$(basename "$goroot")" | gzip -6 >"$work/www/unsorted.tar.gz"
(cd "$work/www" && sha256sum go.tar.gz unsorted.tar.gz >SHA256SUMS)
serve_dir "$work/www"

mkdir -p "$work/unsorted-recipe"
cat >"$work/recipe/recipe.yaml" <<RECIPE
name: gotoolchain
description: The Go toolchain, as a benchmark fixture
version: "1.0.0"
arches: [x86-64]
release: {sysext-level: "1.0"}
sources:
  - url: $base/go.tar.gz
    sha256-url: $base/SHA256SUMS
    extract: {strip-components: 1, to: /usr/lib/go}
validate:
  foreign-elf:
    - path: /usr/lib/go/src
      reason: test data of the Go toolchain's own tests (debug/elf and others)
RECIPE
sed 's/go.tar.gz/unsorted.tar.gz/' "$work/recipe/recipe.yaml" >"$work/unsorted-recipe/recipe.yaml"

# What Flatcar's sysext-bakery does for a release tarball, at bakery's
# compression (zstd 3).
cat >"$work/pipeline.sh" <<'PIPELINE'
#!/usr/bin/env bash
set -euo pipefail
base=$1 dir=$2
mkdir -p "$dir/root/usr/lib/go" "$dir/root/usr/lib/extension-release.d"
curl -fsS -o "$dir/go.tar.gz" "$base/go.tar.gz"
curl -fsS -o "$dir/SHA256SUMS" "$base/SHA256SUMS"
(cd "$dir" && sha256sum --quiet --ignore-missing -c SHA256SUMS)
tar -xzf "$dir/go.tar.gz" --strip-components=1 -C "$dir/root/usr/lib/go"
printf 'ID=_any\nSYSEXT_LEVEL=1.0\n' >"$dir/root/usr/lib/extension-release.d/extension-release.gotoolchain"
mksquashfs "$dir/root" "$dir/gotoolchain.raw" -all-root -noappend -quiet -no-progress -comp zstd -Xcompression-level 3
PIPELINE
chmod +x "$work/pipeline.sh"

bake=("$bakery" bake "$work/recipe" --compression zstd --level 3 --epoch 0)
unsorted=("$bakery" bake "$work/unsorted-recipe" --compression zstd --level 3 --epoch 0)
for b in bake unsorted; do
  declare -n cmd=$b
  "${cmd[@]}" --out "$work/warm-out" --cache-dir "$work/warm-cache" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
done

# measure LABEL CMD… appends "wall cpu maxrss_kb" of one run to $work/LABEL.
measure() {
  local label=$1; shift
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r wall user sys rss <"$work/time"
  echo "$wall $(awk "BEGIN {print $user + $sys}") $rss" >>"$work/$label"
}

for ((i = 0; i < runs; i++)); do
  rm -rf "$work/pipe" "$work/cold-cache" "$work/out"
  measure pipeline "$work/pipeline.sh" "$base" "$work/pipe"
  mkdir -p "$work/cold-cache" "$work/out"
  measure cold "${bake[@]}" --out "$work/out" --cache-dir "$work/cold-cache"
  rm -rf "$work/out" && mkdir -p "$work/out"
  measure warm "${bake[@]}" --out "$work/out" --cache-dir "$work/warm-cache"
  rm -rf "$work/out" && mkdir -p "$work/out"
  measure unsorted "${unsorted[@]}" --out "$work/out" --cache-dir "$work/warm-cache"
  measure create "$bakery" image create "$work/pipe/root" "$work/out/create.raw" --compression zstd --level 3 --epoch 0
done

read -r wp cp rp <<<"$(medians "$work/pipeline")"
read -r wc cc rc <<<"$(medians "$work/cold")"
read -r ww cw rw <<<"$(medians "$work/warm")"
read -r wu cu ru <<<"$(medians "$work/unsorted")"
read -r wi ci ri <<<"$(medians "$work/create")"
size=$(du -m "$work/www/go.tar.gz" | cut -f1)
files=$(find "$work/pipe/root" | wc -l)

fstype=$(stat -f -c %T "$work")
echo "### Bake vs the shell pipeline, staged on $fstype (RUNS=$runs, medians of interleaved runs)"
echo
echo "Command: \`BENCH_DIRS=$1 RUNS=$runs bench/bake.sh bin/bakery\`. Fixture: a ${size} MB .tar.gz of"
echo "the Go toolchain ($files entries) with its SHA256SUMS on a loopback web server;"
echo "zstd 3 everywhere. The pipeline is what Flatcar's sysext-bakery runs (curl,"
echo "sha256sum -c, tar x, extension-release, mksquashfs); image create builds the"
echo "pipeline's staged tree. Targets (issue 14): warm ≤ 1.15× image create and"
echo "≤ 0.6× the pipeline, cold ≤ 0.8× the pipeline."
echo
echo "| command | wall s | CPU s | peak RSS MB | vs pipeline | vs image create |"
echo "|---|---:|---:|---:|---:|---:|"
row() { awk -v l="$1" -v w="$2" -v c="$3" -v r="$4" -v p="$wp" -v i="$wi" \
  'BEGIN {printf "| %s | %.2f | %.2f | %.0f | %.2f× | %.2f× |\n", l, w, c, r/1024, w/p, w/i}'; }
row "shell pipeline (curl, sha256sum, tar, mksquashfs)" "$wp" "$cp" "$rp"
row "bakery bake, cold cache" "$wc" "$cc" "$rc"
row "bakery bake, warm cache" "$ww" "$cw" "$rw"
row "bakery bake, warm cache, archive not in walk order" "$wu" "$cu" "$ru"
row "bakery image create (staged tree)" "$wi" "$ci" "$ri"
)

for dir in ${BENCH_DIRS:-/var/tmp /dev/shm}; do
  bench_on "$dir"
  echo
done

#!/usr/bin/env bash
# bench/gobench.sh: the in-process benchmarks whose rows BENCHMARKS.md
# keeps (go test -bench, COUNT runs each, default 5): the catalog page's
# render and serve of 500 extensions × 10 versions (issue 13: < 200 ms),
# bakery plan of a synthetic catalog, and cold and warm bakes of three
# catalog recipes from the fixture mirror (issue 11). Prints a Markdown
# section with the median of each benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'RenderListing|ServeListing' -count "$count" ./page >>"$out"
go test -run '^$' -bench 'Plan' -count "$count" ./bakery >>"$out"
go test -run '^$' -bench 'CatalogBake' -count "$count" ./cmd/bakery >>"$out"

echo "### In-process benchmarks (go test -bench, median of $count)"
echo
echo "Command: \`COUNT=$count bench/gobench.sh\`, which runs"
echo "\`go test -run '^\$' -bench 'RenderListing|ServeListing' ./page\`,"
echo "\`-bench Plan ./bakery\` and \`-bench CatalogBake ./cmd/bakery\` (every"
echo "bake there is a whole \`bakery bake\` process, both arches)."
echo
echo "| benchmark | median ms |"
echo "|---|---:|"
awk '/^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name); for (i = 3; i < NF; i++) if ($(i+1) == "ns/op") print name, $i }' "$out" |
  sort -k1,1 -k2,2g |
  awk '{ if ($1 != n && n != "") emit(); n = $1; v[++k] = $2 } END { emit() }
    function emit() { m = (k % 2) ? v[(k+1)/2] : (v[k/2] + v[k/2+1]) / 2; printf "| %s | %.1f |\n", n, m / 1e6; k = 0 }'

#!/usr/bin/env bash
# bench/plan.sh: wall time of `bakery plan` over a synthetic catalog of
# BENCH_RECIPES recipes shaped like the shipped ones (two url sources
# checked by sha256-url, a files tree, two arches), kept in a git repository
# as the catalog is (plan reads each recipe's last commit time, its epoch).
# The checksum documents are served over loopback for the first plan and
# cached; the median of BENCH_ROUNDS later plans is reported as Markdown.
# The target is under a second.
#
#   bench/plan.sh [BAKERY]          # 35 recipes, 5 rounds
#   BENCH_RECIPES=100 bench/plan.sh
set -euo pipefail

recipes=${BENCH_RECIPES:-35}
rounds=${BENCH_ROUNDS:-5}
repo_root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
. "$repo_root/bench/lib.sh"
trap bench_cleanup EXIT

bakery=${1:-}
if [ -n "$bakery" ]; then
  bakery=$(realpath "$bakery")
else
  (cd "$repo_root" && go build -o "$work/bakery" ./cmd/bakery)
  bakery="$work/bakery"
fi

# The checksum documents, on a loopback web server.
mkdir -p "$work/www" "$work/catalog"
serve_dir "$work/www"

for i in $(seq 1 "$recipes"); do
  name=$(printf 'tool%02d' "$i")
  mkdir -p "$work/www/$name" "$work/catalog/$name/files/usr/lib/systemd/system"
  for arch in amd64 arm64; do
    x=$([ "$arch" = amd64 ] && echo a || echo b)
    printf '%063d%s  %s-1.0.0-linux-%s.tar.gz\n' "$i" "$x" "$name" "$arch" >>"$work/www/$name/SHA256SUMS"
    printf '%062d%s%s\n' "$i" "$x" "$x" >"$work/www/$name/$name-$arch.sha256"
  done
  printf '[Service]\nExecStart=/usr/bin/%s\n' "$name" >"$work/catalog/$name/files/usr/lib/systemd/system/$name.service"
  cat >"$work/catalog/$name/recipe.yaml" <<RECIPE
name: $name
description: Synthetic tool $name
license: Apache-2.0
version: "1.0.0"
arches: [x86-64, arm64]
release: {sysext-level: "1.0", reload-manager: true}
sources:
  - url: $base/$name/$name-{{.Version}}-linux-{{.GoArch}}.tar.gz
    sha256-url: $base/$name/SHA256SUMS
    extract: {strip-components: 1, include: [bin], to: /usr}
  - url: $base/$name/$name-{{.GoArch}}
    sha256-url: $base/$name/$name-{{.GoArch}}.sha256
    install: {to: /usr/bin/$name-helper, mode: "0755"}
  - files: files/
RECIPE
done
git -C "$work/catalog" init -q
git -C "$work/catalog" add .
git -C "$work/catalog" -c user.name=bench -c user.email=bench@localhost commit -qm catalog

export XDG_CACHE_HOME="$work/cache"
cd "$work/catalog"
plan=$("$bakery" plan ./* --json 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
jobs=$(grep -c '"inputsDigest"' <<<"$plan" || true)
[ "$jobs" -gt 0 ] || { echo "bench/plan.sh: the plan lists no jobs" >&2; exit 1; }
times=()
for _ in $(seq "$rounds"); do
  start=$(date +%s.%N)
  "$bakery" plan ./* --json >/dev/null 2>&1
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc)")
done
median=$(printf '%s\n' "${times[@]}" | median)

echo "### bakery plan (RUNS=$rounds, median)"
echo
echo "Command: \`bench/plan.sh\`: \`bakery plan\` of $recipes synthetic recipes ($jobs jobs: two"
echo "sha256-url sources and a files tree each, in a git repository) with every checksum"
echo "document cached; the process's whole run, start to exit. Target: under 1 s."
echo
echo "| recipes | jobs | wall s (median) | all runs |"
echo "|---:|---:|---:|---|"
printf '| %s | %s | %.3f | %s |\n' "$recipes" "$jobs" "$median" "$(printf '%.3f ' "${times[@]}")"

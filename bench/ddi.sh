#!/usr/bin/env bash
# bench/ddi.sh BAKERY: the dm-verity and DDI benchmarks, interleaved A/B
# runs, medians of RUNS (default 5). Prints a Markdown section on stdout.
#  1. the hash tree of a 1 GiB file (random data, in the page cache):
#     bakery's sysext/verity (bench/veritytree, content-derived salt) against
#     `veritysetup format` (Debian 12's, random salt);
#  2. a signed DDI of the Go toolchain (/usr/local/go, ~270 MB, 16.7k
#     entries, as usr/lib/go of an extension, since systemd-repart copies
#     only /usr and /opt): `bakery image create --format ddi --key --cert` against
#     systemd-repart 257 --make-ddi=sysext with the same key and certificate;
#     both run through ../shared/tools/in-debian13, so both pay its
#     namespace set-up. Skipped without it (needs root).
set -euo pipefail
bakery=$(realpath "${1:?usage: bench/ddi.sh path/to/bakery}")
runs=${RUNS:-5}
cd "$(dirname "$0")/.."
. bench/lib.sh
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bakery-bench-ddi.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/veritytree" ./bench/veritytree

# measure CMD… -> "wall cpu" of one run
measure() {
  /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r wall user sys <"$work/time"
  echo "$wall $(awk "BEGIN {print $user + $sys}")"
}

# column FILE N: the median of FILE's column N.
column() { cut -d' ' -f"$2" "$1" | median; }

# row LABEL TOOL A B: a table row of A's medians against B's
row() {
  awk -v l="$1" -v t="$2" -v wa="$(column "$3" 1)" -v ca="$(column "$3" 2)" -v wb="$(column "$4" 1)" -v cb="$(column "$4" 2)" \
    'BEGIN { printf "| %s | %s | %.2f | %.2f | %.2f× | %.2f× |\n", l, t, wa, ca, wa/wb, ca/cb }'
}

echo "### dm-verity and DDIs (RUNS=$runs, medians of interleaved runs)"
echo
echo "Command: \`RUNS=$runs bench/ddi.sh bin/bakery\` (load average $(cut -d' ' -f1-3 /proc/loadavg) when it"
echo "started; where other work shares the cores, CPU time is the steadier figure)."
echo
echo "| job | tool | wall s | CPU s | wall vs ref | CPU vs ref |"
echo "|---|---|---:|---:|---:|---:|"

head -c 1G /dev/urandom >"$work/data"
cat "$work/data" >/dev/null
: >"$work/a"; : >"$work/b"
for ((i = 0; i < runs; i++)); do
  rm -f "$work/hash.a" "$work/hash.b"
  measure "$work/veritytree" "$work/data" "$work/hash.a" >>"$work/a"
  measure veritysetup format "$work/data" "$work/hash.b" >>"$work/b"
done
cmp -s <(tail -c +4097 "$work/hash.a" | wc -c) <(tail -c +4097 "$work/hash.b" | wc -c) || { echo "bench/ddi.sh: hash devices differ in size" >&2; exit 1; }
row "verity tree, 1 GiB" "bakery (sysext/verity)" "$work/a" "$work/b"
row "verity tree, 1 GiB" "veritysetup format $(veritysetup --version | awk '{print $2}')" "$work/b" "$work/b"
rm -f "$work/data" "$work/hash.a" "$work/hash.b"

in13=../shared/tools/in-debian13
if [ "$(id -u)" = 0 ] && [ -x "$in13" ]; then
  mkdir -p "$work/go/usr/lib/extension-release.d"
  cp -a "$(go env GOROOT)" "$work/go/usr/lib/go"
  printf 'ID=_any\nARCHITECTURE=%s\n' "$(case $(uname -m) in x86_64) echo x86-64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac)" >"$work/go/usr/lib/extension-release.d/extension-release.go"
  tar -cf /dev/null -C "$work" go
  openssl req -new -x509 -newkey rsa:2048 -keyout "$work/k.key" -out "$work/k.crt" -days 3650 -subj /CN=bench -nodes 2>/dev/null
  cp "$bakery" "$work/bakery"
  : >"$work/a"; : >"$work/b"
  for ((i = 0; i < runs; i++)); do
    rm -f "$work/ours.raw" "$work/ref.raw"
    measure "$in13" --bind "$work" "$work/bakery" image create "$work/go" "$work/ours.raw" --format ddi --key "$work/k.key" --cert "$work/k.crt" --epoch 0 >>"$work/a"
    measure "$in13" --bind "$work" systemd-repart --make-ddi=sysext --copy-source="$work/go" --private-key="$work/k.key" --certificate="$work/k.crt" --empty=create --size=auto --json=off "$work/ref.raw" >>"$work/b"
  done
  row "signed DDI of the Go tree ($(($(stat -c %s "$work/ours.raw") >> 20)) MiB; systemd-repart's $(($(stat -c %s "$work/ref.raw") >> 20)) MiB)" "bakery image create --format ddi" "$work/a" "$work/b"
  row "signed DDI of the Go tree" "systemd-repart 257 --make-ddi=sysext" "$work/b" "$work/b"
else
  echo
  echo "(DDI row skipped: needs root and ../shared/tools/in-debian13.)"
fi

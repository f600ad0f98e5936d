#!/usr/bin/env bash
# Benchmarks keep-verifier against its peers (dcap-qvl for TDX and SGX, the `sev`
# crate for SEV-SNP) on the same real-hardware vectors, with criterion, and prints
# the median time of one verification per side. Not part of CI: the bench crate
# (bench/verifier) is its own workspace. About two minutes once built.
#
#   ./scripts/bench-verifier.sh                 all benchmarks, then the table
#   SEV_OPENSSL=1 ./scripts/bench-verifier.sh   also the `sev` crate on OpenSSL
#                                               (needs libssl-dev)
#   ./scripts/bench-verifier.sh --table         only print the table of the last run
#
# Criterion's results: bench/verifier/target/criterion/<tee>/<bench>/new/estimates.json.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=bench/verifier/Cargo.toml
out=bench/verifier/target/criterion

if ! command -v jq >/dev/null; then
  echo "installing jq (apt)"; apt-get install -y -qq jq >/dev/null
fi

if [ "${1:-}" != "--table" ]; then
  rm -rf "$out"
  cargo bench --locked --manifest-path "$manifest" --bench verify -- "$@"
  if [ "${SEV_OPENSSL:-0}" = 1 ]; then
    cargo bench --locked --manifest-path "$manifest" --bench verify \
      --no-default-features --features sev-openssl -- 'snp/peer-sev-openssl'
  fi
fi

# Median of one benchmark in µs ("-" when it did not run).
median() {
  local f="$out/$1/$2/new/estimates.json"
  if [ -f "$f" ]; then jq -r '.median.point_estimate / 1000 | . * 10 | round / 10' "$f"; else echo -; fi
}
ratio() {
  if [ "$1" = - ] || [ "$2" = - ]; then echo -; else
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}

echo
echo "median µs per verification ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| TEE | keep cold | keep cached | keep replay | single-signature floor | peer | peer µs | cold/peer | cached/peer |"
echo "|---|---|---|---|---|---|---|---|---|"
for tee in snp tdx sgx; do
  [ -d "$out/$tee" ] || continue
  cold=$(median "$tee" keep-cold)
  warm=$(median "$tee" keep-cached)
  replay=$(median "$tee" keep-replay)
  floor=$(median "$tee" floor)
  for dir in "$out/$tee"/peer-*; do
    [ -d "$dir" ] || continue
    id=$(basename "$dir")
    peer=$(median "$tee" "$id")
    echo "| $tee | $cold | $warm | $replay | $floor | ${id#peer-} | $peer | $(ratio "$cold" "$peer") | $(ratio "$warm" "$peer") |"
  done
done

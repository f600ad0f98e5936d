#!/usr/bin/env bash
# Benchmarks keep-verifier against its peers (dcap-qvl for TDX and SGX, the `sev`
# crate for SEV-SNP) on the same real-hardware vectors, with criterion, and prints
# the median time of one verification per side. Not part of CI: the bench crate
# (bench/verifier) is its own workspace. About 1.5 minutes a run once built.
#
#   ./scripts/bench-verifier.sh                 all benchmarks once, then the table
#   RUNS=3 ./scripts/bench-verifier.sh          three runs; each cell is the median of
#                                               the runs' medians (for a busy machine)
#   SEV_OPENSSL=1 ./scripts/bench-verifier.sh   also the `sev` crate on OpenSSL
#                                               (needs libssl-dev)
#   ./scripts/bench-verifier.sh --table         only print the table of the last runs
#
# Criterion's results: bench/verifier/target/criterion/<tee>/<bench>/new/estimates.json,
# copied after run N to bench/verifier/target/criterion-runs/N/.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=bench/verifier/Cargo.toml
out=bench/verifier/target/criterion

if ! command -v jq >/dev/null; then
  echo "installing jq (apt)"; apt-get install -y -qq jq >/dev/null
fi

RUNS=${RUNS:-1}
runs=bench/verifier/target/criterion-runs
if [ "${1:-}" != "--table" ]; then
  rm -rf "$out" "$runs"
  for i in $(seq 1 "$RUNS"); do
    cargo bench --locked --manifest-path "$manifest" --bench verify -- "$@"
    if [ "${SEV_OPENSSL:-0}" = 1 ]; then
      # Another feature set of `sev` (cargo keeps both builds side by side).
      cargo bench --locked --manifest-path "$manifest" --bench verify \
        --no-default-features --features sev-openssl -- 'snp/peer-sev-openssl'
    fi
    mkdir -p "$runs" && cp -r "$out" "$runs/$i"
  done
fi

# Median over the runs of one benchmark's criterion median, in µs ("-" if it did not run).
median() {
  local f vals=()
  for f in "$runs"/*/"$1/$2/new/estimates.json"; do
    [ -f "$f" ] && vals+=("$(jq -r '.median.point_estimate' "$f")")
  done
  if [ ${#vals[@]} = 0 ]; then echo -; return; fi
  printf '%s\n' "${vals[@]}" | sort -g |
    awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                              printf "%.1f", m / 1000 }'
}
ratio() {
  if [ "$1" = - ] || [ "$2" = - ]; then echo -; else
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}

echo
echo "median µs per verification, $(ls "$runs" | wc -l) run(s) ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| TEE | keep cold | keep cached | keep replay | single-signature floor | peer | peer µs | cold/peer | cached/peer |"
echo "|---|---|---|---|---|---|---|---|---|"
for tee in snp tdx sgx; do
  [ -d "$runs/1/$tee" ] || continue
  cold=$(median "$tee" keep-cold)
  warm=$(median "$tee" keep-cached)
  replay=$(median "$tee" keep-replay)
  floor=$(median "$tee" floor)
  for dir in "$runs"/1/"$tee"/peer-*; do
    [ -d "$dir" ] || continue
    id=$(basename "$dir")
    peer=$(median "$tee" "$id")
    echo "| $tee | $cold | $warm | $replay | $floor | ${id#peer-} | $peer | $(ratio "$cold" "$peer") | $(ratio "$warm" "$peer") |"
  done
done

#!/usr/bin/env bash
# Benchmarks `keep run` (process backend) against the wasmtime CLI 48.0.8 on the same
# fixtures, side by side. Not part of CI. Installs what it needs:
#   hyperfine (Debian), wasmtime-cli 48.0.8 (cargo install, into target/bench-tools).
#
#   ./scripts/bench.sh            all benchmarks, results in target/bench/
#   RUNS=20 ./scripts/bench.sh    more runs per command
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
out=target/bench
mkdir -p "$out"

if ! command -v hyperfine >/dev/null; then
  echo "installing hyperfine (apt)"; apt-get install -y -qq hyperfine >/dev/null
fi
WASMTIME=target/bench-tools/bin/wasmtime
if [ ! -x "$WASMTIME" ] || ! "$WASMTIME" --version | grep -q '48.0.8'; then
  echo "installing wasmtime-cli 48.0.8 (cargo install, several minutes)"
  cargo install wasmtime-cli --version 48.0.8 --locked --root target/bench-tools
fi
cargo build --release --locked -q
KEEP=target/release/keep
export KEEP_CACHE_DIR="$PWD/target/bench/keep-cache"
fx=tests/fixtures
echo "keep:     $($KEEP --version | head -1), exec $($KEEP --version | sed -n 's/exec //p' | cut -c1-20)..."
echo "wasmtime: $($WASMTIME --version)"
echo "machine:  $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# 1. Cold start of a C hello world. wasmtime's CLI caches compiled modules on disk by
#    default; both its default and its no-cache run are measured.
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$out/startup.json" \
  -n keep "$KEEP run $fx/hello.wasm" \
  -n wasmtime "$WASMTIME run $fx/hello.wasm" \
  -n keep-no-cache "$KEEP run --no-cache $fx/hello.wasm" \
  -n wasmtime-no-cache "$WASMTIME run -C cache=n $fx/hello.wasm"

# 2. CPU-bound C fixture.
hyperfine -N --warmup 1 --runs "$(( RUNS / 3 > 3 ? RUNS / 3 : 3 ))" --export-json "$out/cpu.json" \
  -n keep "$KEEP run $fx/cpu.wasm" \
  -n wasmtime "$WASMTIME run $fx/cpu.wasm"

# 3. stdout throughput: 256 MiB written by the workload into a pipe. Without an
#    output cap the Keep writes to it directly; with one the host relays and counts.
hyperfine -N --warmup 2 --runs "$RUNS" --output=pipe --export-json "$out/throughput.json" \
  -n keep "$KEEP run $fx/flood.wasm -- 256" \
  -n wasmtime "$WASMTIME run $fx/flood.wasm 256" \
  -n keep-relayed "$KEEP run --max-output 1GiB $fx/flood.wasm -- 256"

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def mean(name, cmd):
    d = json.load(open(os.path.join(out, name + ".json")))
    return {r["command"]: r for r in d["results"]}[cmd]
print()
print("| benchmark | keep (ms) | wasmtime (ms) | ratio | goal |")
print("|---|---|---|---|---|")
rows = [
    ("startup", "keep", "wasmtime", 1.2),
    ("startup", "keep-no-cache", "wasmtime-no-cache", 1.2),
    ("cpu", "keep", "wasmtime", 1.03),
    ("throughput", "keep", "wasmtime", 1.2),
    ("throughput", "keep-relayed", "wasmtime", None),
]
for name, mine, base, goal in rows:
    k, w = mean(name, mine), mean(name, base)
    ratio = k["mean"] / w["mean"]
    verdict = "-" if goal is None else f"{goal} {'met' if ratio <= goal else 'NOT met'}"
    print(f"| {name}: {mine} vs {base} | {k['mean']*1000:.1f} ± {k['stddev']*1000:.1f} | {w['mean']*1000:.1f} ± {w['stddev']*1000:.1f} | {ratio:.3f} | {verdict} |")
PY

#!/usr/bin/env bash
# What the jail costs (issue 13): cold start of the C hello world and the
# CPU-bound C fixture with the jail on and off (`keep run --no-jail`), on the
# process backend and (where /dev/kvm works) the KVM backend, side by side in one
# run. Not part of CI. Installs hyperfine (Debian) if missing.
#
#   ./scripts/bench-jail.sh          results in target/bench/jail-*.json
#   RUNS=50 ./scripts/bench-jail.sh  more runs per command
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
out=target/bench
mkdir -p "$out"
if ! command -v hyperfine >/dev/null; then
  echo "installing hyperfine (apt)"; apt-get install -y -qq hyperfine >/dev/null
fi
cargo build --release --locked -q
KEEP=target/release/keep
export KEEP_CACHE_DIR="$PWD/target/bench/keep-cache"
fx=tests/fixtures
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$KEEP" platform info | grep -A1 '^jail'

backends=(process)
if "$KEEP" run --backend kvm "$fx/hello.wasm" >/dev/null 2>&1; then backends+=(kvm); fi
for b in "${backends[@]}"; do
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$out/jail-start-$b.json" \
    -n "$b jail" "$KEEP run --backend $b $fx/hello.wasm" \
    -n "$b no jail" "$KEEP run --backend $b --no-jail $fx/hello.wasm"
  hyperfine -N --warmup 1 --runs "$(( RUNS / 3 > 3 ? RUNS / 3 : 3 ))" \
    --export-json "$out/jail-cpu-$b.json" \
    -n "$b jail" "$KEEP run --backend $b $fx/cpu.wasm" \
    -n "$b no jail" "$KEEP run --backend $b --no-jail $fx/cpu.wasm"
done

python3 - "$out" "${backends[@]}" <<'PY'
import json, sys
out, backends = sys.argv[1], sys.argv[2:]
print("\n| benchmark | jail on (ms) | jail off (ms) | on - off (ms) | ratio |")
print("|---|---|---|---|---|")
for b in backends:
    for kind, what in (("start", "cold start, hello.wasm"), ("cpu", "CPU-bound, cpu.wasm")):
        r = json.load(open(f"{out}/jail-{kind}-{b}.json"))["results"]
        on, off = (x["median"] * 1000 for x in r)
        print(f"| {b}: {what} | {on:.2f} | {off:.2f} | {on - off:+.2f} | {on / off:.3f} |")
PY

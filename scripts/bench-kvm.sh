#!/usr/bin/env bash
# Benchmarks `keep run --backend kvm` against `--backend process` on the same
# fixtures (hello cold start, CPU-bound, stdout throughput, memory growth), plus the KVM Keep's
# exits per MiB of output and its guest memory. Not part of CI. Needs /dev/kvm;
# installs hyperfine (Debian) if missing.
#
#   ./scripts/bench-kvm.sh            results in target/bench-kvm/
#   RUNS=20 ./scripts/bench-kvm.sh    more runs per command
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
out=target/bench-kvm
mkdir -p "$out"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "bench-kvm: /dev/kvm is not available; skipped"; exit 0; }
if ! command -v hyperfine >/dev/null; then
  echo "installing hyperfine (apt)"; apt-get install -y -qq hyperfine >/dev/null
fi
cargo build --release --locked -q -p keep-cli
KEEP=target/release/keep
export KEEP_CACHE_DIR="$PWD/target/bench-kvm/keep-cache"
fx=tests/fixtures
echo "keep:    $($KEEP --version | head -1), exec $($KEEP --version | sed -n 's/exec //p' | cut -c1-20)..."
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kvm: $(lsmod 2>/dev/null | grep -o '^kvm_[a-z]*' | head -1)"

# 1. Cold start of a C hello world. The KVM Keep never uses the host's compiled-code
#    cache, so the process backend is measured with and without its cache.
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$out/startup.json" \
  -n process "$KEEP run $fx/hello.wasm" \
  -n process-no-cache "$KEEP run --no-cache $fx/hello.wasm" \
  -n kvm "$KEEP run --backend kvm $fx/hello.wasm"

# 2. CPU-bound C fixture (450 M iterations).
hyperfine -N --warmup 1 --runs "$(( RUNS / 3 > 3 ? RUNS / 3 : 3 ))" --export-json "$out/cpu.json" \
  -n process "$KEEP run --no-cache $fx/cpu.wasm" \
  -n kvm "$KEEP run --backend kvm $fx/cpu.wasm"

# 3. stdout throughput: 256 MiB into a pipe, 64 KiB writes by the workload.
hyperfine -N --warmup 1 --runs "$(( RUNS / 2 > 3 ? RUNS / 2 : 3 ))" --output=pipe --export-json "$out/throughput.json" \
  -n process "$KEEP run --no-cache $fx/flood.wasm -- 256" \
  -n process-relayed "$KEEP run --no-cache --max-output 1GiB $fx/flood.wasm -- 256" \
  -n kvm "$KEEP run --backend kvm $fx/flood.wasm -- 256"

# 4. Linear-memory growth: one memory.grow to 767 MiB (just under the default
#    limit), then the same with a write to every 4 KiB page (first touches).
hyperfine -N --warmup 1 --runs "$(( RUNS / 2 > 3 ? RUNS / 2 : 3 ))" --export-json "$out/grow.json" \
  -n process "$KEEP run --no-cache $fx/grow_to.wasm -- 767" \
  -n kvm "$KEEP run --backend kvm $fx/grow_to.wasm -- 767"
hyperfine -N --warmup 1 --runs "$(( RUNS / 2 > 3 ? RUNS / 2 : 3 ))" --export-json "$out/touch.json" \
  -n process "$KEEP run --no-cache $fx/grow_to.wasm -- 767 touch" \
  -n kvm "$KEEP run --backend kvm $fx/grow_to.wasm -- 767 touch"

# 5. VM exits and host calls per MiB of output, and the guest memory (from --stats
#    --json: the host's view of the Keep).
KEEP_VMM_STATS=1 $KEEP run --backend kvm --stats --json $fx/flood.wasm -- 64 2>"$out/exits.json" >/dev/null
$KEEP run --backend kvm --stats --json $fx/hello.wasm 2>"$out/hello-stats.json" >/dev/null
$KEEP run --stats --json --no-cache $fx/hello.wasm 2>"$out/hello-stats-process.json" >/dev/null

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def res(name):
    d = json.load(open(os.path.join(out, name + ".json")))
    return {r["command"]: r for r in d["results"]}
def ms(r): return f"{r['mean']*1000:.1f} ± {r['stddev']*1000:.1f}"
print()
print("| benchmark | process (ms) | kvm (ms) | kvm / process | goal |")
print("|---|---|---|---|---|")
rows = [("startup", "cold start, C hello world (process: no cache)", "process-no-cache", None),
        ("startup", "cold start, C hello world (process: its cache)", "process", None),
        ("cpu", "CPU-bound C fixture (cpu.wasm, 450 M iterations)", "process", 1.05),
        ("throughput", "stdout, 256 MiB into a pipe (flood.wasm 256)", "process", 2.0),
        ("throughput", "same, process relaying with an output cap", "process-relayed", 2.0),
        ("grow", "memory.grow to 767 MiB (grow_to.wasm 767)", "process", 5.0),
        ("touch", "same, then a write to every 4 KiB page", "process", None)]
for bench, label, base, goal in rows:
    r = res(bench)
    p, k = r[base], r["kvm"]
    ratio = k["mean"] / p["mean"]
    g = "none" if goal is None else (f"≤ {goal}, " + ("met" if ratio <= goal else "not met"))
    print(f"| {label} | {ms(p)} | {ms(k)} | {ratio:.2f} | {g} |")
def last_json(path):
    for line in reversed(open(path).read().splitlines()):
        if line.startswith("{"): return json.loads(line)
    return {}
e = last_json(os.path.join(out, "exits.json"))
s = e.get("stats") or {}
if s.get("vm_exits") is not None:
    print(f"\nflood.wasm 64 on kvm: {s['vm_exits']} VM exits, {s['host_calls']} host calls: "
          f"{s['host_calls']/64:.1f} host calls per MiB of output")
h = (last_json(os.path.join(out, "hello-stats.json")).get("stats") or {})
hp = (last_json(os.path.join(out, "hello-stats-process.json")).get("stats") or {})
print(f"hello on kvm: a VM of {(h.get('vm_memory_bytes') or 0)/2**20:.0f} MiB (fixed at launch), "
      f"{h.get('peak_memory_bytes',0)/2**20:.1f} MiB of it backed by the host, "
      f"{h.get('guest_used_bytes',0)/2**20:.1f} MiB handed out by the shim; process backend peak RSS "
      f"{hp.get('peak_memory_bytes',0)/2**20:.1f} MiB")
PY

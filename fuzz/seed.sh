#!/usr/bin/env bash
# Builds seed inputs for the verifier fuzz targets from the committed real-hardware
# vectors (crates/verifier/keep-verifier/tests/vectors) into fuzz/seeds/<target>/.
#   ./seed.sh && cargo +nightly fuzz run snp_report corpus/snp_report seeds/snp_report
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
V=../crates/verifier/keep-verifier/tests/vectors
rm -rf seeds
mkdir -p seeds/{snp_report,dcap_quote,dcap_collateral,x509,bundle,policy}
for c in "$V"/snp/*/; do
    n=$(basename "$c")
    [[ -f "$c/report.bin" ]] && cp "$c/report.bin" "seeds/snp_report/$n.bin"
    for f in "$c"/*.der "$c"/*.pem; do
        [[ -f "$f" ]] && cp "$f" "seeds/x509/$n-$(basename "$f")"
    done
done
for c in "$V"/tdx/*/ "$V"/sgx/*/; do
    n=$(basename "$c")
    cp "$c/quote.bin" "seeds/dcap_quote/$n.bin"
    if [[ -f "$c/collateral.json" ]]; then
        cp "$c/collateral.json" "seeds/dcap_collateral/$n.json"
        python3 - "$c/collateral.json" "seeds/dcap_collateral/$n" "seeds/x509/$n" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
open(sys.argv[2] + "-tcb.json", "w").write(d["tcb_info"])
open(sys.argv[2] + "-qe.json", "w").write(d["qe_identity"])
open(sys.argv[3] + "-tcb-chain.pem", "w").write(d["tcb_info_issuer_chain"])
open(sys.argv[3] + "-pck-crl.hex", "w").write(d["pck_crl"])
PY
    fi
done
cp ../examples/policy.toml seeds/policy/
python3 - "$V" <<'PY'
import sys
# A minimal version-1 bundle (CBOR) around a real SNP report and VCEK.
v = sys.argv[1]
def head(major, n):
    if n < 24: return bytes([major << 5 | n])
    if n < 256: return bytes([major << 5 | 24, n])
    if n < 65536: return bytes([major << 5 | 25]) + n.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + n.to_bytes(4, "big")
def text(s): b = s.encode(); return head(3, len(b)) + b
def bstr(b): return head(2, len(b)) + b
report = open(f"{v}/snp/milan-virtee/report.bin", "rb").read()
vcek = open(f"{v}/snp/milan-virtee/vcek.der", "rb").read()
out = head(5, 4) + text("version") + head(0, 1) + text("tee") + text("sev-snp")
out += text("evidence") + bstr(report) + text("certs") + head(4, 1) + bstr(vcek)
open("seeds/bundle/snp.cbor", "wb").write(out)
PY
echo "seeds: $(find seeds -type f | wc -l) files"

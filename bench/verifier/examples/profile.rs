//! A loop for a profiler: `perf record` over N verifications of one vector.
//!
//!   cargo run --release --manifest-path bench/verifier/Cargo.toml --example profile -- tdx replay 20000
//!
//! Modes: `cold` (no cache), `replay` (a cache holding every signature), `peer`
//! (dcap-qvl). Under `valgrind --tool=callgrind` the instruction counts compare the
//! two sides on a busy machine.

use std::path::PathBuf;

use keep_verifier::dcap::{self, Collateral, SgxPolicy, TdxPolicy};
use keep_verifier::{Options, SignatureCache, UnixTime};

fn vector(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verifier/keep-verifier/tests/vectors")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (case, now) = match args.get(1).map(String::as_str) {
        Some("sgx") => ("sgx/dcap-qvl-config-sw-hardening", 1_752_919_277),
        _ => ("tdx/dcap-qvl-uptodate", 1_752_919_234),
    };
    let mode = args.get(2).map(String::as_str).unwrap_or("replay");
    let n: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let quote = vector(&format!("{case}/quote.bin"));
    let json = vector(&format!("{case}/collateral.json"));
    let collateral = Collateral::from_json(&json).unwrap();
    if mode == "peer" {
        let peer: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(&json).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..n {
            dcap_qvl::verify::verify(&quote, &peer, now as u64).expect("dcap-qvl verifies");
        }
        println!(
            "{case} dcap-qvl: {:.1} µs per verification",
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
        return;
    }
    let (tdx, sgx) = (TdxPolicy::default(), SgxPolicy::default());
    let cache = SignatureCache::new(64);
    let t = std::time::Instant::now();
    let mut genuine = 0;
    for _ in 0..n {
        let opts = if mode == "cold" {
            Options::default()
        } else {
            Options {
                cache: Some(&cache),
                ..Options::default()
            }
        };
        let v = dcap::verify(&quote, Some(&collateral), &tdx, &sgx, UnixTime(now), opts);
        genuine += v.genuine() as u32;
    }
    println!(
        "{case} {mode}: {:.1} µs per verification, {genuine}/{n} genuine",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

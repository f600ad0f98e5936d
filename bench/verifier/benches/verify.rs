//! keep-verifier against its peers on the same real-hardware vectors.
//!
//! For each TEE (group `snp`, `tdx`, `sgx`):
//! - `keep-cold`: `Options::default()`, every signature of the chain, the collateral
//!   and the report is checked on each verification;
//! - `keep-cached`: the realistic warm verifier. Before each timed verification a
//!   fresh `SignatureCache` is warmed (untimed) with everything but the per-report
//!   signature (by verifying a copy of the evidence whose report/quote signature is
//!   broken: only successes are cached), so the timed call pays for that one
//!   signature plus every non-signature check;
//! - `keep-replay`: the same evidence again with a cache holding all its
//!   signatures (no signature math at all): an upper bound, not a real workload;
//! - `floor`: the one signature no cache can skip (SNP: ECDSA P-384 over the
//!   report; DCAP: ECDSA P-256 of the attestation key over header and body),
//!   with aws-lc-rs through `keep_verifier::pki::verify_signature`;
//! - the peer: `sev` (SNP) or `dcap-qvl` (TDX, SGX).
//!
//! Each side is asserted, before timing, to judge the vector genuine.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use keep_verifier::dcap::{self, Collateral, Quote, SgxPolicy, TdxPolicy};
use keep_verifier::pki::{Cert, SigAlg, verify_signature};
use keep_verifier::snp::{self, Report, SnpEvidence, SnpPolicy};
use keep_verifier::{Options, SignatureCache, UnixTime, Verification};

/// The verifier crate's copy of the vectors, else the shared one.
fn vector(rel: &str) -> Vec<u8> {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verifier/keep-verifier/tests/vectors")
        .join(rel);
    let path = if local.exists() {
        local
    } else {
        PathBuf::from("/work/shared/vectors").join(rel)
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn amd_root(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verifier/keep-verifier/roots/amd/milan")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn assert_genuine(what: &str, v: &Verification) {
    assert!(
        v.genuine(),
        "{what}: not genuine: {:?}",
        v.evidence
            .failures()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
    );
}

fn cached(cache: &SignatureCache) -> Options<'_> {
    Options {
        cache: Some(cache),
        ..Options::default()
    }
}

/// Times `run` with a fresh cache that `warm` filled, untimed, before each call.
fn iter_warm<W: Fn(&SignatureCache), R: Fn(&SignatureCache) -> Verification>(
    iters: u64,
    warm: &W,
    run: &R,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let cache = SignatureCache::new(64);
        warm(&cache);
        let t = Instant::now();
        black_box(run(black_box(&cache)));
        total += t.elapsed();
    }
    total
}

// ---------------------------------------------------------------- SEV-SNP

mod sev_peer {
    use sev::certs::snp::{Certificate, Verifiable, ca};
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;

    /// What a `sev` user does: parse the VCEK and the report, check ARK (self-signed)
    /// -> ASK -> VCEK, then the report's signature with the VCEK (the steps of
    /// `(&Chain, &AttestationReport).verify()`, without cloning the CA chain).
    pub fn verify(ca: &ca::Chain, vcek_der: &[u8], report: &[u8]) -> std::io::Result<()> {
        let vek = Certificate::from_der(vcek_der)?;
        let report = AttestationReport::from_bytes(report)?;
        let ask = ca.verify()?;
        (ask, &vek).verify()?;
        (&vek, &report).verify()
    }

    pub fn ca(ark_pem: &[u8], ask_pem: &[u8]) -> ca::Chain {
        ca::Chain {
            ark: Certificate::from_pem(ark_pem).unwrap(),
            ask: Certificate::from_pem(ask_pem).unwrap(),
        }
    }
}

fn bench_snp(c: &mut Criterion) {
    let report = vector("snp/milan-virtee/report.bin");
    let vcek = vector("snp/milan-virtee/vcek.der");
    let now = UnixTime::parse("2025-01-01T00:00:00Z").unwrap();
    let policy = SnpPolicy::default();
    let keep = |report: &[u8], opts: Options<'_>| {
        snp::verify(
            &SnpEvidence {
                report,
                vcek: &vcek,
                chain: None,
                crls: &[],
            },
            &policy,
            now,
            opts,
        )
    };
    // The same report with its signature broken (low byte of r): warms a cache with
    // the chain's signatures only.
    let mut broken = report.clone();
    broken[0x2A0] ^= 1;
    let warm = |cache: &SignatureCache| {
        assert!(!keep(&broken, cached(cache)).genuine());
    };

    assert_genuine("keep cold", &keep(&report, Options::default()));
    let probe = SignatureCache::new(64);
    warm(&probe);
    let chain_entries = probe.len();
    assert_genuine("keep cached", &keep(&report, cached(&probe)));
    assert_eq!(
        probe.len(),
        chain_entries + 1,
        "only the report signature is left to check"
    );
    let replay = SignatureCache::new(64);
    assert_genuine("keep replay", &keep(&report, cached(&replay)));

    let ca = sev_peer::ca(&amd_root("ark.pem"), &amd_root("ask.pem"));
    sev_peer::verify(&ca, &vcek, &report).expect("sev verifies the vector");
    assert!(
        sev_peer::verify(&ca, &vcek, &broken).is_err(),
        "sev refuses a broken signature"
    );

    let vcek_key = Cert::from_der(&vcek).unwrap().public_key().to_vec();
    let parsed = Report::parse(&report).unwrap();
    let signed = parsed.signed_part().to_vec();
    let sig = parsed.signature_p384().unwrap();
    assert!(verify_signature(
        SigAlg::EcdsaP384Sha384Fixed,
        &vcek_key,
        &signed,
        &sig,
        None
    ));

    let mut g = c.benchmark_group("snp");
    g.bench_function("keep-cold", |b| {
        b.iter(|| keep(black_box(&report), Options::default()))
    });
    g.bench_function("keep-cached", |b| {
        b.iter_custom(|iters| iter_warm(iters, &warm, &|cache| keep(&report, cached(cache))))
    });
    g.bench_function("keep-replay", |b| {
        b.iter(|| keep(black_box(&report), cached(&replay)))
    });
    g.bench_function("floor", |b| {
        b.iter(|| {
            verify_signature(
                SigAlg::EcdsaP384Sha384Fixed,
                black_box(&vcek_key),
                black_box(&signed),
                black_box(&sig),
                None,
            )
        })
    });
    // The id names the back end, so both can be in one table (scripts/bench-verifier.sh).
    let peer_id = if cfg!(feature = "sev-openssl") {
        "peer-sev-openssl"
    } else {
        "peer-sev"
    };
    g.bench_function(peer_id, |b| {
        b.iter(|| sev_peer::verify(&ca, black_box(&vcek), black_box(&report)))
    });
    g.finish();
}

// ---------------------------------------------------------------- DCAP

fn bench_dcap(c: &mut Criterion, group: &str, case: &str, now: i64, peer_status: &str) {
    let quote = vector(&format!("{case}/quote.bin"));
    let json = vector(&format!("{case}/collateral.json"));
    let collateral = Collateral::from_json(&json).unwrap();
    let (tdx, sgx) = (TdxPolicy::default(), SgxPolicy::default());
    let keep = |quote: &[u8], opts: Options<'_>| {
        dcap::verify(quote, Some(&collateral), &tdx, &sgx, UnixTime(now), opts)
    };

    let parsed = Quote::parse(&quote).unwrap();
    let signed = parsed.signed_bytes().to_vec();
    let mut key = vec![0x04];
    key.extend_from_slice(&parsed.attestation_key);
    let sig = parsed.signature;
    assert!(verify_signature(
        SigAlg::EcdsaP256Sha256Fixed,
        &key,
        &signed,
        &sig,
        None
    ));

    // The quote with its attestation-key signature broken: warms a cache with every
    // other signature (PCK chain, QE report, CRLs, TCB info, QE identity).
    let sig_at = signed.len() + 4;
    assert_eq!(quote[sig_at..sig_at + 64], sig[..]);
    let mut broken = quote.clone();
    broken[sig_at + 63] ^= 1;
    let warm = |cache: &SignatureCache| {
        assert!(!keep(&broken, cached(cache)).genuine());
    };

    assert_genuine("keep cold", &keep(&quote, Options::default()));
    let probe = SignatureCache::new(64);
    warm(&probe);
    let other_entries = probe.len();
    assert_genuine("keep cached", &keep(&quote, cached(&probe)));
    assert_eq!(
        probe.len(),
        other_entries + 1,
        "only the quote signature is left to check"
    );
    let replay = SignatureCache::new(64);
    assert_genuine("keep replay", &keep(&quote, cached(&replay)));

    let peer_collateral: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(&json).unwrap();
    let peer = |quote: &[u8]| dcap_qvl::verify::verify(quote, &peer_collateral, now as u64);
    let report = peer(&quote).expect("dcap-qvl verifies the vector");
    assert_eq!(report.status, peer_status);
    assert!(
        peer(&broken).is_err(),
        "dcap-qvl refuses a broken signature"
    );

    let mut g = c.benchmark_group(group);
    g.bench_function("keep-cold", |b| {
        b.iter(|| keep(black_box(&quote), Options::default()))
    });
    g.bench_function("keep-cached", |b| {
        b.iter_custom(|iters| iter_warm(iters, &warm, &|cache| keep(&quote, cached(cache))))
    });
    g.bench_function("keep-replay", |b| {
        b.iter(|| keep(black_box(&quote), cached(&replay)))
    });
    g.bench_function("floor", |b| {
        b.iter(|| {
            verify_signature(
                SigAlg::EcdsaP256Sha256Fixed,
                black_box(&key),
                black_box(&signed),
                black_box(&sig),
                None,
            )
        })
    });
    g.bench_function("peer-dcap-qvl", |b| b.iter(|| peer(black_box(&quote))));
    g.finish();
}

fn bench_tdx(c: &mut Criterion) {
    bench_dcap(c, "tdx", "tdx/dcap-qvl-uptodate", 1752919234, "UpToDate");
}

fn bench_sgx(c: &mut Criterion) {
    bench_dcap(
        c,
        "sgx",
        "sgx/dcap-qvl-config-sw-hardening",
        1752919277,
        "ConfigurationAndSWHardeningNeeded",
    );
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .nresamples(20_000)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_snp, bench_tdx, bench_sgx
}
criterion_main!(benches);

//! Tampering: every single-bit change to a genuine SEV-SNP report, in the signed
//! part or in the signature field, must make it not genuine; and so must every
//! single-byte change to a VCEK or VLEK. A shared signature cache keeps the chain
//! checks cheap, so each flip mostly costs one ECDSA verification.

use keep_verifier::snp::{self, SnpEvidence, SnpPolicy};
use keep_verifier::{Options, SignatureCache, UnixTime, Verdict, Verification};

/// The report size and the end of its signed part.
const REPORT_SIZE: usize = 0x4A0;
const SIGNED_LEN: usize = 0x2A0;

/// Each case: directory, key file, supplied chain, a time when it verifies.
const CASES: [(&str, &str, Option<&str>, &str); 6] = [
    ("milan-virtee", "vcek.der", None, "2023-04-04"),
    ("milan-trustee", "vcek.der", None, "2023-01-25"),
    ("milan-vlek-aws", "vlek.der", None, "2025-06-01"),
    ("genoa-oak-v5", "vcek.der", None, "2025-09-12"),
    ("turin-oak-v5", "vcek.der", None, "2025-09-12"),
    (
        "milan-debug-policy",
        "vcek.der",
        Some("chain.pem"),
        "2022-09-25",
    ),
];

fn read(case: &str, file: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/vectors/snp/{case}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Evidence {
    name: &'static str,
    report: Vec<u8>,
    key: Vec<u8>,
    chain: Option<Vec<u8>>,
    now: UnixTime,
}

fn load() -> Vec<Evidence> {
    CASES
        .iter()
        .map(|(name, key, chain, now)| Evidence {
            name,
            report: read(name, "report.bin"),
            key: read(name, key),
            chain: chain.map(|c| read(name, c)),
            now: UnixTime::parse(now).unwrap(),
        })
        .collect()
}

fn verify(e: &Evidence, report: &[u8], key: &[u8], cache: &SignatureCache) -> Verification {
    snp::verify(
        &SnpEvidence {
            report,
            vcek: key,
            chain: e.chain.as_deref(),
            crls: &[],
        },
        &SnpPolicy::default(),
        e.now,
        Options {
            cache: Some(cache),
            ..Options::default()
        },
    )
}

/// Flips every bit of `range` in the report, one at a time; returns how many.
fn flip_report_bits(e: &Evidence, range: std::ops::Range<usize>, cache: &SignatureCache) -> usize {
    let mut report = e.report.clone();
    let mut count = 0;
    for byte in range {
        for bit in 0..8 {
            report[byte] ^= 1 << bit;
            let v = verify(e, &report, &e.key, cache);
            assert_eq!(
                v.verdict,
                Verdict::NotGenuine,
                "{}: flipping bit {bit} of byte {byte:#x} went unnoticed",
                e.name
            );
            if byte < SIGNED_LEN {
                assert!(
                    v.evidence.failed("snp.report.signature"),
                    "{}: byte {byte:#x} bit {bit} is signed",
                    e.name
                );
            }
            report[byte] ^= 1 << bit;
            count += 1;
        }
    }
    count
}

/// Runs `work` on each case, split over two threads.
fn on_two_threads(cases: &[Evidence], work: impl Fn(&Evidence) -> usize + Sync) -> usize {
    let (a, b) = cases.split_at(cases.len() / 2);
    std::thread::scope(|s| {
        let left = s.spawn(|| a.iter().map(&work).sum::<usize>());
        let right: usize = b.iter().map(&work).sum();
        left.join().unwrap() + right
    })
}

#[test]
fn every_bit_flip_in_the_signed_part_of_every_report_is_caught() {
    let cases = load();
    let cache = SignatureCache::new(10_000);
    for e in &cases {
        let v = verify(e, &e.report, &e.key, &cache);
        assert_ne!(v.verdict, Verdict::NotGenuine, "{} is genuine", e.name);
    }
    let flips = on_two_threads(&cases, |e| flip_report_bits(e, 0..SIGNED_LEN, &cache));
    assert_eq!(flips, cases.len() * SIGNED_LEN * 8);
    println!(
        "signed part: {flips} single-bit flips over {} reports, all not genuine",
        cases.len()
    );
}

#[test]
fn every_bit_flip_in_the_signature_field_is_caught() {
    let cases = load();
    let cache = SignatureCache::new(10_000);
    let flips = on_two_threads(&cases, |e| {
        flip_report_bits(e, SIGNED_LEN..REPORT_SIZE, &cache)
    });
    assert_eq!(flips, cases.len() * (REPORT_SIZE - SIGNED_LEN) * 8);
    println!(
        "signature field: {flips} single-bit flips over {} reports, all not genuine",
        cases.len()
    );
}

#[test]
fn every_byte_change_in_every_vcek_and_vlek_is_caught() {
    let cases = load();
    let cache = SignatureCache::new(10_000);
    let changes = on_two_threads(&cases, |e| {
        let mut key = e.key.clone();
        for i in 0..key.len() {
            key[i] ^= 0x01;
            let v = verify(e, &e.report, &key, &cache);
            assert_eq!(
                v.verdict,
                Verdict::NotGenuine,
                "{}: changing byte {i} of the key certificate went unnoticed",
                e.name
            );
            key[i] ^= 0x01;
        }
        key.len()
    });
    println!("certificates: {changes} single-byte changes, all not genuine");
}

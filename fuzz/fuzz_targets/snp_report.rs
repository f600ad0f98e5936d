//! Arbitrary bytes as an SEV-SNP report (parser, then a full verification against a
//! real VCEK) and as a VCEK whose AMD extensions are decoded.
//!
//! cd fuzz && cargo +nightly fuzz run snp_report

#![no_main]

use keep_verifier::pki::Cert;
use keep_verifier::snp::{self, SnpEvidence};
use keep_verifier::{Options, UnixTime};
use libfuzzer_sys::fuzz_target;

const VCEK: &[u8] = include_bytes!("../../crates/verifier/keep-verifier/tests/vectors/snp/milan-virtee/vcek.der");

fuzz_target!(|data: &[u8]| {
    let _ = snp::Report::parse(data);
    let ev = SnpEvidence { report: data, vcek: VCEK, chain: None, crls: &[] };
    let _ = snp::verify(&ev, &Default::default(), UnixTime(1_700_000_000), Options::default());
    if let Ok(cert) = Cert::from_der(data) {
        let _ = snp::parse_vcek_extensions(&cert);
    }
});

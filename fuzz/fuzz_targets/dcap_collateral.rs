//! Arbitrary bytes as DCAP collateral: the QuoteCollateralV3 JSON, a TCB info and a
//! QE identity document, then a verification of a real quote with that collateral.
//!
//! cd fuzz && cargo +nightly fuzz run dcap_collateral

#![no_main]

use keep_verifier::dcap;
use keep_verifier::{Options, UnixTime};
use libfuzzer_sys::fuzz_target;

const QUOTE: &[u8] =
    include_bytes!("../../crates/verifier/keep-verifier/tests/vectors/tdx/dcap-qvl-uptodate/quote.bin");

fuzz_target!(|data: &[u8]| {
    let _ = dcap::TcbInfo::parse(data);
    let _ = dcap::QeIdentity::parse(data);
    if let Ok(c) = dcap::Collateral::from_json(data) {
        let _ = dcap::verify(QUOTE, Some(&c), &Default::default(), &Default::default(), UnixTime(1_752_919_234), Options::default());
    }
});

//! Arbitrary bytes as a DCAP quote (SGX v3, TDX v4/v5): the parser, the PCK
//! extensions of any certificate in it, and a verification without collateral.
//!
//! cd fuzz && cargo +nightly fuzz run dcap_quote

#![no_main]

use keep_verifier::dcap;
use keep_verifier::pki::Cert;
use keep_verifier::{Options, UnixTime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dcap::Quote::parse(data);
    let _ = dcap::quote_tee(data);
    let _ = dcap::verify(data, None, &Default::default(), &Default::default(), UnixTime(1_700_000_000), Options::default());
    if let Ok(cert) = Cert::from_der(data) {
        let _ = dcap::parse_pck_extensions(&cert);
    }
});

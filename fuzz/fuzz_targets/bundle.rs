//! Arbitrary bytes as an evidence bundle (CBOR), verified when it decodes.
//!
//! cd fuzz && cargo +nightly fuzz run bundle

#![no_main]

use keep_verifier::bundle::{Bundle, verify_bundle};
use keep_verifier::{Options, Policy, UnixTime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::from_cbor(data) {
        let _ = verify_bundle(&b, &Policy::default(), UnixTime(1_700_000_000), Options::default());
    }
});

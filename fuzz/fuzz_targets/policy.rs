//! Arbitrary text as a verifier policy file (TOML).
//!
//! cd fuzz && cargo +nightly fuzz run policy

#![no_main]

use keep_verifier::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Policy::from_toml(text);
    }
});

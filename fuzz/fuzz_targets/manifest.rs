//! Arbitrary text through the manifest parser, as both formats, and through the
//! size and duration parsers. Any panic, overflow or hang is a bug.
//!
//! cd fuzz && cargo +nightly fuzz run manifest

#![no_main]

use std::path::Path;

use keep_manifest::{Manifest, parse_duration_ms, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    for origin in ["fuzz/Keep.toml", "fuzz/Enarx.toml"] {
        if let Err(error) = Manifest::parse(text, Path::new(origin)) {
            let message = error.to_string();
            assert!(!message.contains('\n'), "error message spans lines: {message:?}");
        }
    }
    let _ = parse_size(text);
    let _ = parse_duration_ms(text);
});

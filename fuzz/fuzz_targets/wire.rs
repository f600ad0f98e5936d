//! Arbitrary bytes as a launch-channel stream, as either side would read it: frames
//! with bounded sizes, then the JSON payloads each side parses. Any panic is a bug.
//!
//! cd fuzz && cargo +nightly fuzz run wire

#![no_main]

use keep_wire::{ExitReport, FrameKind, LaunchSpec, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    // At most a few frames per input; a small limit keeps allocations bounded.
    for _ in 0..8 {
        let Ok(frame) = read_frame(&mut stream, 1 << 16) else { break };
        match frame.kind {
            FrameKind::Launch => {
                let _ = frame.expect_json::<LaunchSpec>(FrameKind::Launch);
            }
            FrameKind::Exit => {
                let _ = frame.expect_json::<ExitReport>(FrameKind::Exit);
            }
            _ => {}
        }
    }
});

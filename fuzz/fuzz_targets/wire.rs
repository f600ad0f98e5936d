//! Arbitrary bytes as a launch-channel stream, as either side would read it: frames
//! with bounded sizes, then the JSON payloads each side parses; and the same bytes
//! as a tenant's stdin request body, split into Input frames in pieces as the agent
//! receives them. Any panic is a bug.
//!
//! cd fuzz && cargo +nightly fuzz run wire

#![no_main]

use keep_wire::{ExitReport, FrameKind, FrameSplitter, LaunchSpec, read_frame};
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
    // The agent's stdin route: pieces of a size the first byte picks.
    let size = usize::from(data.first().copied().unwrap_or(1).max(1));
    let mut splitter = FrameSplitter::new(FrameKind::Input);
    let mut whole = 0usize;
    'pieces: for piece in data.chunks(size) {
        splitter.push(piece);
        loop {
            match splitter.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() >= 8 && frame[..4] == [11, 0, 0, 0]);
                    whole += frame.len();
                }
                Ok(None) => break,
                Err(_) => break 'pieces,
            }
        }
    }
    assert!(whole <= data.len());
});

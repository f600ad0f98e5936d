//! Writing to stdout without panicking (`println!` panics when stdout fails).
//!
//! Rust ignores SIGPIPE, so a reader that went away (`keep verify ... | head -1`)
//! shows up as EPIPE on a write: output stops quietly, later writes are skipped, and
//! the command's exit status is whatever it would have been. Any other write error
//! (`> /dev/full`) is returned as [`StdoutError`]: `main` prints it on one line and
//! exits 125.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout's reader has gone (EPIPE): nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// A write to stdout failed for another reason than a closed pipe.
#[derive(Debug)]
pub struct StdoutError(std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

/// Writes `bytes` to stdout and flushes. A closed pipe is not an error.
pub fn write_bytes(bytes: &[u8]) -> Result<(), StdoutError> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(StdoutError(e)),
    }
}

/// Writes one line (`text` and a newline) to stdout, as [`write_bytes`].
pub fn line(text: impl std::fmt::Display) -> Result<(), StdoutError> {
    write_bytes(format!("{text}\n").as_bytes())
}

/// `println!` that returns the write error instead of panicking: `outln!(...)?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

//! Reading an input file with a cap on the read itself.
//!
//! A file's reported size says nothing for a pipe, a `<(...)` substitution or a
//! device (it is 0), so the cap is applied while reading: at most `max + 1` bytes
//! are read, and one byte over is an error. `/dev/zero` or an endless pipe stops at
//! the cap.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Reads `path` (a file, a pipe or a device), refusing more than `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!("{}: over the {max} byte limit", path.display());
    }
    Ok(bytes)
}

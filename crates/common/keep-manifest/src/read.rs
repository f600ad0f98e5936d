//! Reading a manifest file without reading more than the size limit.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::MAX_MANIFEST_BYTES;
use crate::error::{Location, ManifestError};
use crate::position::position_of;

/// Reads at most [`MAX_MANIFEST_BYTES`] (plus one, to tell a file that is too
/// large) and checks that it is UTF-8.
pub(crate) fn read_manifest(path: &Path) -> Result<String, ManifestError> {
    let at = |position| Location {
        path: path.to_path_buf(),
        position,
    };
    let read_error = |error| ManifestError::Read {
        at: at(None),
        error,
    };
    let file = File::open(path).map_err(read_error)?;
    let limit = u64::try_from(MAX_MANIFEST_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            at: at(None),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|error| {
        let valid = error.utf8_error().valid_up_to();
        let position = error
            .as_bytes()
            .get(..valid)
            .and_then(|prefix| std::str::from_utf8(prefix).ok())
            .map(|prefix| position_of(prefix, valid));
        ManifestError::NotUtf8 { at: at(position) }
    })
}

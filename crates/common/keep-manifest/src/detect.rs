//! Telling Keep.toml from Enarx.toml.

use std::path::Path;

use toml::de::DeTable;

use crate::manifest::ManifestFormat;

/// Keys only Enarx.toml has at the top level.
const ENARX_KEYS: &[&str] = &["files", "steward"];

/// Enarx's format when the file is named `Enarx.toml` (any ASCII case) or its top
/// level has a `files` or `steward` key; Keep's otherwise.
pub(crate) fn format_of(origin: &Path, top: &DeTable<'_>) -> ManifestFormat {
    let named_enarx = origin
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.eq_ignore_ascii_case("Enarx.toml"));
    if named_enarx || ENARX_KEYS.iter().any(|key| top.contains_key(*key)) {
        ManifestFormat::Enarx
    } else {
        ManifestFormat::Keep
    }
}

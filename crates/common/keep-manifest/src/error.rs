//! The errors of this crate, each displayed as a single line.

use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column (in characters) in the manifest's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where an error or warning applies: the manifest's path and, when known, a
/// position in it. Displays as `path:line:column` or `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub position: Option<Position>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display().to_string();
        let path = if path.is_empty() {
            "<manifest>".to_owned()
        } else {
            one_line(&path)
        };
        match self.position {
            Some(Position { line, column }) => write!(f, "{path}:{line}:{column}"),
            None => f.write_str(&path),
        }
    }
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{at}: cannot read the manifest: {}", one_line(&.error.to_string()))]
    Read { at: Location, error: std::io::Error },
    /// The manifest is larger than [`crate::MAX_MANIFEST_BYTES`].
    #[error("{at}: the manifest is larger than {limit} bytes")]
    TooLarge { at: Location, limit: usize },
    /// The file is not UTF-8 text; the position is that of the first bad byte.
    #[error("{at}: the manifest is not UTF-8 text")]
    NotUtf8 { at: Location },
    /// Not valid TOML, or not the shape of the format: an unknown or missing
    /// field, a value of the wrong type.
    #[error("{at}: {message}")]
    Toml { at: Location, message: String },
    /// Valid shape, but a value is not acceptable.
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
    /// Something Keep does not support yet, such as TLS sockets.
    #[error("{at}: {message}")]
    Unsupported { at: Location, message: String },
}

impl ManifestError {
    /// Where the error applies.
    #[must_use]
    pub fn location(&self) -> &Location {
        match self {
            Self::Read { at, .. }
            | Self::TooLarge { at, .. }
            | Self::NotUtf8 { at }
            | Self::Toml { at, .. }
            | Self::Invalid { at, .. }
            | Self::Unsupported { at, .. } => at,
        }
    }
}

/// Escapes control characters (newlines included) so a message stays on one line
/// whatever the manifest contains.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_controls() {
        assert_eq!(one_line("a\nb\tc\u{7}"), "a\\nb\\tc\\u{7}");
        assert_eq!(one_line("plain é"), "plain é");
    }

    #[test]
    fn location_display() {
        let mut at = Location {
            path: PathBuf::from("dir/Keep.toml"),
            position: Some(Position { line: 3, column: 7 }),
        };
        assert_eq!(at.to_string(), "dir/Keep.toml:3:7");
        at.position = None;
        assert_eq!(at.to_string(), "dir/Keep.toml");
        at.path = PathBuf::new();
        assert_eq!(at.to_string(), "<manifest>");
    }
}

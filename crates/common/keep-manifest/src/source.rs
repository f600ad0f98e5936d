//! The manifest being parsed: its text and path, and the errors and warnings that
//! point into it.

use std::ops::Range;
use std::path::Path;

use crate::error::{Location, ManifestError, one_line};
use crate::position::position_of;

/// The text of a manifest and the path it came from.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a Path,
}

/// A byte range in the manifest's text.
pub(crate) type Span = Range<usize>;

impl<'a> Source<'a> {
    pub fn new(text: &'a str, origin: &'a Path) -> Self {
        Self { text, origin }
    }

    /// The location of a span's start, or of the whole file.
    pub fn locate(&self, span: Option<&Span>) -> Location {
        Location {
            path: self.origin.to_path_buf(),
            position: span.map(|span| position_of(self.text, span.start)),
        }
    }

    /// A value at `span` is not acceptable.
    pub fn invalid(&self, span: &Span, message: impl AsRef<str>) -> ManifestError {
        ManifestError::Invalid {
            at: self.locate(Some(span)),
            message: one_line(message.as_ref()),
        }
    }

    /// The value at `span` asks for something Keep does not support yet.
    pub fn unsupported(&self, span: &Span, message: impl AsRef<str>) -> ManifestError {
        ManifestError::Unsupported {
            at: self.locate(Some(span)),
            message: one_line(message.as_ref()),
        }
    }

    /// A one-line warning about the value at `span`.
    pub fn warning(&self, span: &Span, message: impl AsRef<str>) -> String {
        format!(
            "{}: {}",
            self.locate(Some(span)),
            one_line(message.as_ref())
        )
    }

    /// "line L, column C" of a span, for messages that point at a second place.
    pub fn describe(&self, span: &Span) -> String {
        let p = position_of(self.text, span.start);
        format!("line {}, column {}", p.line, p.column)
    }

    /// Converts an error of the TOML parser or of deserialization.
    pub fn toml_error(&self, error: &toml::de::Error) -> ManifestError {
        let mut message = error.message().trim().to_owned();
        // The key path is only shown by the error's `Display`, which without the
        // input is the message, a newline and, when known, "in `a.b`".
        let mut bare = error.clone();
        bare.set_input(None);
        let shown = bare.to_string();
        let keys = shown
            .strip_prefix(error.message())
            .and_then(|rest| rest.strip_prefix('\n'))
            .and_then(|rest| rest.trim_end().strip_prefix("in `"))
            .and_then(|rest| rest.strip_suffix('`'));
        if let Some(keys) = keys.filter(|keys| !keys.is_empty()) {
            message = format!("{keys}: {message}");
        }
        ManifestError::Toml {
            at: self.locate(error.span().as_ref()),
            message: one_line(&message),
        }
    }
}

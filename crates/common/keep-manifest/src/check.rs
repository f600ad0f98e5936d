//! Checks shared by both formats: counts and the names published in `FD_NAMES`.

use std::collections::BTreeMap;

use crate::error::ManifestError;
use crate::source::{Source, Span};

/// Refuses a list longer than `max` entries.
pub(crate) fn at_most(
    src: &Source<'_>,
    span: &Span,
    what: &str,
    count: usize,
    max: usize,
) -> Result<(), ManifestError> {
    if count > max {
        return Err(src.invalid(
            span,
            format!("{what} has {count} entries; at most {max} are accepted"),
        ));
    }
    Ok(())
}

/// The fd names seen so far, so that each one is published once in `FD_NAMES`.
/// `stdin`, `stdout` and `stderr` are reserved for fds 0 to 2.
pub(crate) struct FdNames {
    seen: BTreeMap<String, (Option<Span>, &'static str)>,
}

impl FdNames {
    pub fn new() -> Self {
        let mut seen = BTreeMap::new();
        for (name, fd) in [("stdin", "fd 0"), ("stdout", "fd 1"), ("stderr", "fd 2")] {
            seen.insert(name.to_owned(), (None, fd));
        }
        Self { seen }
    }

    /// Records `name`, the name of a `what` ("socket name", "guest path") at `span`.
    pub fn insert(
        &mut self,
        src: &Source<'_>,
        span: &Span,
        what: &'static str,
        name: &str,
    ) -> Result<(), ManifestError> {
        if let Some((first, first_what)) = self.seen.get(name) {
            let message = match first {
                None => format!("{what} {name:?} is reserved for {first_what}"),
                Some(first) if *first_what == what => format!(
                    "duplicate {what} {name:?} (first at {})",
                    src.describe(first)
                ),
                Some(first) => format!(
                    "{what} {name:?} is already used as a {first_what} (at {}); \
                     every fd needs its own name in FD_NAMES",
                    src.describe(first)
                ),
            };
            return Err(src.invalid(span, message));
        }
        self.seen
            .insert(name.to_owned(), (Some(span.clone()), what));
        Ok(())
    }
}

/// The first control character of `s` (NUL included), if any.
pub(crate) fn find_control(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

//! Time as an input. The verifier never reads a clock: the caller says what `now` is.

use std::fmt;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// Seconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

/// A time that could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("not a time: {0:?} (expected RFC 3339, e.g. 2025-06-01T00:00:00Z, or Unix seconds)")]
pub struct TimeError(pub String);

impl UnixTime {
    /// Parses RFC 3339 (`2025-06-01T00:00:00Z`), a bare date (`2025-06-01`, midnight
    /// UTC) or decimal Unix seconds.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let t = s.trim();
        if !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse::<i64>()
                .map(UnixTime)
                .map_err(|_| TimeError(s.to_owned()));
        }
        if let Ok(dt) =
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        {
            return Ok(UnixTime(dt.unix_timestamp()));
        }
        let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
        if let Ok(d) = time::Date::parse(t, &date_fmt) {
            return Ok(UnixTime(d.midnight().assume_utc().unix_timestamp()));
        }
        Err(TimeError(s.to_owned()))
    }

    /// RFC 3339 text, or the raw number when out of range.
    pub fn to_rfc3339(self) -> String {
        match time::OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(dt) => dt
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for UnixTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(UnixTime::parse("1752919234"), Ok(UnixTime(1752919234)));
        assert_eq!(
            UnixTime::parse("2025-09-12T00:00:00Z"),
            Ok(UnixTime(1757635200))
        );
        assert_eq!(
            UnixTime::parse("2025-09-12T02:00:00+02:00"),
            Ok(UnixTime(1757635200))
        );
        assert_eq!(UnixTime::parse("2025-09-12"), Ok(UnixTime(1757635200)));
        assert!(UnixTime::parse("yesterday").is_err());
        assert!(UnixTime::parse("").is_err());
        assert!(UnixTime::parse("99999999999999999999").is_err());
        assert_eq!(UnixTime(1757635200).to_string(), "2025-09-12T00:00:00Z");
    }
}

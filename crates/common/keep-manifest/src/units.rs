//! Sizes and durations written as text, shared with the command line.

/// Parses a size in bytes: a plain integer (`"1048576"`), or an integer and a unit,
/// with or without a space: `B`; binary `KiB`, `MiB`, `GiB`, `TiB`; decimal `KB`
/// (or `kB`), `MB`, `GB`, `TB`. Zero is accepted; callers that need a positive size
/// check it.
///
/// # Errors
///
/// A one-line description, naming the input, for the caller to place.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const UNITS: &[(&str, u64)] = &[
        ("", 1),
        ("B", 1),
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
        ("KB", 1_000),
        ("kB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
        ("TB", 1_000_000_000_000),
    ];
    let (number, unit) = split_number(s).ok_or_else(|| size_error(s))?;
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| *scale)
        .ok_or_else(|| size_error(s))?;
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a duration into milliseconds: a plain integer of seconds (`"10"`), or an
/// integer and a unit, with or without a space: `ms`, `s`, `m` (minutes), `h`.
/// Zero is accepted; callers that need a positive duration check it.
///
/// # Errors
///
/// A one-line description, naming the input, for the caller to place.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    const UNITS: &[(&str, u64)] = &[
        ("", 1_000),
        ("ms", 1),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
    ];
    let (number, unit) = split_number(s).ok_or_else(|| duration_error(s))?;
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| *scale)
        .ok_or_else(|| duration_error(s))?;
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

fn size_error(s: &str) -> String {
    format!(
        "invalid size {s:?}: expected a number of bytes, or a number and one of \
         B, KiB, MiB, GiB, TiB, KB, MB, GB, TB (such as \"256MiB\")"
    )
}

fn duration_error(s: &str) -> String {
    format!(
        "invalid duration {s:?}: expected a number of seconds, or a number and one of \
         ms, s, m, h (such as \"500ms\" or \"10s\")"
    )
}

/// Splits `" 12 MiB "` into `(12, "MiB")`: leading ASCII digits, then optional
/// spaces, then the rest. `None` when there are no digits or the number overflows.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let digits_end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(s.len(), |(index, _)| index);
    let digits = s.get(..digits_end)?;
    if digits.is_empty() {
        return None;
    }
    let number = digits.parse::<u64>().ok()?;
    let unit = s.get(digits_end..)?.trim_start();
    Some((number, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("12B"), Ok(12));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("1 GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("3KB"), Ok(3_000));
        assert_eq!(parse_size("3kB"), Ok(3_000));
        assert_eq!(parse_size("5 MB"), Ok(5_000_000));
        assert_eq!(parse_size(" 7 "), Ok(7));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "", " ", "MiB", "-1", "+1", "1.5GiB", "1 mib", "1K", "1 G", "1GiBs", "1 2", "0x10",
            "1_000", "١٢",
        ] {
            let err = parse_size(bad).err();
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.starts_with("invalid size")),
                "{bad:?}: {err:?}"
            );
        }
        assert_eq!(
            parse_size("99999999999999999999"),
            Err(size_error("99999999999999999999"))
        );
        assert_eq!(
            parse_size("17179869184GiB"),
            Err("size \"17179869184GiB\" is too large".to_owned())
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert_eq!(parse_duration_ms("10"), Ok(10_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1 h"), Ok(3_600_000));
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10 sec",
            "1d",
            "1S",
            "1hm",
            "10us",
            "99999999999999999999",
        ] {
            let err = parse_duration_ms(bad).err();
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.starts_with("invalid duration")),
                "{bad:?}: {err:?}"
            );
        }
        assert_eq!(
            parse_duration_ms("18446744073709551615s"),
            Err("duration \"18446744073709551615s\" is too long".to_owned())
        );
    }
}

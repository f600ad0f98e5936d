//! The shim's log lines as the VMM keeps them. The guest decides how often it logs
//! and how long a line is (up to the data area, ~896 KiB), so a Keep's lines are
//! kept up to [`MAX_LOG_BYTES`] in all (each line counts one byte more, its
//! newline, so empty lines are bounded too): the line that crosses the cap is cut,
//! later ones are dropped, and one last line says how much was dropped.

/// Bytes of log lines kept per Keep, a newline counted per line.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// How much of a Keep's log is kept so far.
#[derive(Debug, Default)]
pub(crate) struct LogCap {
    kept: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
    /// The summary of what was dropped, once something was.
    summary: Option<String>,
    /// Whether lines were printed (to stderr): the summary is printed last, on drop.
    printed: bool,
}

impl LogCap {
    /// Adds `line` to `log` within the cap, and prints the part kept when `print`.
    /// Returns that part, if any. Once the cap is reached, the last entry of `log`
    /// is the summary of what was dropped, updated with every further line.
    pub(crate) fn push(
        &mut self,
        log: &mut Vec<String>,
        line: &str,
        print: bool,
    ) -> Option<String> {
        self.printed |= print;
        let capped = self.summary.is_some();
        let room = MAX_LOG_BYTES - self.kept;
        let kept = if !capped && line.len() < room {
            self.kept += line.len() + 1;
            log.push(line.to_string());
            Some(line.to_string())
        } else {
            let mut cut = if capped { 0 } else { room.saturating_sub(1) };
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut > 0 {
                self.kept += cut + 1;
            }
            self.dropped_bytes += (line.len() - cut) as u64;
            if cut == 0 {
                self.dropped_lines += 1;
            } else {
                log.push(line[..cut].to_string());
            }
            let summary = format!(
                "log capped at {} KiB per Keep: {} more bytes dropped ({} more lines)",
                MAX_LOG_BYTES / 1024,
                self.dropped_bytes,
                self.dropped_lines
            );
            match log.last_mut() {
                Some(last) if capped => *last = summary.clone(),
                _ => log.push(summary.clone()),
            }
            self.summary = Some(summary);
            (cut > 0).then(|| line[..cut].to_string())
        };
        if let (true, Some(k)) = (print, &kept) {
            eprintln!("keep: {k}");
        }
        kept
    }
}

impl Drop for LogCap {
    fn drop(&mut self) {
        if let (true, Some(summary)) = (self.printed, &self.summary) {
            eprintln!("keep: {summary}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostcall::DATA_CAPACITY;

    #[test]
    fn lines_are_kept_up_to_the_byte_cap_then_summed_up() {
        let mut cap = LogCap::default();
        let mut log = Vec::new();
        let line = "x".repeat(1000);
        // 65 lines and their newlines fit (65,065 bytes); the 66th is cut to 470.
        for _ in 0..65 {
            assert_eq!(cap.push(&mut log, &line, false).as_deref(), Some(&line[..]));
        }
        assert!(cap.summary.is_none());
        let cut = cap.push(&mut log, &line, false);
        assert_eq!(cut.map(|l| l.len()), Some(470));
        // A thousand lines of the guest's biggest size later, still one summary.
        let huge = "y".repeat(DATA_CAPACITY);
        for _ in 0..1000 {
            assert_eq!(cap.push(&mut log, &huge, false), None);
        }
        assert_eq!(log.len(), 67);
        let kept: usize = log[..66].iter().map(|l| l.len() + 1).sum();
        assert_eq!(kept, MAX_LOG_BYTES);
        let dropped = 530 + 1000 * DATA_CAPACITY as u64;
        assert_eq!(
            log[66],
            format!(
                "log capped at 64 KiB per Keep: {dropped} more bytes dropped (1000 more lines)"
            )
        );
    }

    #[test]
    fn empty_lines_count_too() {
        let mut cap = LogCap::default();
        let mut log = Vec::new();
        for _ in 0..100_000 {
            cap.push(&mut log, "", false);
        }
        assert_eq!(log.len(), MAX_LOG_BYTES + 1);
        assert!(log[MAX_LOG_BYTES].ends_with("0 more bytes dropped (34464 more lines)"));
    }

    #[test]
    fn a_cut_stays_on_a_character_boundary() {
        let mut cap = LogCap::default();
        let mut log = Vec::new();
        cap.push(&mut log, &"a".repeat(MAX_LOG_BYTES - 3), false);
        // 2 bytes of room: the newline and one byte, not enough for "é".
        assert_eq!(cap.push(&mut log, "é", false), None);
        assert_eq!(log.len(), 2);
        assert!(
            log[1].ends_with("2 more bytes dropped (1 more lines)"),
            "{}",
            log[1]
        );
    }
}

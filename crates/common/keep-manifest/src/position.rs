//! Byte offsets in the manifest's text to 1-based lines and columns.

use crate::error::Position;

/// The line and column of the character at byte `offset` of `text`. Columns count
/// characters, not bytes. An offset past the end, or inside a character, gives the
/// position just after the last character before it.
pub(crate) fn position_of(text: &str, offset: usize) -> Position {
    let mut line = 1;
    let mut column = 1;
    for (index, c) in text.char_indices() {
        if index >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Position { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, offset: usize) -> (usize, usize) {
        let p = position_of(text, offset);
        (p.line, p.column)
    }

    #[test]
    fn lines_and_columns() {
        let text = "ab\ncd\n\néf";
        assert_eq!(at(text, 0), (1, 1));
        assert_eq!(at(text, 1), (1, 2));
        assert_eq!(at(text, 3), (2, 1));
        assert_eq!(at(text, 4), (2, 2));
        assert_eq!(at(text, 7), (4, 1));
        // `é` is two bytes; `f` is still column 2.
        assert_eq!(at(text, 9), (4, 2));
    }

    #[test]
    fn out_of_range_offsets_do_not_panic() {
        assert_eq!(at("", 10), (1, 1));
        assert_eq!(at("ab", 10), (1, 3));
        // Inside `é`.
        assert_eq!(at("é", 1), (1, 2));
    }
}

//! A cheap look at RON text before (or after) ron parses it: the declared format version, whether
//! the text stops partway through a value, and line/column positions.

/// Whether a parse failure of `text` means the file was cut off: the text stops inside a RON value
/// ([`ends_early`]) and ron gave up at the text's last line (`error_at` is ron's 1-based line of
/// the failure). A duplicated `(` line in the middle of a file also leaves a bracket open, but
/// ron stops at it, well before the end: that is garbage, not a truncation.
pub fn truncated(text: &str, eof: bool, error_line: usize) -> bool {
    if eof {
        return true;
    }
    let last_line = text.trim_end().lines().count().max(1);
    ends_early(text) && error_line + 1 >= last_line
}

/// Whether `text` stops inside a RON value: a bracket left open, a string or block comment
/// unterminated, or no value begun at all (empty, or only the header comment).
///
/// Why not ron's error: on a cut-off snapshot ron describes whatever the partial last token
/// looks like ("Unexpected field named c" for a cut inside `created`, "Expected comma",
/// "Expected end of string", …), rarely `Eof`, and sometimes points at the start of that token
/// rather than the end of the text. Whether the brackets close depends on the text alone: a
/// snapshot is one `( … )`, so every proper prefix of it leaves something open wherever the cut
/// falls, while garbage with balanced brackets (or none) keeps ron's message.
pub fn ends_early(text: &str) -> bool {
    let (mut at, mut depth, mut begun) = (0, 0usize, false);
    while at < text.len() {
        let rest = &text[at..];
        let Some(len) = token_len(rest) else {
            return true;
        };
        match rest.as_bytes()[0] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        let comment = rest.starts_with("//") || rest.starts_with("/*");
        begun |= !comment && !rest.starts_with(char::is_whitespace);
        at += len;
    }
    depth > 0 || !begun
}

/// Bytes in the comment or string that `rest` starts with, else in its first character (so
/// brackets inside comments and strings are not counted); `None` if a string or block comment
/// runs to the end of the text. (Nested block comments and raw strings are not special-cased:
/// snapshots are written with neither.)
fn token_len(rest: &str) -> Option<usize> {
    if rest.starts_with("//") {
        Some(rest.find('\n').unwrap_or(rest.len()))
    } else if rest.starts_with("/*") {
        rest.find("*/").map(|i| i + 2)
    } else if let Some(body) = rest.strip_prefix('"') {
        let mut escaped = false;
        let end = body.char_indices().find(|&(_, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes
        });
        end.map(|(i, _)| i + 2)
    } else {
        rest.chars().next().map(char::len_utf8)
    }
}

/// The `format_version` declared near the start of the text, if it can be found cheaply.
pub fn peek_version(text: &str) -> Option<u64> {
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    let at = head.find("format_version")?;
    let rest = head[at + "format_version".len()..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// 1-based line and column just after `bytes`.
pub fn line_col(bytes: &[u8]) -> (usize, usize) {
    let line = 1 + bytes.iter().filter(|&&b| b == b'\n').count();
    let last = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = 1 + String::from_utf8_lossy(&bytes[last..]).chars().count();
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_early_skips_strings_and_comments() {
        assert!(!ends_early("(a: \"(\", b: \"\\\"[\") // (\n/* [ */"));
        assert!(ends_early("(a: \"(\\\")"));
        assert!(ends_early("(a: 1) /* ) "));
        assert!(ends_early("// (a: 1)"));
        assert!(!ends_early("hello"));
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col(b""), (1, 1));
        assert_eq!(line_col(b"ab\ncd"), (2, 3));
    }

    #[test]
    fn peek_version_survives_a_multibyte_character_at_the_cut() {
        let text = format!("(format_version: 3, x: \"{}\")", "é".repeat(3000));
        assert_eq!(peek_version(&text), Some(3));
    }
}

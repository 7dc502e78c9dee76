//! `.env` and `env_file` files, as Compose reads them.
//!
//! ```text
//! # comment
//! export KEY=value
//! PLAIN = some value # trailing comment
//! LITERAL='no $escapes \n here'
//! QUOTED="line one\nline two"
//! EMPTY=
//! FROM_ENVIRONMENT
//! ```

use std::fmt;

/// A problem in a dotenv file, with the 1-based line and the byte range in
/// the whole input it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub line: usize,
    pub start: usize,
    pub end: usize,
    pub message: String,
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DotenvError {}

/// Whether `key` is a valid dotenv key, `[A-Za-z_][A-Za-z0-9_.-]*`.
fn is_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The end of `line` (relative index) before an unquoted ` #` comment.
fn before_comment(line: &str) -> usize {
    let bytes = line.as_bytes();
    (1..bytes.len())
        .find(|&i| bytes[i] == b'#' && matches!(bytes[i - 1], b' ' | b'\t'))
        .unwrap_or(line.len())
}

/// Parses a dotenv file into its entries, in order (a later duplicate key
/// should win). A line with a key alone (`KEY`, no `=`) gives `None`,
/// meaning the value is taken from the environment.
///
/// Unquoted values are trimmed and end at ` #`; single-quoted values are
/// literal; double-quoted values understand `\n`, `\t`, `\r`, `\"` and `\\`
/// (other backslashes are kept). Quoted values may span lines.
pub fn parse_dotenv(input: &str) -> Result<Vec<(String, Option<String>)>, DotenvError> {
    let mut entries = Vec::new();
    let mut pos = if input.starts_with('\u{feff}') { 3 } else { 0 };
    let mut line = 1;
    while pos < input.len() {
        let line_end = input[pos..].find('\n').map_or(input.len(), |i| pos + i);
        let text = input[pos..line_end].trim_end_matches('\r');
        let indent = text.len() - text.trim_start_matches(is_blank).len();
        let mut start = pos + indent;
        let mut rest = &text[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            pos = line_end + 1;
            line += 1;
            continue;
        }
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with(is_blank)
        {
            let skipped = after.len() - after.trim_start_matches(is_blank).len();
            start += "export".len() + skipped;
            rest = &after[skipped..];
        }
        let error = |start: usize, end: usize, message: String| DotenvError {
            line,
            start,
            end,
            message,
        };
        let Some(eq) = rest.find('=') else {
            let key = rest[..before_comment(rest)].trim_end_matches(is_blank);
            if !is_key(key) {
                return Err(error(start, start + key.len(), key_message(key)));
            }
            entries.push((key.to_string(), None));
            pos = line_end + 1;
            line += 1;
            continue;
        };
        let key = rest[..eq].trim_end_matches(is_blank);
        if key.is_empty() {
            return Err(error(
                start,
                start + eq + 1,
                "missing variable name before \"=\"".to_string(),
            ));
        }
        if !is_key(key) {
            return Err(error(start, start + key.len(), key_message(key)));
        }
        let raw = &rest[eq + 1..];
        let raw_start = start + eq + 1;
        let value_indent = raw.len() - raw.trim_start_matches(is_blank).len();
        let value_start = raw_start + value_indent;
        let quote = raw[value_indent..].chars().next();
        let (value, value_end) = match quote {
            Some(q @ ('\'' | '"')) => {
                let (value, close) = read_quoted(input, value_start, q).ok_or_else(|| {
                    let kind = if q == '\'' { "single" } else { "double" };
                    error(
                        value_start,
                        line_end,
                        format!(
                            "unterminated {kind}-quoted value for \"{key}\"; add a closing {q}"
                        ),
                    )
                })?;
                (value, close + 1)
            }
            _ => {
                let value = raw[..before_comment(raw)].trim_matches(is_blank);
                (value.to_string(), line_end)
            }
        };
        line += input[pos..value_end].matches('\n').count();
        // After a closing quote only blanks and a comment may follow.
        let next_line = input[value_end..]
            .find('\n')
            .map_or(input.len(), |i| value_end + i);
        let tail = input[value_end..next_line].trim_end_matches('\r');
        let trimmed = tail.trim_start_matches(is_blank);
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            let tail_start = value_end + tail.len() - trimmed.len();
            return Err(DotenvError {
                line,
                start: tail_start,
                end: tail_start + trimmed.len(),
                message: format!(
                    "unexpected text after the closing quote of \"{key}\"; put a comment after \" #\""
                ),
            });
        }
        entries.push((key.to_string(), Some(value)));
        pos = next_line + 1;
        line += 1;
    }
    Ok(entries)
}

fn key_message(key: &str) -> String {
    format!(
        "invalid variable name \"{key}\"; use letters, digits, '_', '.' and '-', starting with a letter or '_'"
    )
}

/// Reads a quoted value whose opening quote is at `open`; gives the value
/// and the index of the closing quote.
fn read_quoted(input: &str, open: usize, quote: char) -> Option<(String, usize)> {
    let body = &input[open + 1..];
    if quote == '\'' {
        let close = body.find('\'')?;
        return Some((body[..close].replace("\r\n", "\n"), open + 1 + close));
    }
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, open + 1 + i)),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            '\r' if body[i + 1..].starts_with('\n') => {}
            _ => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    type Pair<'a> = (&'a str, Option<&'a str>);

    fn entries(pairs: &[Pair<'_>]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn parses_a_full_file() {
        let input = "\u{feff}# leading comment\n\
            \n\
            KEY=value\n\
            export EXPORTED=yes\n\
            \texport   TABBED=1\n\
            SPACED = some value   \n\
            COMMENTED=abc # a comment\n\
            HASH=abc#def\n\
            HASH_START=#x\n\
            ONLY_COMMENT= # nothing\n\
            EMPTY=\n\
            FROM_ENV\n\
            FROM_ENV_COMMENT # comment\n\
            SINGLE='literal $X \\n # not a comment'\n\
            DOUBLE=\"a\\nb\\tc\\\"d\\\\e\\$f\"\n\
            MULTI=\"first\n\
            second\"\n\
            MULTI_SINGLE='one\n\
            two'  # after\n\
            dotted.key-name=1\n\
            _UNDER=2\n\
            EQUALS=a=b\n\
            QUOTED_EMPTY=\"\"\n\
            CRLF=value\r\n\
            LAST=end";
        let expected = entries(&[
            ("KEY", Some("value")),
            ("EXPORTED", Some("yes")),
            ("TABBED", Some("1")),
            ("SPACED", Some("some value")),
            ("COMMENTED", Some("abc")),
            ("HASH", Some("abc#def")),
            ("HASH_START", Some("#x")),
            ("ONLY_COMMENT", Some("")),
            ("EMPTY", Some("")),
            ("FROM_ENV", None),
            ("FROM_ENV_COMMENT", None),
            ("SINGLE", Some("literal $X \\n # not a comment")),
            ("DOUBLE", Some("a\nb\tc\"d\\e\\$f")),
            ("MULTI", Some("first\nsecond")),
            ("MULTI_SINGLE", Some("one\ntwo")),
            ("dotted.key-name", Some("1")),
            ("_UNDER", Some("2")),
            ("EQUALS", Some("a=b")),
            ("QUOTED_EMPTY", Some("")),
            ("CRLF", Some("value")),
            ("LAST", Some("end")),
        ]);
        assert_eq!(parse_dotenv(input), Ok(expected));
    }

    #[test]
    fn small_cases() {
        let cases: &[(&str, &[Pair<'_>])] = &[
            ("", &[]),
            ("\n\n  \n# only comments\n", &[]),
            ("A=1\nA=2", &[("A", Some("1")), ("A", Some("2"))]),
            ("export=1", &[("export", Some("1"))]),
            ("export", &[("export", None)]),
            ("A=\"x\" # c", &[("A", Some("x"))]),
            ("A='x'   ", &[("A", Some("x"))]),
            ("A=\"x\\\ny\"", &[("A", Some("x\\\ny"))]),
            (
                "A=\"a\r\nb\"\r\nB=2\r\n",
                &[("A", Some("a\nb")), ("B", Some("2"))],
            ),
            ("A=\"ü\\ü\"", &[("A", Some("ü\\ü"))]),
            ("A=  'x'", &[("A", Some("x"))]),
            ("A=x 'y'", &[("A", Some("x 'y'"))]),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_dotenv(input), Ok(entries(expected)), "{input:?}");
        }
    }

    fn err(line: usize, start: usize, end: usize, message: &str) -> DotenvError {
        DotenvError {
            line,
            start,
            end,
            message: message.to_string(),
        }
    }

    #[test]
    fn reports_errors() {
        let bad_key = |key: &str| key_message(key);
        let cases: Vec<(&str, DotenvError)> = vec![
            ("A=1\n1KEY=2", err(2, 4, 8, &bad_key("1KEY"))),
            ("  BAD KEY=1", err(1, 2, 9, &bad_key("BAD KEY"))),
            ("export BAD!", err(1, 7, 11, &bad_key("BAD!"))),
            (
                "A=1\n\n=value",
                err(3, 5, 6, "missing variable name before \"=\""),
            ),
            ("Ü=1", err(1, 0, 2, &bad_key("Ü"))),
            (
                "A='open\nB=2",
                err(
                    1,
                    2,
                    7,
                    "unterminated single-quoted value for \"A\"; add a closing '",
                ),
            ),
            (
                "X=1\nA=\"open\\\"",
                err(
                    2,
                    6,
                    13,
                    "unterminated double-quoted value for \"A\"; add a closing \"",
                ),
            ),
            (
                "A=\"trailing\\",
                err(
                    1,
                    2,
                    12,
                    "unterminated double-quoted value for \"A\"; add a closing \"",
                ),
            ),
            (
                "A=\"x\"y",
                err(
                    1,
                    5,
                    6,
                    "unexpected text after the closing quote of \"A\"; put a comment after \" #\"",
                ),
            ),
            (
                "A='multi\nline' junk\n",
                err(
                    2,
                    15,
                    19,
                    "unexpected text after the closing quote of \"A\"; put a comment after \" #\"",
                ),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_dotenv(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn error_display() {
        assert_eq!(err(3, 0, 1, "bad").to_string(), "line 3: bad");
    }
}

//! Compose-style variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`,
//! `${VAR+alt}` and `$$` for a literal `$`.
//!
//! Unlike Compose, a variable that is unset and has no default is an error.

use std::fmt;

/// What went wrong while interpolating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationErrorKind {
    /// `$VAR` or `${VAR}` with `VAR` unset and no default.
    Unset { name: String },
    /// `${VAR:?message}` or `${VAR?message}` with `VAR` missing a value.
    Required { name: String, message: String },
    /// Malformed `${...}`; the text says how.
    Syntax(String),
}

/// An interpolation failure, with the byte range in the input of the
/// offending `$VAR` or `${...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub start: usize,
    pub end: usize,
    pub kind: InterpolationErrorKind,
}

impl InterpolationError {
    /// A short lowercase description of the problem.
    pub fn message(&self) -> String {
        match &self.kind {
            InterpolationErrorKind::Unset { name } => format!("variable \"{name}\" is not set"),
            InterpolationErrorKind::Required { name, message } if message.is_empty() => {
                format!("required variable \"{name}\" is missing a value")
            }
            InterpolationErrorKind::Required { name, message } => {
                format!("required variable \"{name}\" is missing a value: {message}")
            }
            InterpolationErrorKind::Syntax(text) => text.clone(),
        }
    }

    fn syntax(start: usize, end: usize, text: String) -> InterpolationError {
        InterpolationError {
            start,
            end,
            kind: InterpolationErrorKind::Syntax(text),
        }
    }
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for InterpolationError {}

/// Whether `name` is a valid variable name, `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces the variables in `input` by their values from `lookup`.
///
/// Defaults, alternatives and messages may themselves contain variables;
/// they are only interpolated when used. A `$` that cannot start a variable
/// (`$1`, `$-`, a trailing `$`) is kept as is.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    interpolate_at(input, 0, lookup)
}

/// Interpolates `text`, which starts at byte `base` of the original input.
fn interpolate_at(
    text: &str,
    base: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(offset) = text[i..].find('$') {
        let dollar = i + offset;
        out.push_str(&text[i..dollar]);
        match bytes.get(dollar + 1) {
            Some(b'$') => {
                out.push('$');
                i = dollar + 2;
            }
            Some(b'{') => {
                let close = find_closing_brace(bytes, dollar + 2).ok_or_else(|| {
                    InterpolationError::syntax(
                        base + dollar,
                        base + text.len(),
                        "unclosed \"${\"; add a matching \"}\"".to_string(),
                    )
                })?;
                out.push_str(&braced(text, dollar, close, base, lookup)?);
                i = close + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let len = text[dollar + 1..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                let name = &text[dollar + 1..dollar + 1 + len];
                let value = lookup(name).ok_or_else(|| InterpolationError {
                    start: base + dollar,
                    end: base + dollar + 1 + len,
                    kind: InterpolationErrorKind::Unset {
                        name: name.to_string(),
                    },
                })?;
                out.push_str(&value);
                i = dollar + 1 + len;
            }
            _ => {
                out.push('$');
                i = dollar + 1;
            }
        }
    }
    out.push_str(&text[i..]);
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts at `from`, skipping
/// nested `${...}` and `$$`.
fn find_closing_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 1usize;
    let mut j = from;
    while j < bytes.len() {
        match (bytes[j], bytes.get(j + 1)) {
            (b'$', Some(b'$')) => j += 2,
            (b'$', Some(b'{')) => {
                depth += 1;
                j += 2;
            }
            (b'}', _) => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
                j += 1;
            }
            _ => j += 1,
        }
    }
    None
}

const OPERATORS: [&str; 6] = [":-", ":?", ":+", "-", "?", "+"];

/// Evaluates `text[dollar..=close]`, a `${...}`.
fn braced(
    text: &str,
    dollar: usize,
    close: usize,
    base: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let whole = &text[dollar..=close];
    let body = &text[dollar + 2..close];
    let (start, end) = (base + dollar, base + close + 1);
    let name_len = body
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let name = &body[..name_len];
    if body.is_empty() {
        return Err(InterpolationError::syntax(
            start,
            end,
            "empty variable name in \"${}\"".to_string(),
        ));
    }
    if name.is_empty() {
        return Err(InterpolationError::syntax(
            start,
            end,
            format!("missing variable name in \"{whole}\""),
        ));
    }
    if !is_variable_name(name) {
        return Err(InterpolationError::syntax(
            start,
            end,
            format!(
                "invalid variable name \"{name}\" in \"{whole}\"; names start with a letter or '_' and continue with letters, digits or '_'"
            ),
        ));
    }
    let rest = &body[name_len..];
    let value = lookup(name);
    if rest.is_empty() {
        return value.ok_or_else(|| InterpolationError {
            start,
            end,
            kind: InterpolationErrorKind::Unset {
                name: name.to_string(),
            },
        });
    }
    let Some(operator) = OPERATORS.into_iter().find(|op| rest.starts_with(op)) else {
        return Err(InterpolationError::syntax(
            start,
            end,
            format!(
                "invalid substitution \"{whole}\"; use ${{{name}}}, ${{{name}:-default}}, ${{{name}-default}}, ${{{name}:?message}}, ${{{name}?message}}, ${{{name}:+alternative}} or ${{{name}+alternative}}"
            ),
        ));
    };
    let word = &rest[operator.len()..];
    let word_base = base + dollar + 2 + name_len + operator.len();
    let word_value = || interpolate_at(word, word_base, lookup);
    let empty_counts = operator.starts_with(':');
    let has_value = match &value {
        Some(v) => !(empty_counts && v.is_empty()),
        None => false,
    };
    match operator.trim_start_matches(':') {
        "-" => match value {
            Some(v) if has_value => Ok(v),
            _ => word_value(),
        },
        "?" => match value {
            Some(v) if has_value => Ok(v),
            _ => Err(InterpolationError {
                start,
                end,
                kind: InterpolationErrorKind::Required {
                    name: name.to_string(),
                    message: word_value()?,
                },
            }),
        },
        _ => {
            if has_value {
                word_value()
            } else {
                Ok(String::new())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".to_string()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8080".to_string()),
            "NESTED" => Some("${PORT}".to_string()),
            "A_1" => Some("a1".to_string()),
            "UNI" => Some("ü".to_string()),
            _ => None,
        }
    }

    fn run(input: &str) -> Result<String, InterpolationError> {
        interpolate(input, &env)
    }

    #[test]
    fn substitutes() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("plain text", "plain text"),
            ("$HOME", "/home/me"),
            ("${HOME}", "/home/me"),
            ("${HOME}/bin:$HOME/x", "/home/me/bin:/home/me/x"),
            ("$PORT-x", "8080-x"),
            ("$A_1.b", "a1.b"),
            ("${EMPTY}", ""),
            ("$EMPTY", ""),
            ("${NESTED}", "${PORT}"),
            ("ü$UNI${UNI}ü", "üüüü"),
            // $$ escapes
            ("$$", "$"),
            ("$$HOME", "$HOME"),
            ("$${HOME}", "${HOME}"),
            ("$$$HOME", "$/home/me"),
            // lone dollars stay
            ("$", "$"),
            ("a$", "a$"),
            ("$1", "$1"),
            ("$-x", "$-x"),
            ("cost: 5$ ", "cost: 5$ "),
            ("$}", "$}"),
            // defaults
            ("${MISSING:-def}", "def"),
            ("${MISSING-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${PORT:-def}", "8080"),
            ("${PORT-def}", "8080"),
            ("${MISSING:-}", ""),
            ("${MISSING-}", ""),
            ("${MISSING:-a b:c}", "a b:c"),
            ("${MISSING:-${PORT}}", "8080"),
            ("${MISSING:-$PORT}", "8080"),
            ("${MISSING:-${OTHER:-${PORT}}/x}", "8080/x"),
            ("${MISSING:-$$}", "$"),
            ("${MISSING:-a$$}b}", "a$b}"),
            ("${PORT:-${MISSING}}", "8080"),
            ("${PORT:?${MISSING}}", "8080"),
            ("${MISSING:-{x}", "{x"),
            // alternatives
            ("${PORT:+alt}", "alt"),
            ("${PORT+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${MISSING:+alt}", ""),
            ("${MISSING+alt}", ""),
            ("${PORT:+$HOME}", "/home/me"),
            ("${MISSING:+${ALSO_MISSING}}", ""),
            // required
            ("${PORT:?need it}", "8080"),
            ("${PORT?need it}", "8080"),
            ("${EMPTY?need it}", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(run(input), Ok(expected.to_string()), "{input}");
        }
    }

    fn unset(start: usize, end: usize, name: &str) -> InterpolationError {
        InterpolationError {
            start,
            end,
            kind: InterpolationErrorKind::Unset {
                name: name.to_string(),
            },
        }
    }

    fn required(start: usize, end: usize, name: &str, message: &str) -> InterpolationError {
        InterpolationError {
            start,
            end,
            kind: InterpolationErrorKind::Required {
                name: name.to_string(),
                message: message.to_string(),
            },
        }
    }

    fn syntax(start: usize, end: usize, text: &str) -> InterpolationError {
        InterpolationError::syntax(start, end, text.to_string())
    }

    #[test]
    fn reports_errors_with_ranges() {
        let cases: Vec<(&str, InterpolationError)> = vec![
            ("${DB_PASSWORD}", unset(0, 14, "DB_PASSWORD")),
            ("x=$DB_PASSWORD;", unset(2, 14, "DB_PASSWORD")),
            ("ü${NOPE}", unset(2, 9, "NOPE")),
            ("${MISSING:-${NOPE}}", unset(11, 18, "NOPE")),
            ("${MISSING:-a$NOPE}", unset(12, 17, "NOPE")),
            ("${PORT:+$NOPE}", unset(8, 13, "NOPE")),
            ("${EMPTY+$NOPE}", unset(8, 13, "NOPE")),
            ("${MISSING:?}", required(0, 12, "MISSING", "")),
            ("${MISSING?}", required(0, 11, "MISSING", "")),
            (
                "a ${X:?set X in .env}",
                required(2, 21, "X", "set X in .env"),
            ),
            ("${EMPTY:?for $PORT}", required(0, 19, "EMPTY", "for 8080")),
            ("${MISSING:?${NOPE}}", unset(11, 18, "NOPE")),
            ("${", syntax(0, 2, "unclosed \"${\"; add a matching \"}\"")),
            (
                "a ${HOME",
                syntax(2, 8, "unclosed \"${\"; add a matching \"}\""),
            ),
            (
                "${A:-${B}",
                syntax(0, 9, "unclosed \"${\"; add a matching \"}\""),
            ),
            ("${}", syntax(0, 3, "empty variable name in \"${}\"")),
            (
                "x${:-a}",
                syntax(1, 7, "missing variable name in \"${:-a}\""),
            ),
            (
                "${ HOME}",
                syntax(0, 8, "missing variable name in \"${ HOME}\""),
            ),
            (
                "${1A}",
                syntax(
                    0,
                    5,
                    "invalid variable name \"1A\" in \"${1A}\"; names start with a letter or '_' and continue with letters, digits or '_'",
                ),
            ),
            (
                "${HOME:x}",
                syntax(
                    0,
                    9,
                    "invalid substitution \"${HOME:x}\"; use ${HOME}, ${HOME:-default}, ${HOME-default}, ${HOME:?message}, ${HOME?message}, ${HOME:+alternative} or ${HOME+alternative}",
                ),
            ),
            (
                "${HOME.x}",
                syntax(
                    0,
                    9,
                    "invalid substitution \"${HOME.x}\"; use ${HOME}, ${HOME:-default}, ${HOME-default}, ${HOME:?message}, ${HOME?message}, ${HOME:+alternative} or ${HOME+alternative}",
                ),
            ),
            (
                "${MISSING:-${}}",
                syntax(11, 14, "empty variable name in \"${}\""),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(run(input), Err(expected), "{input}");
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            unset(0, 1, "DB_PASSWORD").message(),
            "variable \"DB_PASSWORD\" is not set"
        );
        assert_eq!(
            required(0, 1, "X", "set it").message(),
            "required variable \"X\" is missing a value: set it"
        );
        assert_eq!(
            required(0, 1, "X", "").to_string(),
            "required variable \"X\" is missing a value"
        );
        assert_eq!(syntax(0, 1, "bad").to_string(), "bad");
    }

    #[test]
    fn variable_names() {
        for name in ["A", "_", "a_1", "_9", "ABC_def"] {
            assert!(is_variable_name(name), "{name}");
        }
        for name in ["", "1A", "A-B", "A.B", "Ü"] {
            assert!(!is_variable_name(name), "{name}");
        }
    }

    #[test]
    fn lookup_only_when_needed() {
        let calls = std::cell::RefCell::new(Vec::new());
        let lookup = |name: &str| {
            calls.borrow_mut().push(name.to_string());
            (name == "SET").then(|| "v".to_string())
        };
        assert_eq!(interpolate("${SET:-$OTHER}", &lookup), Ok("v".to_string()));
        assert_eq!(*calls.borrow(), ["SET"]);
    }
}

//! Word expansion as Docker's builder does it (its shell lexer, not a real
//! shell): `$VAR`, `${VAR}`, the `${VAR:-x}` family, `#`/`%` trims and
//! `/` replacement, single quotes literal, double quotes expanding, the
//! escape character; unset variables expand to nothing. Also the word
//! splitting Docker applies to `ENV`, `LABEL` and `ARG` before expansion.

use std::fmt;

/// A word that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// The word as written.
    pub word: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot expand `{}`: {}", self.word, self.reason)
    }
}

impl std::error::Error for ExpandError {}

/// The result of expanding a word, with the variables it looked up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// The word after expansion and quote removal.
    pub value: String,
    /// The same, split into words at unquoted whitespace of the result.
    pub words: Vec<String>,
    /// The names the word looked up that were set (for cache keys).
    pub used: Vec<String>,
}

/// Expands `word` with `vars` (which returns `None` for an unset name), as
/// Docker expands the operands of `ENV`, `COPY`, `WORKDIR` and the others.
pub fn expand(
    word: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    expand_tracked(word, escape, vars).map(|e| e.value)
}

/// Expands `word` and splits the result into words, as Docker does where it
/// splits (whitespace that came from a variable splits too; quoted
/// whitespace does not).
pub fn expand_words(
    word: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    expand_tracked(word, escape, vars).map(|e| e.words)
}

/// [`expand`] and [`expand_words`] in one pass, also naming the variables used.
pub fn expand_tracked(
    word: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Expansion, ExpandError> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        vars,
        used: Vec::new(),
        heredoc: false,
    };
    match lexer.until(None, false) {
        Ok((value, words)) => Ok(Expansion {
            value,
            words,
            used: lexer.used,
        }),
        Err(reason) => Err(ExpandError {
            word: word.to_owned(),
            reason,
        }),
    }
}

/// Expands the body of a `COPY`/`ADD` here-document whose delimiter was
/// not quoted, as Docker does: variables are expanded and quotes are kept
/// as text, but a backslash still escapes the next character (and is
/// dropped), whatever the `# escape` directive says.
pub(crate) fn expand_heredoc(
    body: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer {
        chars: body.chars().collect(),
        pos: 0,
        escape: '\\',
        vars,
        used: Vec::new(),
        heredoc: true,
    };
    match lexer.until(None, false) {
        Ok((value, _)) => Ok(value),
        Err(reason) => Err(ExpandError {
            word: body.to_owned(),
            reason,
        }),
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Fn(&str) -> Option<String>,
    used: Vec<String>,
    /// Here-document body: quotes are text (Docker's lexer with quote
    /// processing off).
    heredoc: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = (self.vars)(name);
        if value.is_some() && !self.used.iter().any(|u| u == name) {
            self.used.push(name.to_owned());
        }
        value
    }

    /// Reads up to `stop` (consumed) or the end. `raw_escapes` keeps escape
    /// characters in the result (for patterns, where they escape `*`).
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' | '"' if self.heredoc => {
                    self.pos += 1;
                    words.add_char(c);
                    result.push(c);
                }
                '\'' => {
                    let value = self.single_quoted()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' => {
                    let value = self.double_quoted(raw_escapes)?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        if raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // The escape character escapes the next one; at the
                        // end of the word it is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_owned(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self, raw_escapes: bool) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_owned(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    let mut c = c;
                    if c == self.escape {
                        if raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            // Inside double quotes the escape character only
                            // escapes `"`, `$` and itself; otherwise it stays.
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                c = next;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_owned()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_owned()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut modifier) = self.next() else {
            return Err("syntax error: missing '}'".to_owned());
        };
        let mut null_is_unset = false;
        match modifier {
            '}' => return Ok(self.lookup(&name).unwrap_or_default()),
            ':' => {
                null_is_unset = true;
                match self.next() {
                    None => return Err("syntax error: missing '}'".to_owned()),
                    Some(c @ ('+' | '-' | '?' | '#' | '%')) => modifier = c,
                    Some(c) => return Err(format!("unsupported modifier (:{c}) in substitution")),
                }
            }
            '+' | '-' | '?' | '#' | '%' => {}
            '/' => return self.replace(&name),
            other => return Err(format!("unsupported modifier ({other}) in substitution")),
        }
        let raw = modifier == '#' || modifier == '%';
        let word = match self.until(Some('}'), raw) {
            Ok((word, _)) => word,
            Err(e) if self.peek().is_none() => {
                let _ = e;
                return Err("syntax error: missing '}'".to_owned());
            }
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        let empty_or_unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match modifier {
            '-' => Ok(if empty_or_unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty_or_unset { String::new() } else { word }),
            '?' => match value {
                None => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    }
                )),
                Some(v) if null_is_unset && v.is_empty() => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    }
                )),
                Some(v) => Ok(v),
            },
            _ => {
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match word.strip_prefix(modifier) {
                    Some(rest) => (true, rest.to_owned()),
                    None => (false, word),
                };
                let pattern = Pattern::parse(&pattern)?;
                Ok(if modifier == '%' {
                    pattern.trim_suffix(&value, greedy)
                } else {
                    pattern.trim_prefix(&value, greedy)
                })
            }
        }
    }

    fn replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = match self.until(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => {
                return Err("syntax error: missing '/' in ${}".to_owned());
            }
            Err(e) => return Err(e),
        };
        let replacement = match self.until(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".to_owned()),
            Err(e) => return Err(e),
        };
        let value = self.lookup(name).unwrap_or_default();
        let pattern = Pattern::parse(&pattern)?;
        Ok(pattern.replace(&value, &replacement, all))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    AnyRun,
    AnyOne,
    Literal(char),
}

/// A shell pattern of the trims and replacements: `*`, `?`, `\` escaping
/// `*`, `?` and `\` (and, as part of `${}`, `}` and `/`).
struct Pattern(Vec<Token>);

impl Pattern {
    fn parse(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => tokens.push(Token::AnyRun),
                '?' => tokens.push(Token::AnyOne),
                '\\' => match chars.get(i + 1) {
                    Some('}' | '/') => {}
                    Some(c @ ('*' | '?' | '\\')) => {
                        tokens.push(Token::Literal(*c));
                        i += 1;
                    }
                    Some(c) => {
                        return Err(format!(
                            "invalid pattern ({pattern}) in substitution: invalid escape '\\{c}'"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "invalid pattern ({pattern}) in substitution: trailing '\\'"
                        ));
                    }
                },
                c => tokens.push(Token::Literal(c)),
            }
            i += 1;
        }
        Ok(Self(tokens))
    }

    /// Every end position at which the pattern, started at `start`, matches.
    fn ends(&self, text: &[char], start: usize) -> Vec<usize> {
        let mut positions = vec![start];
        for token in &self.0 {
            let mut next: Vec<usize> = Vec::new();
            match token {
                Token::AnyRun => {
                    if let Some(&min) = positions.iter().min() {
                        next.extend(min..=text.len());
                    }
                }
                Token::AnyOne => {
                    next.extend(positions.iter().filter(|&&p| p < text.len()).map(|p| p + 1))
                }
                Token::Literal(c) => next.extend(
                    positions
                        .iter()
                        .filter(|&&p| text.get(p) == Some(c))
                        .map(|p| p + 1),
                ),
            }
            next.sort_unstable();
            next.dedup();
            positions = next;
            if positions.is_empty() {
                break;
            }
        }
        positions
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        let ends = self.ends(&text, 0);
        let end = if greedy { ends.last() } else { ends.first() };
        match end {
            Some(&end) => text[end..].iter().collect(),
            None => value.to_owned(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        let full = |start: usize| self.ends(&text, start).contains(&text.len());
        let start = if greedy {
            (0..=text.len()).find(|&s| full(s))
        } else {
            (0..=text.len()).rev().find(|&s| full(s))
        };
        match start {
            Some(start) => text[..start].iter().collect(),
            None => value.to_owned(),
        }
    }

    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        let mut last_match_end: Option<usize> = None;
        while pos <= text.len() {
            let found = (pos..=text.len()).find_map(|start| {
                let end = *self.ends(&text, start).last()?;
                // An empty match right after the previous match does not count.
                if end == start && last_match_end == Some(start) {
                    return None;
                }
                Some((start, end))
            });
            let Some((start, end)) = found else { break };
            out.extend(&text[pos..start]);
            out.push_str(replacement);
            last_match_end = Some(end);
            if end == start {
                if let Some(&c) = text.get(end) {
                    out.push(c);
                }
                pos = end + 1;
            } else {
                pos = end;
            }
            if !all {
                break;
            }
        }
        if pos < text.len() {
            out.extend(&text[pos..]);
        }
        out
    }
}

/// Splits the operands of `ENV`, `LABEL` and `ARG` into words at whitespace
/// outside quotes, keeping quotes and escapes (expansion removes them later).
pub(crate) fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c == escape && quote != Some('\'') {
            // An escape at the very end of the text is dropped.
            let Some(next) = chars.next() else { break };
            word.push(c);
            word.push(next);
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

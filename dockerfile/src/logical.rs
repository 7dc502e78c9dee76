//! Logical lines: the Dockerfile cut into instructions, with line
//! continuations joined, comments inside continuations dropped and the
//! here-documents of `RUN`, `COPY` and `ADD` read (any number per line,
//! anywhere on the line, `<<-` and quoted delimiters).
//!
//! `parse-dockerfile` reads the structure of each instruction (flags, JSON
//! forms, words); it only knows a here-document at the very start of a `RUN`
//! command, so this pass finds them all first, and hands the parser a copy of
//! the text in which the `<<` of each marker and each here-document body are
//! blanked out (same length, so every byte offset stays valid).

use std::ops::Range;

use crate::error::{DockerfileError, ErrorCode};

/// The instructions Docker knows, as written in upper case.
pub(crate) const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One instruction as found in the text.
#[derive(Debug, Clone)]
pub(crate) struct Logical {
    /// The instruction keyword in upper case.
    pub keyword: String,
    pub keyword_span: Range<usize>,
    /// 1-based line of the keyword.
    pub line: usize,
    /// From the keyword to the end of the last line (here-documents included).
    pub span: Range<usize>,
    /// The pieces of the logical line, continuations removed.
    pub segments: Vec<Range<usize>>,
    pub heredocs: Vec<RawHeredoc>,
}

/// A here-document found by this pass.
#[derive(Debug, Clone)]
pub(crate) struct RawHeredoc {
    /// The marker word, `<<EOF`, `<<-"EOF"`, `2<<EOF`.
    pub marker: Range<usize>,
    /// The offset just after `<<`.
    pub after_lt: usize,
    pub name: String,
    pub expand: bool,
    pub strip_tabs: bool,
    pub content: String,
    /// The body and its closing line.
    pub body: Range<usize>,
}

impl Logical {
    /// The logical line from `from` on (continuations removed).
    pub fn joined_from(&self, source: &str, from: usize) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            if segment.end <= from {
                continue;
            }
            let start = segment.start.max(from);
            out.push_str(&source[start..segment.end]);
        }
        out
    }

    /// The instruction as written: continuation lines joined, then the
    /// here-documents as written.
    pub fn original(&self, source: &str) -> String {
        let mut out = self
            .joined_from(source, self.span.start)
            .trim_end()
            .to_owned();
        for heredoc in &self.heredocs {
            out.push('\n');
            out.push_str(source[heredoc.body.clone()].trim_end_matches(['\n', '\r']));
        }
        out
    }
}

struct Line<'a> {
    start: usize,
    /// The line without its `\n` and a `\r` before it.
    text: &'a str,
}

fn lines(source: &str, base: usize) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut offset = base;
    for raw in source[base..].split_inclusive('\n') {
        let text = raw.strip_suffix('\n').unwrap_or(raw);
        let text = text.strip_suffix('\r').unwrap_or(text);
        out.push(Line {
            start: offset,
            text,
        });
        offset += raw.len();
    }
    out
}

fn is_blank_or_comment(text: &str) -> bool {
    let trimmed = text.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Cuts `source` (from byte `base`, after a byte order mark) into logical
/// instructions.
pub(crate) fn split(
    name: &str,
    source: &str,
    base: usize,
    escape: char,
) -> Result<Vec<Logical>, DockerfileError> {
    let lines = lines(source, base);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        // A line holding only the escape character continues onto the
        // next: nothing, so it is skipped like a blank line.
        if is_blank_or_comment(line.text) || line.text.trim() == escape.to_string() {
            i += 1;
            continue;
        }
        let indent = line.text.len() - line.text.trim_start().len();
        let start = line.start + indent;
        let keyword_len = line.text[indent..]
            .find(|c: char| c.is_whitespace() || c == escape)
            .unwrap_or(line.text.len() - indent);
        let keyword_span = start..start + keyword_len;
        let keyword = source[keyword_span.clone()].to_ascii_uppercase();
        let first_line = i + 1;
        let mut segments = Vec::new();
        let mut segment_start = start;
        let mut end;
        loop {
            let current = &lines[i];
            let content = current.text.trim_end();
            let content_end = current.start + content.len();
            end = content_end;
            i += 1;
            if let Some(before) = content.strip_suffix(escape) {
                segments.push(segment_start..current.start + before.len());
                // Blank lines and comments inside a continuation are skipped.
                while i < lines.len() && is_blank_or_comment(lines[i].text) {
                    i += 1;
                }
                if i >= lines.len() {
                    break;
                }
                segment_start = lines[i].start;
                continue;
            }
            segments.push(segment_start..content_end);
            break;
        }
        let mut logical = Logical {
            keyword,
            keyword_span,
            line: first_line,
            span: start..end,
            segments,
            heredocs: Vec::new(),
        };
        if matches!(logical.keyword.as_str(), "RUN" | "COPY" | "ADD") {
            let markers = find_markers(source, &logical, escape);
            for mut heredoc in markers {
                let body_start = lines.get(i).map_or(source.len(), |l| l.start);
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let body_line = &lines[i];
                    i += 1;
                    let text = if heredoc.strip_tabs {
                        body_line.text.trim_start_matches('\t')
                    } else {
                        body_line.text
                    };
                    if text == heredoc.name {
                        closed = true;
                        heredoc.body = body_start..body_line.start + body_line.text.len();
                        logical.span.end = heredoc.body.end;
                        break;
                    }
                    content.push_str(text);
                    content.push('\n');
                }
                if !closed {
                    return Err(DockerfileError::new(
                        ErrorCode::UnterminatedHeredoc,
                        format!("here-document `{}` is never closed", heredoc.name),
                        name,
                        source,
                        heredoc.marker.clone(),
                    )
                    .with_label("opened here")
                    .with_help(format!(
                        "end it with a line holding only `{}`",
                        heredoc.name
                    )));
                }
                heredoc.content = content;
                logical.heredocs.push(heredoc);
            }
        }
        out.push(logical);
    }
    Ok(out)
}

/// Finds the here-document markers of a logical line: words (outside
/// quotes) of the form `[digits]<<[-]DELIM` where DELIM has no `<`.
fn find_markers(source: &str, logical: &Logical, escape: char) -> Vec<RawHeredoc> {
    // The logical line as (source offset, char) pairs.
    let chars: Vec<(usize, char)> = logical
        .segments
        .iter()
        .flat_map(|segment| {
            source[segment.clone()]
                .char_indices()
                .map(move |(i, c)| (segment.start + i, c))
        })
        .collect();
    let mut markers = Vec::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    let mut at_word_start = true;
    while i < chars.len() {
        let (_, c) = chars[i];
        if let Some(q) = quote {
            if c == escape && q == '"' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            at_word_start = true;
            i += 1;
            continue;
        }
        if at_word_start {
            at_word_start = false;
            let word_end = word_end(&chars, i, escape);
            if let Some(heredoc) = marker(&chars[i..word_end], escape) {
                markers.push(heredoc);
                i = word_end;
                continue;
            }
        }
        if c == escape {
            i += 2;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
        }
        i += 1;
    }
    markers
}

fn word_end(chars: &[(usize, char)], start: usize, escape: char) -> usize {
    let mut quote: Option<char> = None;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i].1;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c.is_whitespace() => break,
            None if c == escape => i += 1,
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
        i += 1;
    }
    i.min(chars.len())
}

fn marker(word: &[(usize, char)], escape: char) -> Option<RawHeredoc> {
    let digits = word.iter().take_while(|(_, c)| c.is_ascii_digit()).count();
    let rest = &word[digits..];
    if rest.len() < 3 || rest[0].1 != '<' || rest[1].1 != '<' {
        return None;
    }
    let after_lt = rest[1].0 + 1;
    let strip_tabs = rest[2].1 == '-';
    let delim = &rest[2 + usize::from(strip_tabs)..];
    if delim.is_empty() || delim.iter().any(|(_, c)| *c == '<') {
        return None;
    }
    let mut name = String::new();
    let mut expand = true;
    let mut quote: Option<char> = None;
    let mut k = 0;
    while k < delim.len() {
        let c = delim[k].1;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => name.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                expand = false;
            }
            None if c == escape => {
                expand = false;
                if let Some((_, next)) = delim.get(k + 1) {
                    name.push(*next);
                }
                k += 1;
            }
            None => name.push(c),
        }
        k += 1;
    }
    if name.is_empty() || quote.is_some() {
        return None;
    }
    let first = word[0].0;
    let (last_offset, last_char) = word[word.len() - 1];
    Some(RawHeredoc {
        marker: first..last_offset + last_char.len_utf8(),
        after_lt,
        name,
        expand,
        strip_tabs,
        content: String::new(),
        body: 0..0,
    })
}

/// The text handed to `parse-dockerfile`: each marker's `<<` and each
/// here-document body blanked to spaces (newlines kept).
pub(crate) fn masked(source: &str, logicals: &[Logical]) -> String {
    let mut bytes = source.as_bytes().to_vec();
    for logical in logicals {
        for heredoc in &logical.heredocs {
            for b in &mut bytes[heredoc.after_lt - 2..heredoc.after_lt] {
                *b = b' ';
            }
            for b in &mut bytes[heredoc.body.clone()] {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
    }
    // Only ASCII bytes and whole here-document bodies were replaced, with
    // ASCII spaces; a body that held multi-byte characters is replaced in
    // full, so the text stays UTF-8. Should that ever not hold, fall back
    // to a lossy copy, which keeps the length of every valid part.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

//! Diagnostics: what the user sees when a Dockerfile is wrong.
//!
//! A [`DockerfileError`] carries the Dockerfile's name and text, the byte
//! span at fault, a stable code and a line of help. It renders through
//! `miette`, and it travels between the engine and the CLI as a
//! [`WireError`] (plain data, serde) from which [`DockerfileError::from_wire`]
//! rebuilds the same diagnostic on the other side.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use serde::{Deserialize, Serialize};

/// What kind of mistake a [`DockerfileError`] reports; each has a stable
/// code string (`servin::dockerfile::...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// A word in instruction position that is no Dockerfile instruction.
    UnknownInstruction,
    /// No `FROM` before the first instruction other than `ARG`, or no `FROM` at all.
    MissingFrom,
    /// A flag the instruction does not take (or one servin refuses).
    UnknownFlag,
    /// A known flag with a value that is not accepted.
    BadFlagValue,
    /// A `--mount` of a type servin cannot provide, or with a bad option.
    BadMount,
    /// A here-document whose closing delimiter never comes.
    UnterminatedHeredoc,
    /// `--from` (or `FROM`) naming a stage that does not exist.
    UnknownStage,
    /// Two stages with the same name.
    DuplicateStage,
    /// `--target` naming no stage.
    UnknownTarget,
    /// A JSON array form that Docker refuses.
    BadJson,
    /// An instruction `ONBUILD` cannot carry.
    BadOnbuild,
    /// A bad `ARG`, `ENV` or `LABEL` form (for example `ENV` without a value).
    BadArgument,
    /// Bad `HEALTHCHECK` options.
    BadHealthcheck,
    /// A `# syntax` naming a frontend other than Docker's Dockerfile 1.x.
    UnsupportedSyntax,
    /// A parser directive that is malformed or repeated.
    BadDirective,
    /// A word whose expansion fails (`${X:?}`, bad substitution, unclosed quote).
    BadExpansion,
    /// Any other syntax error found by the parser.
    Syntax,
}

impl ErrorCode {
    /// The code as shown to the user, e.g. `servin::dockerfile::unknown-instruction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownInstruction => "servin::dockerfile::unknown-instruction",
            Self::MissingFrom => "servin::dockerfile::missing-from",
            Self::UnknownFlag => "servin::dockerfile::unknown-flag",
            Self::BadFlagValue => "servin::dockerfile::bad-flag-value",
            Self::BadMount => "servin::dockerfile::bad-mount",
            Self::UnterminatedHeredoc => "servin::dockerfile::unterminated-heredoc",
            Self::UnknownStage => "servin::dockerfile::unknown-stage",
            Self::DuplicateStage => "servin::dockerfile::duplicate-stage",
            Self::UnknownTarget => "servin::dockerfile::unknown-target",
            Self::BadJson => "servin::dockerfile::bad-json",
            Self::BadOnbuild => "servin::dockerfile::bad-onbuild",
            Self::BadArgument => "servin::dockerfile::bad-argument",
            Self::BadHealthcheck => "servin::dockerfile::bad-healthcheck",
            Self::UnsupportedSyntax => "servin::dockerfile::unsupported-syntax",
            Self::BadDirective => "servin::dockerfile::bad-directive",
            Self::BadExpansion => "servin::dockerfile::bad-expansion",
            Self::Syntax => "servin::dockerfile::syntax",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mistake in a Dockerfile, at a byte span of its text.
#[derive(Debug, Clone)]
pub struct DockerfileError(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    code: ErrorCode,
    message: String,
    help: Option<String>,
    label: Option<String>,
    span: Range<usize>,
    line: usize,
    column: usize,
    source: NamedSource<String>,
}

impl DockerfileError {
    /// An error of `code` at `span` of `source` (the Dockerfile named `name`).
    /// A span past the end of the text is clamped to it.
    pub fn new(
        code: ErrorCode,
        message: impl Into<String>,
        name: &str,
        source: &str,
        span: Range<usize>,
    ) -> Self {
        let end = span.end.min(source.len());
        let start = span.start.min(end);
        let (line, column) = line_column(source, start);
        Self(Box::new(Inner {
            code,
            message: message.into(),
            help: None,
            label: None,
            span: start..end,
            line,
            column,
            source: NamedSource::new(name, source.to_owned()),
        }))
    }

    /// The same error with a line of help.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    /// The same error with a text on the label under the span.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.0.label = Some(label.into());
        self
    }

    /// What kind of mistake this is.
    pub fn kind(&self) -> ErrorCode {
        self.0.code
    }

    /// The message (without code or help).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The help line, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.0.help.as_deref()
    }

    /// The byte span of the Dockerfile at fault.
    pub fn span(&self) -> Range<usize> {
        self.0.span.clone()
    }

    /// 1-based line of the span's start.
    pub fn line(&self) -> usize {
        self.0.line
    }

    /// 1-based column (in characters) of the span's start.
    pub fn column(&self) -> usize {
        self.0.column
    }

    /// The plain-data form, for the engine to send.
    pub fn to_wire(&self) -> WireError {
        WireError {
            message: self.0.message.clone(),
            code: self.0.code,
            help: self.0.help.clone(),
            label: self.0.label.clone(),
            offset: self.0.span.start,
            length: self.0.span.len(),
            line: self.0.line,
            column: self.0.column,
        }
    }

    /// Rebuilds the diagnostic from its wire form and the Dockerfile it was
    /// found in (which the receiving side holds: it sent it).
    pub fn from_wire(wire: &WireError, name: &str, source: &str) -> Self {
        let start = wire.offset;
        let mut error = Self::new(
            wire.code,
            wire.message.clone(),
            name,
            source,
            start..start.saturating_add(wire.length),
        );
        error.0.help = wire.help.clone();
        error.0.label = wire.label.clone();
        error
    }
}

impl fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for DockerfileError {}

impl Diagnostic for DockerfileError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.0.code.as_str()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0
            .help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.0.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        // An error about the whole file (an empty one, an unknown target)
        // points at nothing in particular: no snippet.
        if self.0.span.is_empty() && self.0.label.is_none() {
            return None;
        }
        let label = LabeledSpan::new_primary_with_span(self.0.label.clone(), self.0.span.clone());
        Some(Box::new(std::iter::once(label)))
    }
}

/// The serializable form of a [`DockerfileError`]: what the engine sends so
/// the CLI can render the same diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The message.
    pub message: String,
    /// The kind of mistake.
    pub code: ErrorCode,
    /// The help line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The text under the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Byte offset of the span in the Dockerfile.
    pub offset: usize,
    /// Byte length of the span.
    pub length: usize,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (in characters) of the span's start.
    pub column: usize,
}

/// 1-based line and character column of byte `offset` in `source`.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Byte offset of the start of 1-based `line` in `source` (clamped to the end).
pub(crate) fn line_start(source: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    source
        .match_indices('\n')
        .nth(line - 2)
        .map_or(source.len(), |(i, _)| i + 1)
}

//! Problems found in a project file, as `miette` diagnostics.
//!
//! Every problem has a stable code (`servin::unknown_key`, ...), a label on the
//! exact span, and usually a line of help. They render as miette reports for
//! people and as JSON (file, line, column, code, message, help) for editors.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

use super::tree::Span;

/// The stable codes of project-file problems. Tools may match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// The file is not valid TOML or KDL.
    Syntax,
    /// A key the format does not have.
    UnknownKey,
    /// A value of the wrong type (a string where a list is needed, ...).
    WrongType,
    /// A value outside what a key accepts (an unknown enum word, a number
    /// out of range, a bad signal or capability name, ...).
    InvalidValue,
    /// A required key is missing.
    MissingKey,
    /// Two keys that exclude each other are both set.
    ConflictingKeys,
    /// A reference to an image, volume, network, container or secret that
    /// the file does not define.
    UndefinedReference,
    /// `depends_on` edges that form a cycle.
    DependencyCycle,
    /// Two containers publish the same host port.
    PortConflict,
    /// A malformed port string.
    InvalidPort,
    /// A malformed mount string.
    InvalidVolume,
    /// A malformed duration.
    InvalidDuration,
    /// A malformed size.
    InvalidSize,
    /// A malformed image reference.
    InvalidImageRef,
    /// A name that is not DNS-safe.
    InvalidName,
    /// A path (bind source, workspace, build context, secret file) that
    /// does not exist.
    MissingPath,
    /// An `env_file` that does not exist.
    MissingEnvFile,
    /// An `env_file` or `.env` with a malformed line.
    InvalidEnvFile,
    /// `${VAR}` with `VAR` unset and no default, or `${VAR:?message}`.
    UndefinedVariable,
    /// A malformed `${...}` expression.
    InvalidInterpolation,
}

impl Code {
    /// The code as users and tools see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "servin::syntax",
            Code::UnknownKey => "servin::unknown_key",
            Code::WrongType => "servin::wrong_type",
            Code::InvalidValue => "servin::invalid_value",
            Code::MissingKey => "servin::missing_key",
            Code::ConflictingKeys => "servin::conflicting_keys",
            Code::UndefinedReference => "servin::undefined_reference",
            Code::DependencyCycle => "servin::dependency_cycle",
            Code::PortConflict => "servin::port_conflict",
            Code::InvalidPort => "servin::invalid_port",
            Code::InvalidVolume => "servin::invalid_volume",
            Code::InvalidDuration => "servin::invalid_duration",
            Code::InvalidSize => "servin::invalid_size",
            Code::InvalidImageRef => "servin::invalid_image_ref",
            Code::InvalidName => "servin::invalid_name",
            Code::MissingPath => "servin::missing_path",
            Code::MissingEnvFile => "servin::missing_env_file",
            Code::InvalidEnvFile => "servin::invalid_env_file",
            Code::UndefinedVariable => "servin::undefined_variable",
            Code::InvalidInterpolation => "servin::invalid_interpolation",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// A source file that problems point into.
#[derive(Debug, Clone)]
pub struct SourceFile {
    source: Arc<NamedSource<String>>,
    text: Arc<str>,
    name: Arc<str>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let name: String = name.into();
        let text: String = text.into();
        SourceFile {
            source: Arc::new(NamedSource::new(name.clone(), text.clone()).with_language("toml")),
            text: text.into(),
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }
}

/// A secondary label.
#[derive(Debug, Clone)]
pub struct Note {
    pub span: Span,
    pub label: String,
}

/// One problem in a project file.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: Code,
    pub level: Level,
    pub message: String,
    pub span: Option<Span>,
    pub label: Option<String>,
    pub help: Option<String>,
    pub notes: Vec<Note>,
    pub file: SourceFile,
}

impl Problem {
    pub fn error(file: &SourceFile, code: Code, message: impl Into<String>) -> Self {
        Problem {
            code,
            level: Level::Error,
            message: message.into(),
            span: None,
            label: None,
            help: None,
            notes: Vec::new(),
            file: file.clone(),
        }
    }

    pub fn warning(file: &SourceFile, code: Code, message: impl Into<String>) -> Self {
        Problem {
            level: Level::Warning,
            ..Problem::error(file, code, message)
        }
    }

    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, span: Span, label: impl Into<String>) -> Self {
        self.notes.push(Note {
            span,
            label: label.into(),
        });
        self
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    /// The problem as editors read it.
    pub fn to_json(&self) -> JsonProblem {
        let (line, column, end_line, end_column) = match self.span {
            Some(s) => {
                let (l, c) = self.file.line_col(s.start);
                let (el, ec) = self.file.line_col(s.end);
                (Some(l), Some(c), Some(el), Some(ec))
            }
            None => (None, None, None, None),
        };
        JsonProblem {
            file: self.file.name().to_string(),
            line,
            column,
            end_line,
            end_column,
            severity: self.level,
            code: self.code.as_str(),
            message: self.message.clone(),
            label: self.label.clone(),
            help: self.help.clone(),
        }
    }

    /// Renders the problem as a miette report without colour, `width`
    /// columns wide (used by tests and when output is not a terminal).
    pub fn render_plain(&self, width: usize) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(width)
                .with_links(false);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("{}: {}\n", self.code, self.message);
        }
        out
    }
}

/// A problem as JSON, for editors: `servin validate --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct JsonProblem {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub severity: Level,
    pub code: &'static str,
    pub message: String,
    pub label: Option<String>,
    pub help: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.level {
            Level::Error => miette::Severity::Error,
            Level::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.span.map(|_| &*self.file.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let primary = LabeledSpan::new_primary_with_span(self.label.clone(), span);
        let notes = self
            .notes
            .iter()
            .map(|n| LabeledSpan::new_with_span(Some(n.label.clone()), n.span));
        Some(Box::new(std::iter::once(primary).chain(notes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_in_characters() {
        let f = SourceFile::new("servin.toml", "a = 1\nbé = \"x\"\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        // "bé = " is 6 bytes, 5 characters: the value starts at column 6.
        assert_eq!(f.line_col(12), (2, 6));
    }
}

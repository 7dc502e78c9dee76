//! All human output goes through here, to stderr; data goes to stdout from
//! the commands themselves.

use std::io::{IsTerminal, Write};

use servin::project::Failure;
use servin::project::diagnostic::Problem;

/// How a command failed.
#[derive(Debug)]
pub enum Failed {
    /// The problems were printed already.
    Reported,
    /// Exit with this code; what happened was printed already (a
    /// container's exit code, Docker's 125/126/127).
    Code(u8),
    /// The command line asked for something that cannot be (exit code 2).
    Usage(String),
    /// An error to print with its causes.
    Error(Box<dyn std::error::Error + Send + Sync>),
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed::Error(Box::new(e))
    }
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Renders one project problem as a miette report.
pub fn render(problem: &Problem) -> String {
    let theme = if color() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(width())
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, problem).is_err() {
        out = format!("{}: {}\n", problem.code, problem.message);
    }
    out
}

pub fn problem(problem: &Problem) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{}", render(problem));
}

/// Prints every problem of a failed load, then a one-line summary.
pub fn failure(failure: &Failure) {
    for p in &failure.problems {
        problem(p);
    }
    let n = failure.errors();
    let s = if n == 1 { "" } else { "s" };
    error(&format!("{} has {n} problem{s}", shown(&failure.path)));
}

/// A path as the user would type it: relative to the current folder when
/// below it.
pub fn shown(path: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}

pub fn error(msg: &str) {
    let mut err = std::io::stderr().lock();
    if color() {
        let _ = writeln!(err, "\x1b[1;31merror\x1b[0m: {msg}");
    } else {
        let _ = writeln!(err, "error: {msg}");
    }
}

pub fn warning(msg: &str) {
    let mut err = std::io::stderr().lock();
    if color() {
        let _ = writeln!(err, "\x1b[1;33mwarning\x1b[0m: {msg}");
    } else {
        let _ = writeln!(err, "warning: {msg}");
    }
}

pub fn info(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Asks on stderr, without a newline: the answer is typed after it.
pub fn prompt(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Runs `f` on every item (container, image, network, volume), reporting
/// each failure with its causes and going on; `Failed::Reported` at the end
/// when any failed.
pub fn each(items: &[String], mut f: impl FnMut(&str) -> Result<(), Failed>) -> Result<(), Failed> {
    let mut failed = false;
    for item in items {
        match f(item) {
            Ok(()) => {}
            Err(Failed::Error(e)) => {
                error_chain(&*e);
                failed = true;
            }
            Err(Failed::Reported) => failed = true,
            Err(other) => return Err(other),
        }
    }
    if failed {
        Err(Failed::Reported)
    } else {
        Ok(())
    }
}

/// Prints an error and its causes, each once.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) {
    error(&e.to_string());
    let mut source = e.source();
    let mut err = std::io::stderr().lock();
    while let Some(s) = source {
        let _ = writeln!(err, "  caused by: {s}");
        source = s.source();
    }
}

/// Writes rows as a table to stdout: columns padded to their widest cell
/// and three spaces apart, like docker's tables.
pub fn table<R: AsRef<[String]>>(rows: &[R]) -> Result<(), Failed> {
    data(&table_text(rows))
}

/// The text of [`table`]; rows may differ in length.
pub fn table_text<R: AsRef<[String]>>(rows: &[R]) -> String {
    let n = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .map(|r| r.as_ref().get(c).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let r = r.as_ref();
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
                }
            }
            line
        })
        .collect();
    lines.join("\n")
}

/// Whether stdout is a terminal (a live view redraws in place there).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Redraws a terminal screen with `text` (cursor home, then each line
/// cleared to its end, then the rest of the screen cleared), as `docker
/// stats` refreshes its table.
pub fn screen(text: &str) -> Result<(), Failed> {
    let mut out = std::io::stdout().lock();
    out.write_all(b"\x1b[H")?;
    for line in text.lines() {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\x1b[K\n")?;
    }
    out.write_all(b"\x1b[J")?;
    out.flush()?;
    Ok(())
}

/// Clears a terminal screen before the first [`screen`].
pub fn clear_screen() -> Result<(), Failed> {
    let mut out = std::io::stdout().lock();
    out.write_all(b"\x1b[2J\x1b[H")?;
    out.flush()?;
    Ok(())
}

/// Writes data to stdout.
pub fn data(text: &str) -> Result<(), Failed> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

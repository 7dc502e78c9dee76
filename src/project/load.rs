//! The loading pipeline: find → read → parse → interpolate → check → normalise.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use super::diagnostic::{Code, Problem, SourceFile};
use super::normal::Project;
use super::tree::{Node, Path, Span, Value};
use super::{kdl_source, normalise, schema, toml_source, values};

/// The names a project file may have, in the order they are looked for.
pub const FILE_NAMES: [&str; 2] = ["servin.toml", "servin.kdl"];

/// How to load a project.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The project name from `-p` or `SERVIN_PROJECT_NAME`; it wins over the
    /// file's `[project] name`.
    pub project_name: Option<String>,
    /// The environment for `${VAR}` interpolation. Variables from a `.env`
    /// file beside the project file are added under these.
    pub env: BTreeMap<String, String>,
}

/// A loaded, valid project.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub project: Project,
    pub warnings: Vec<Problem>,
}

/// A project that did not load: every problem found, errors and warnings.
#[derive(Debug, Clone)]
pub struct Failure {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl Failure {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.problems {
            write!(f, "{}", p.render_plain(100))?;
        }
        Ok(())
    }
}

/// Why no project file could be found or read.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no servin.toml or servin.kdl in {} or any folder above it", .0.display())]
    NotFound(PathBuf),
    #[error("both servin.toml and servin.kdl are in {}", .0.display())]
    Ambiguous(PathBuf),
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Finds the project file: `explicit` if given, else `servin.toml` or
/// `servin.kdl` in `start` or the nearest folder above it that has one.
pub fn find(start: &FsPath, explicit: Option<&FsPath>) -> Result<PathBuf, FindError> {
    if let Some(p) = explicit {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            start.join(p)
        };
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => find_in(&p)?.ok_or(FindError::NotFound(p)),
            Ok(_) => Ok(p),
            Err(source) => Err(FindError::Read { path: p, source }),
        };
    }
    for dir in start.ancestors() {
        if let Some(found) = find_in(dir)? {
            return Ok(found);
        }
    }
    Err(FindError::NotFound(start.to_path_buf()))
}

fn find_in(dir: &FsPath) -> Result<Option<PathBuf>, FindError> {
    let found: Vec<PathBuf> = FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(FindError::Ambiguous(dir.to_path_buf())),
    }
}

/// Reads and loads the project file at `path`.
pub fn load(path: &FsPath, options: &LoadOptions) -> Result<Result<Loaded, Failure>, FindError> {
    let bytes = std::fs::read(path).map_err(|source| FindError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(load_str(path, &text, options))
}

/// Loads a project from text; `path` names the file (its extension picks
/// the format, its folder is where relative paths start).
pub fn load_str(path: &FsPath, contents: &str, options: &LoadOptions) -> Result<Loaded, Failure> {
    let shown = display_name(path);
    let file = SourceFile::new(shown, contents);
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), FsPath::to_path_buf);
    let fail = |problems: Vec<Problem>| Failure {
        path: path.to_path_buf(),
        problems,
    };

    let is_kdl = path.extension().is_some_and(|e| e == "kdl");
    let parsed = if is_kdl {
        kdl_source::parse(contents)
    } else {
        toml_source::parse(contents)
    };
    let mut root = match parsed {
        Ok(root) => root,
        Err(errors) => {
            let format = if is_kdl { "KDL" } else { "TOML" };
            return Err(fail(
                errors
                    .into_iter()
                    .map(|e| {
                        let mut p = Problem::error(
                            &file,
                            Code::Syntax,
                            format!("invalid {format}: {}", e.message),
                        )
                        .at(e.span, e.message);
                        if let Some(h) = e.help {
                            p = p.help(h);
                        }
                        p
                    })
                    .collect(),
            ));
        }
    };

    let mut problems = Vec::new();
    let vars = variables(&dir, options, &mut problems);
    let mut unresolved = Vec::new();
    interpolate(
        &mut root,
        &Path::root(),
        &file,
        &vars,
        &mut problems,
        &mut unresolved,
    );

    let checked = schema::check(&mut root, &file);
    problems.extend(checked.problems);
    let mut pruned = Vec::new();
    for failed in checked.failed.iter().chain(&unresolved) {
        // Take out the whole key under the entry (containers.web.ports), so
        // the entry still reads and its other keys are still checked.
        let cut = Path(failed.0[..failed.0.len().min(3)].to_vec());
        root.remove(&cut.0);
        pruned.push(cut);
    }

    let (project, found) = normalise::normalise(&normalise::Inputs {
        file: &file,
        root: &root,
        dir: &dir,
        vars: &vars,
        project_name: options.project_name.as_deref(),
        pruned: &pruned,
    });
    problems.extend(found);
    problems.sort_by_key(|p| (p.file.name() != file.name(), p.span.map_or(0, |s| s.start)));

    if problems.iter().any(Problem::is_error) {
        return Err(fail(problems));
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        project,
        warnings: problems,
    })
}

/// The file name as shown in diagnostics: relative to the current folder
/// when below it.
fn display_name(path: &FsPath) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(FsPath::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// The variables for interpolation: the environment over `.env`.
fn variables(
    dir: &FsPath,
    options: &LoadOptions,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let dotenv = dir.join(".env");
    if let Ok(text) = std::fs::read_to_string(&dotenv) {
        match values::parse_dotenv(&text) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    if let Some(v) = v.or_else(|| options.env.get(&k).cloned()) {
                        vars.insert(k, v);
                    }
                }
            }
            Err(e) => {
                let file = SourceFile::new(display_name(&dotenv), text);
                problems.push(
                    Problem::error(
                        &file,
                        Code::InvalidEnvFile,
                        format!(".env has a bad line {}", e.line),
                    )
                    .at(Span::new(e.start, e.end), e.message.clone())
                    .help("lines are `KEY=VALUE`, `export KEY=VALUE` or `# comment`"),
                );
            }
        }
    }
    vars.extend(options.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

/// Interpolates `${VAR}` in every string value of the tree. The paths of
/// strings that could not be interpolated go to `unresolved`, so that later
/// checks do not also complain about their raw text.
fn interpolate(
    node: &mut Node,
    path: &Path,
    file: &SourceFile,
    vars: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
    unresolved: &mut Vec<Path>,
) {
    match &mut node.value {
        Value::String(s) if s.contains('$') => {
            let lookup = |name: &str| vars.get(name).cloned();
            match values::interpolate(s, &lookup) {
                Ok(out) => *s = out,
                Err(e) => {
                    unresolved.push(path.clone());
                    let span = inner_span(file.text(), node.span, s, e.start, e.end);
                    let (code, help) = match &e.kind {
                        values::InterpolationErrorKind::Unset { name } => (
                            Code::UndefinedVariable,
                            format!(
                                "set `{name}` in the environment or in `.env` beside the project file, or give a default: `${{{name}:-value}}`"
                            ),
                        ),
                        values::InterpolationErrorKind::Required { name, .. } => (
                            Code::UndefinedVariable,
                            format!("set `{name}` in the environment or in `.env` beside the project file"),
                        ),
                        values::InterpolationErrorKind::Syntax(_) => (
                            Code::InvalidInterpolation,
                            "write `${VAR}`, `${VAR:-default}` or `${VAR:?message}`; `$$` is a literal `$`".to_string(),
                        ),
                    };
                    problems.push(
                        Problem::error(file, code, e.message())
                            .at(span, "here")
                            .help(help),
                    );
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &path.index(i), file, vars, problems, unresolved);
            }
        }
        Value::Table(entries) => {
            for e in entries {
                let child = path.key(&e.key);
                interpolate(&mut e.node, &child, file, vars, problems, unresolved);
            }
        }
        _ => {}
    }
}

/// The span of bytes `start..end` of a string value inside its quoted
/// source text, when the source spells the value literally (no escapes);
/// else the whole value's span.
fn inner_span(text: &str, span: Span, value: &str, start: usize, end: usize) -> Span {
    let raw = text.get(span.start..span.end).unwrap_or("");
    for quote in ["\"\"\"", "'''", "\"", "'", "#\"", ""] {
        if let Some(inner) = raw.strip_prefix(quote)
            && inner.starts_with(value)
        {
            let base = span.start + quote.len();
            return Span::new(base + start, base + end);
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_span_points_into_the_quotes() {
        let text = "a = \"x ${B} y\"";
        let span = Span::new(4, 14);
        assert_eq!(inner_span(text, span, "x ${B} y", 2, 6), Span::new(7, 11));
        assert_eq!(&text[7..11], "${B}");
    }

    #[test]
    fn finds_the_nearest_project_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).expect("mkdir");
        std::fs::write(dir.path().join("servin.toml"), "").expect("write");
        assert_eq!(
            find(&nested, None).ok(),
            Some(dir.path().join("servin.toml"))
        );
        std::fs::write(dir.path().join("servin.kdl"), "").expect("write");
        assert!(matches!(find(&nested, None), Err(FindError::Ambiguous(_))));
    }
}

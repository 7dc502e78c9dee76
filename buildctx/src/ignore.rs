//! `.dockerignore`: which paths of the build context the builder never sees.
//!
//! Docker's rules, which are not gitignore's:
//!
//! - A line starting with `#` is a comment (only at the very start of the
//!   line: ` #x` is the pattern `#x`). Lines are trimmed; blank lines are
//!   skipped; a byte-order mark before the first line is dropped.
//! - Every pattern is relative to the context root, whatever its form:
//!   `foo`, `/foo` and `./foo` all mean `<root>/foo` and never `x/foo`
//!   (gitignore would match `foo` at any depth). Patterns are cleaned as
//!   Go's `filepath.Clean` does (`a/../b` is `b`, `foo/` is `foo`), so a
//!   trailing slash does not limit a pattern to folders.
//! - `*` matches any run of characters but `/`, `?` one character but `/`,
//!   `[a-z]` / `[^a-z]` a class (Go's `filepath.Match` grammar: only `^`
//!   negates, `!` inside a class is an ordinary character), and `\` escapes
//!   the next character. `**` matches any number of folders, zero included
//!   (`**/*.go` matches `a.go` and `x/y/a.go`; a trailing `**` matches
//!   everything below).
//! - `!pattern` is an exception: it re-includes what it matches. The last
//!   pattern that matches a path decides.
//! - A path is excluded when a pattern matches it *or one of its parent
//!   folders*: `build` excludes `build/x/y`. An exception can still
//!   re-include a path below an excluded folder (`build` then
//!   `!build/keep.txt`), so a walker may only skip an excluded folder when
//!   [`Matcher::may_reinclude_under`] says no exception can reach below it.
//!
//! A lone `!` and malformed patterns (an unterminated or empty `[...]`, a
//! trailing `\`) are errors naming the line, as `filepath.Match` refuses them
//! in Docker.
//!
//! ## The Dockerfile and the ignore file themselves
//!
//! The classic `docker build` CLI sends the Dockerfile and `.dockerignore`
//! even when the patterns exclude them, and the daemon takes them out of the
//! context again before any `COPY` runs: the builder reads the Dockerfile,
//! `COPY`/`ADD` never see an excluded Dockerfile or `.dockerignore`. Servin
//! gets the same result more simply: the CLI reads the Dockerfile on its
//! own (it may even live outside the context), and the context index applies
//! the patterns to every path, these two included.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
};

/// Why a `.dockerignore` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A line holds a pattern Docker refuses.
    #[error("line {line}: bad pattern {pattern:?}: {reason}")]
    Pattern {
        /// 1-based line number in the file.
        line: usize,
        /// The line as written (trimmed).
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The ignore file exists but cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The ignore file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The ignore file holds a bad pattern.
    #[error("bad ignore file {}", path.display())]
    InFile {
        /// The ignore file.
        path: PathBuf,
        /// The bad pattern ([`IgnoreError::Pattern`]).
        #[source]
        source: Box<IgnoreError>,
    },
}

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// This exact character.
    Char(char),
    /// `*`: any run of characters but `/`.
    Any,
    /// `?`: one character but `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` before more pattern: zero or more whole folders (`(.*/)?`).
    AnyDirs,
    /// `**` at the end: anything at all.
    AnyTail,
}

/// One compiled line of a `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    exception: bool,
    tokens: Vec<Token>,
    /// For a pattern that is `**` then only plain characters (`**/foo`,
    /// `**.go`): the text after `**`, which Docker matches as a plain
    /// suffix of the path. So `**.go` matches `a/b.go`, which the
    /// segment-wise reading of `**` alone would not.
    suffix: Option<String>,
}

impl Pattern {
    /// The cleaned pattern, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception (it re-includes what it matches).
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    fn matches(&self, path: &[char]) -> bool {
        match &self.suffix {
            Some(suffix) => {
                let path: String = path.iter().collect();
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            None => match_tokens(&self.tokens, path),
        }
    }

    /// Whether this pattern could match `dir` itself, one of its parents,
    /// or some path below `dir` (`dir_slash` is `dir` followed by `/`).
    fn may_match_below(&self, dir_slash: &[char]) -> bool {
        self.suffix.is_some() || match_prefix(&self.tokens, dir_slash)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exception {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

/// The compiled patterns of one `.dockerignore`, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compiles the text of a `.dockerignore` (see the [module
    /// documentation](self) for the rules).
    ///
    /// # Errors
    ///
    /// [`IgnoreError::Pattern`] naming the first bad line.
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let bad = |reason| IgnoreError::Pattern {
                line,
                pattern: trimmed.to_owned(),
                reason,
            };
            let (exception, body) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            if body.is_empty() {
                return Err(bad("an exception needs a pattern after `!`"));
            }
            let mut cleaned = clean(body);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let tokens = compile(&cleaned).map_err(bad)?;
            let suffix = cleaned
                .strip_prefix("**")
                .filter(|rest| !rest.contains(['*', '?', '[', ']', '\\']))
                .map(str::to_owned);
            patterns.push(Pattern {
                text: cleaned,
                exception,
                tokens,
                suffix,
            });
        }
        Ok(Matcher { patterns })
    }

    /// The patterns, in file order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are no patterns (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the path (relative to the context root, `/`-separated) is
    /// left out of the context: the last pattern matching it or one of its
    /// parent folders decides, and an exception re-includes.
    ///
    /// Docker's patterns do not tell files from folders (a trailing `/` is
    /// cleaned away), so the answer is the same for both.
    pub fn excluded(&self, rel_path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let path = normalise(rel_path);
        let chars: Vec<char> = path.chars().collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // Docker's shortcut: an exclusion cannot change an excluded
            // path, nor an exception an included one.
            if pattern.exception != excluded {
                continue;
            }
            let hit = pattern.matches(&chars)
                || chars
                    .iter()
                    .enumerate()
                    .any(|(i, c)| *c == '/' && pattern.matches(&chars[..i]));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// The walker's form of [`Matcher::excluded`]: `parent` holds, for each
    /// pattern, whether it matched the parent folder or one of its parents
    /// (all `false` for entries at the root). Returns whether `rel_path` is
    /// excluded and the same flags for `rel_path`, to pass on to its
    /// children. Each pattern is tried once per path instead of once per
    /// parent.
    pub fn excluded_below(&self, rel_path: &str, parent: &[bool]) -> (bool, Vec<bool>) {
        if self.patterns.is_empty() {
            return (false, Vec::new());
        }
        let chars: Vec<char> = rel_path.chars().collect();
        let flags: Vec<bool> = self
            .patterns
            .iter()
            .enumerate()
            .map(|(i, p)| parent.get(i).copied().unwrap_or(false) || p.matches(&chars))
            .collect();
        let mut excluded = false;
        for (pattern, hit) in self.patterns.iter().zip(&flags) {
            if *hit {
                excluded = !pattern.exception;
            }
        }
        (excluded, flags)
    }

    /// Whether some exception might re-include a path below the folder
    /// `dir` (relative to the root). When this is `false` for an excluded
    /// folder, nothing below it can be in the context and a walker can skip
    /// it whole. The answer errs on the side of `true`.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let mut chars: Vec<char> = normalise(dir).chars().collect();
        chars.push('/');
        self.patterns
            .iter()
            .any(|p| p.exception && p.may_match_below(&chars))
    }
}

/// Loads the patterns that apply to a build: `<Dockerfile>.dockerignore`
/// next to the Dockerfile (`app.Dockerfile.dockerignore` for
/// `app.Dockerfile`) wins over `<context_dir>/.dockerignore`, as BuildKit
/// decides; with neither, nothing is excluded. A relative `dockerfile` is
/// taken from the current folder, as `docker build -f` takes it.
///
/// # Errors
///
/// [`IgnoreError::Read`] when the chosen file cannot be read,
/// [`IgnoreError::InFile`] when it holds a bad pattern.
pub fn load_for(context_dir: &Path, dockerfile: &Path) -> Result<Matcher, IgnoreError> {
    let mut candidates = Vec::with_capacity(2);
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        candidates.push(dockerfile.with_file_name(specific));
    }
    candidates.push(context_dir.join(".dockerignore"));
    for path in candidates {
        match fs::read_to_string(&path) {
            Ok(text) => {
                return Matcher::parse(&text).map_err(|e| IgnoreError::InFile {
                    path,
                    source: Box::new(e),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(IgnoreError::Read { path, source }),
        }
    }
    Ok(Matcher::default())
}

/// Go's `filepath.Clean` for `/`-separated paths: no `.` segments, no
/// doubled or trailing `/`, `..` folded into its parent where there is one
/// (and dropped at a rooted path's root). The empty path is `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(last) if *last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// A path as the matcher compares it: cleaned, no leading `/`.
fn normalise(path: &str) -> String {
    let cleaned = clean(path);
    match cleaned.strip_prefix('/') {
        Some(rest) => rest.to_owned(),
        None => cleaned,
    }
}

/// Compiles a cleaned pattern, refusing what Go's `filepath.Match` refuses.
pub(crate) fn compile(pattern: &str) -> Result<Vec<Token>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i == chars.len() {
                    Token::AnyTail
                } else {
                    Token::AnyDirs
                });
            }
            '*' => tokens.push(Token::Any),
            '?' => tokens.push(Token::One),
            '\\' => match chars.get(i) {
                Some(next) => {
                    tokens.push(Token::Char(*next));
                    i += 1;
                }
                None => return Err("a trailing `\\` escapes nothing"),
            },
            '[' => {
                let (token, next) = compile_class(&chars, i)?;
                tokens.push(token);
                i = next;
            }
            other => tokens.push(Token::Char(other)),
        }
    }
    Ok(tokens)
}

/// Compiles the class whose body starts at `chars[start]` (just after `[`);
/// returns the class and the index after its `]`.
fn compile_class(chars: &[char], start: usize) -> Result<(Token, usize), &'static str> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err("a `[` class is not closed by `]`"),
            Some(']') if !ranges.is_empty() => {
                return Ok((Token::Class { negated, ranges }, i + 1));
            }
            Some(_) => {}
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (end, next) = class_char(chars, i + 1)?;
            hi = end;
            i = next;
            if hi < lo {
                return Err("a range in `[...]` ends before it starts");
            }
        }
        ranges.push((lo, hi));
    }
}

/// One character of a class, `\`-escaped or not.
fn class_char(chars: &[char], i: usize) -> Result<(char, usize), &'static str> {
    match chars.get(i) {
        None => Err("a `[` class is not closed by `]`"),
        Some('-') | Some(']') => Err("a `[` class is empty or has a stray `-` or `]`"),
        Some('\\') => match chars.get(i + 1) {
            Some(c) => Ok((*c, i + 2)),
            None => Err("a `[` class is not closed by `]`"),
        },
        Some(c) => Ok((*c, i + 1)),
    }
}

fn class_matches(negated: bool, ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != negated
}

/// Whether the tokens match all of `s`.
pub(crate) fn match_tokens(tokens: &[Token], s: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Char(c) => s.first() == Some(c) && match_tokens(rest, &s[1..]),
        Token::One => s.first().is_some_and(|c| *c != '/') && match_tokens(rest, &s[1..]),
        Token::Class { negated, ranges } => {
            s.first()
                .is_some_and(|c| class_matches(*negated, ranges, *c))
                && match_tokens(rest, &s[1..])
        }
        Token::Any => {
            for i in 0..=s.len() {
                if match_tokens(rest, &s[i..]) {
                    return true;
                }
                if s.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Token::AnyDirs => {
            match_tokens(rest, s)
                || s.iter()
                    .enumerate()
                    .any(|(i, c)| *c == '/' && match_tokens(rest, &s[i + 1..]))
        }
        Token::AnyTail => true,
    }
}

/// Whether the tokens match a parent folder of `s` (which ends with `/`),
/// or could match `s` followed by more.
fn match_prefix(tokens: &[Token], s: &[char]) -> bool {
    let Some(next) = s.first() else {
        return true;
    };
    let Some((first, rest)) = tokens.split_first() else {
        return *next == '/';
    };
    match first {
        Token::Char(c) => next == c && match_prefix(rest, &s[1..]),
        Token::One => *next != '/' && match_prefix(rest, &s[1..]),
        Token::Class { negated, ranges } => {
            class_matches(*negated, ranges, *next) && match_prefix(rest, &s[1..])
        }
        Token::Any => {
            for i in 0..=s.len() {
                if match_prefix(rest, &s[i..]) {
                    return true;
                }
                if s.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Token::AnyDirs | Token::AnyTail => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// (patterns, path, excluded?)
    const TABLE: &[(&str, &str, bool)] = &[
        // Docker's documented examples.
        ("*/temp*", "somedir/temporary.txt", true),
        ("*/temp*", "somedir/temp", true),
        ("*/temp*", "temp", false),
        ("*/temp*", "a/b/temp", false),
        ("*/*/temp*", "somedir/subdir/temporary.txt", true),
        ("*/*/temp*", "somedir/temporary.txt", false),
        ("temp?", "tempa", true),
        ("temp?", "temp", false),
        ("temp?", "tempab", false),
        ("temp?", "x/tempa", false),
        ("**/*.go", "a.go", true),
        ("**/*.go", "x/y/a.go", true),
        ("**/*.go", "x/y/a.goo", false),
        ("*.md\n!README*.md", "README-secret.md", false),
        ("*.md\n!README*.md", "CHANGES.md", true),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-secret.md",
            true,
        ),
        ("*.md\n!README*.md\nREADME-secret.md", "README.md", false),
        // Root-anchored, unlike gitignore.
        ("foo", "foo", true),
        ("foo", "x/foo", false),
        ("foo", "foo/bar/baz", true),
        ("/abs", "abs", true),
        ("/abs", "x/abs", false),
        ("./rel", "rel", true),
        ("a/../b", "b", true),
        ("a/../b", "a/b", false),
        ("dir/", "dir", true),
        ("dir/", "dir/file", true),
        ("dir/", "dirx", false),
        ("**", "anything/at/all", true),
        ("**", "x", true),
        ("a/**", "a/b/c", true),
        ("a/**", "a", false),
        ("a/**/z", "a/z", true),
        ("a/**/z", "a/b/c/z", true),
        ("a/**/z", "a/b/c/zz", false),
        // A leading `**` then plain text is a suffix, as Docker matches it.
        ("**.go", "a/b.go", true),
        ("**.go", "b.go", true),
        ("**.go", "b.goo", false),
        ("**/foo", "foo", true),
        ("**/foo", "a/b/foo", true),
        ("**/foo", "a/bfoo", false),
        ("**foo", "a/bfoo", true),
        ("**/*.go", "a/bgo", false),
        // Exceptions under excluded folders.
        ("build\n!build/keep.txt", "build/keep.txt", false),
        ("build\n!build/keep.txt", "build/other.txt", true),
        ("build\n!build/keep.txt", "build", true),
        ("build/*\n!build/sub", "build/sub/deep/file", false),
        // Classes, escapes, comments.
        ("[a-c]x", "bx", true),
        ("[a-c]x", "dx", false),
        ("[^a-c]x", "dx", true),
        ("[^a-c]x", "ax", false),
        ("[!a]x", "!x", true),
        ("[!a]x", "bx", false),
        ("\\*x", "*x", true),
        ("\\*x", "ax", false),
        ("# comment\nfoo", "# comment", false),
        (" #foo", "#foo", true),
        ("  spaced  ", "spaced", true),
        ("\u{feff}bom", "bom", true),
        ("*", "x/y", true),
        ("", "x", false),
    ];

    #[test]
    fn dockerignore_table() {
        for (text, path, want) in TABLE {
            let m = Matcher::parse(text).unwrap();
            assert_eq!(m.excluded(path), *want, "patterns {text:?}, path {path:?}");
            // The walker's incremental form agrees.
            let mut flags = vec![false; m.patterns().len()];
            let mut prefix = String::new();
            let mut got = false;
            for part in path.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                let (ex, next) = m.excluded_below(&prefix, &flags);
                got = ex;
                flags = next;
            }
            assert_eq!(
                got, *want,
                "excluded_below: patterns {text:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn bad_patterns_name_their_line() {
        for (text, line) in [
            ("ok\n!\n", 2),
            ("ok\n  !  \n", 2),
            ("a\nb\n[abc", 3),
            ("[]", 1),
            ("x\\", 1),
            ("[z-a]", 1),
        ] {
            match Matcher::parse(text) {
                Err(IgnoreError::Pattern { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let err = Matcher::parse("!").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains('!'), "{err}");
    }

    #[test]
    fn may_reinclude_under_prunes_only_unreachable_folders() {
        let m = Matcher::parse("build\nnode_modules\n!build/keep.txt\n!**/*.keep").unwrap();
        assert!(m.may_reinclude_under("build"));
        assert!(
            m.may_reinclude_under("node_modules"),
            "`**` reaches everywhere"
        );
        let m = Matcher::parse("build\nnode_modules\n!build/keep.txt").unwrap();
        assert!(m.may_reinclude_under("build"));
        assert!(!m.may_reinclude_under("node_modules"));
        assert!(!m.may_reinclude_under("build/sub"));
        let m = Matcher::parse("a\n!a/*/c").unwrap();
        assert!(m.may_reinclude_under("a"));
        assert!(m.may_reinclude_under("a/x"));
        assert!(!m.may_reinclude_under("b"));
        let m = Matcher::parse("a/b\n!a").unwrap();
        assert!(m.may_reinclude_under("a/b"), "an exception on a parent");
        let m = Matcher::parse("*").unwrap();
        assert!(!m.may_reinclude_under("x"));
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./a", "a"),
            ("a/../b", "b"),
            ("a//b/", "a/b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("/a/./b/..", "/a"),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn load_prefers_the_dockerfile_specific_file() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        fs::write(ctx.join(".dockerignore"), "general").unwrap();
        fs::create_dir(ctx.join("docker")).unwrap();
        let dockerfile = ctx.join("docker/app.Dockerfile");
        fs::write(&dockerfile, "FROM scratch").unwrap();
        let m = load_for(ctx, &dockerfile).unwrap();
        assert!(m.excluded("general"));
        fs::write(ctx.join("docker/app.Dockerfile.dockerignore"), "specific").unwrap();
        let m = load_for(ctx, &dockerfile).unwrap();
        assert!(m.excluded("specific") && !m.excluded("general"));
        fs::write(ctx.join("docker/app.Dockerfile.dockerignore"), "ok\n[").unwrap();
        let err = load_for(ctx, &dockerfile).unwrap_err();
        assert!(matches!(err, IgnoreError::InFile { .. }));
        assert!(
            err.to_string().contains("app.Dockerfile.dockerignore"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        let m = load_for(empty.path(), &empty.path().join("Dockerfile")).unwrap();
        assert!(m.is_empty());
    }
}

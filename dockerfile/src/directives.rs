//! Parser directives: the `# key=value` lines at the very top of a
//! Dockerfile (`syntax`, `escape`, `check`), read as Docker reads them.

use std::ops::Range;

use crate::error::{DockerfileError, ErrorCode};

/// The parser directives found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Directives {
    pub escape: Option<(char, Range<usize>)>,
    pub syntax: Option<(String, Range<usize>)>,
}

/// Reads the directives at the start of `source` (whose first `base` bytes,
/// a byte order mark, are already skipped). Directive lines stop at the
/// first line that is not `# known-key=value`, as in Docker: a blank line, a
/// plain comment or an unknown key ends them.
pub(crate) fn read(name: &str, source: &str, base: usize) -> Result<Directives, DockerfileError> {
    let mut directives = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    let mut offset = base;
    for raw in source[base..].split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let Some(rest) = line.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric());
        let value_trimmed = value.trim();
        if !valid_key || value_trimmed.is_empty() {
            break;
        }
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        let value_start =
            line_start + 1 + rest.len() - value.len() + (value.len() - value.trim_start().len());
        let span = value_start..value_start + value_trimmed.len();
        if seen.contains(&key) {
            return Err(DockerfileError::new(
                ErrorCode::BadDirective,
                format!("only one `{key}` parser directive can be used"),
                name,
                source,
                line_start..line_start + line.len(),
            )
            .with_help("remove the repeated directive"));
        }
        seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                let escape = match value_trimmed {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(DockerfileError::new(
                            ErrorCode::BadDirective,
                            format!("invalid escape character `{other}`"),
                            name,
                            source,
                            span,
                        )
                        .with_help("the escape directive takes `\\` or `` ` ``"));
                    }
                };
                directives.escape = Some((escape, span));
            }
            "syntax" => {
                check_syntax(name, source, value_trimmed, span.clone())?;
                directives.syntax = Some((value_trimmed.to_owned(), span));
            }
            // `# check=` only selects which build checks (lint rules) report
            // warnings or fail the build; it changes nothing in what is
            // built, and servin has no build checks, so it is accepted and
            // ignored.
            _ => {}
        }
    }
    Ok(directives)
}

/// Accepts Docker's own Dockerfile frontend, version 1.x (`docker/dockerfile`,
/// `docker/dockerfile:1`, `:1.7`, `:1.7.1`, `:1-labs`, with or without
/// `docker.io/` and a `@sha256:` pin); refuses any other frontend image.
fn check_syntax(
    name: &str,
    source: &str,
    value: &str,
    span: Range<usize>,
) -> Result<(), DockerfileError> {
    if is_docker_dockerfile_v1(value) {
        return Ok(());
    }
    Err(DockerfileError::new(
        ErrorCode::UnsupportedSyntax,
        format!("servin builds with its own Dockerfile frontend and cannot run the frontend image `{value}`"),
        name,
        source,
        span,
    )
    .with_label("frontend image")
    .with_help("use `# syntax=docker/dockerfile:1`, or remove the line"))
}

fn is_docker_dockerfile_v1(value: &str) -> bool {
    let reference = match value.split_once('@') {
        Some((reference, digest)) => {
            let Some(hex) = digest.strip_prefix("sha256:") else {
                return false;
            };
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return false;
            }
            reference
        }
        None => value,
    };
    let reference = reference
        .strip_prefix("docker.io/")
        .or_else(|| reference.strip_prefix("index.docker.io/"))
        .unwrap_or(reference);
    let Some(rest) = reference.strip_prefix("docker/dockerfile") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(tag) = rest.strip_prefix(':') else {
        return false;
    };
    let version = tag.strip_suffix("-labs").unwrap_or(tag);
    let mut parts = version.split('.');
    if parts.next() != Some("1") {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    rest.len() <= 2
        && rest
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn syntax_values() {
        let sha = format!("@sha256:{}", "a".repeat(64));
        let accepted = [
            "docker/dockerfile".to_owned(),
            "docker/dockerfile:1".to_owned(),
            "docker/dockerfile:1.7".to_owned(),
            "docker/dockerfile:1.7.1".to_owned(),
            "docker/dockerfile:1-labs".to_owned(),
            "docker/dockerfile:1.7-labs".to_owned(),
            "docker.io/docker/dockerfile:1".to_owned(),
            format!("docker/dockerfile:1{sha}"),
        ];
        for value in accepted {
            assert!(is_docker_dockerfile_v1(&value), "{value}");
        }
        let refused = [
            "docker/dockerfile:2",
            "docker/dockerfile:0.9",
            "docker/dockerfile-upstream:1",
            "tonistiigi/dockerfile:1",
            "docker/dockerfile:1.x",
            "docker/dockerfile:1@sha256:abc",
            "example.com/frontend",
        ];
        for value in refused {
            assert!(!is_docker_dockerfile_v1(value), "{value}");
        }
    }

    #[test]
    fn directives_stop_at_first_other_line() {
        let source = "# escape=`\n\n# syntax=foo/bar\nFROM x\n";
        let directives = read("Dockerfile", source, 0).unwrap();
        assert_eq!(directives.escape.map(|(c, _)| c), Some('`'));
        assert_eq!(directives.syntax, None);
    }

    #[test]
    fn directive_keys_are_case_insensitive_and_check_is_ignored() {
        let source = "#SYNTAX = docker/dockerfile:1\n# check=skip=all\n# Escape=\\\nFROM x\n";
        let directives = read("Dockerfile", source, 0).unwrap();
        assert_eq!(
            directives.syntax.map(|(s, _)| s),
            Some("docker/dockerfile:1".to_owned())
        );
        assert_eq!(directives.escape.map(|(c, _)| c), Some('\\'));
    }

    #[test]
    fn repeated_directive_is_refused() {
        let source = "# escape=`\n# escape=\\\nFROM x\n";
        let error = read("Dockerfile", source, 0).unwrap_err();
        assert_eq!(error.kind(), ErrorCode::BadDirective);
        assert_eq!((error.line(), error.column()), (2, 1));
    }
}

//! The one ignore matcher of a workspace, with gitignore semantics, used
//! by the initial copy, the watcher and the rebuild trigger alike.
//!
//! Rules, later ones winning as in git: the source's `.gitignore`, its
//! `.servinignore`, then the workspace's `ignore` list; after them the
//! rules that always hold (so no `!pattern` undoes them): `.git/` and the
//! temporary files of editors (vim's swap files and its `4913` probe,
//! `*~` backups, JetBrains' `___jb_tmp___` and `___jb_old___`, emacs'
//! `.#` lock links).

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Patterns that always apply.
pub const ALWAYS: &[&str] = &[
    ".git/",
    "*.swp",
    "*.swo",
    "*.swx",
    "*.sw?",
    "4913",
    "*~",
    "*___jb_tmp___",
    "*___jb_old___",
    ".#*",
];

/// What cannot become a matcher; names the file or pattern.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    /// A rule file that cannot be read or holds a bad pattern.
    #[error("ignore rules in {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A bad pattern in the workspace's `ignore` list.
    #[error("workspace ignore pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
}

/// Decides which paths of a workspace source are left out.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: PathBuf,
    rules: Gitignore,
}

impl Matcher {
    /// The matcher of the source folder `root` with the workspace's
    /// `ignore` patterns.
    pub fn new(root: &Path, patterns: &[String]) -> Result<Self, MatcherError> {
        let mut b = GitignoreBuilder::new(root);
        for name in [".gitignore", ".servinignore"] {
            let path = root.join(name);
            if path.is_file()
                && let Some(e) = b.add(&path)
            {
                return Err(MatcherError::File {
                    path,
                    message: e.to_string(),
                });
            }
        }
        for p in patterns {
            b.add_line(None, p).map_err(|e| MatcherError::Pattern {
                pattern: p.clone(),
                message: e.to_string(),
            })?;
        }
        for p in ALWAYS {
            b.add_line(None, p).map_err(|e| MatcherError::Pattern {
                pattern: (*p).to_string(),
                message: e.to_string(),
            })?;
        }
        let rules = b.build().map_err(|e| MatcherError::File {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Self {
            root: root.to_path_buf(),
            rules,
        })
    }

    /// The source folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `rel` (relative to the source, `/`-separated) is left out,
    /// itself or through one of its parent folders.
    pub fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        if rel.is_empty() {
            return false;
        }
        self.rules
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
    }

    /// Whether a change to the rule files themselves means the rules must
    /// be read again.
    pub fn is_rule_file(rel: &str) -> bool {
        matches!(rel, ".gitignore" | ".servinignore")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn matcher(gitignore: Option<&str>, servinignore: Option<&str>, list: &[&str]) -> Matcher {
        let dir = tempfile::tempdir().unwrap();
        if let Some(g) = gitignore {
            std::fs::write(dir.path().join(".gitignore"), g).unwrap();
        }
        if let Some(s) = servinignore {
            std::fs::write(dir.path().join(".servinignore"), s).unwrap();
        }
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        let m = Matcher::new(dir.path(), &list).unwrap();
        // The rules are read; the folder may go.
        drop(dir);
        m
    }

    #[test]
    fn editor_files_and_git_are_always_ignored() {
        let m = matcher(None, None, &["!.git/"]);
        for p in [
            ".git/HEAD",
            "src/.main.rs.swp",
            "src/.main.rs.swx",
            "src/4913",
            "notes.txt~",
            "src/main.rs___jb_tmp___",
            "src/main.rs___jb_old___",
            "src/.#main.rs",
        ] {
            assert!(m.ignored(p, false), "{p} is synced");
        }
        assert!(m.ignored(".git", true));
        for p in ["src/main.rs", "gitignore", "src/a.swift", "4913.txt"] {
            assert!(!m.ignored(p, false), "{p} is ignored");
        }
    }

    #[test]
    fn gitignore_servinignore_and_the_list_combine() {
        let m = matcher(
            Some("target/\n*.log\n"),
            Some("!keep.log\nsecret.txt\n"),
            &["node_modules/", "/build"],
        );
        assert!(m.ignored("target/debug/app", false));
        assert!(m.ignored("sub/target", true));
        assert!(m.ignored("a.log", false));
        assert!(!m.ignored("keep.log", false));
        assert!(m.ignored("secret.txt", false));
        assert!(m.ignored("web/node_modules/x/index.js", false));
        assert!(m.ignored("build/out.o", false));
        assert!(!m.ignored("src/build/out.o", false));
        assert!(!m.ignored("src/main.rs", false));
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = Matcher::new(dir.path(), &["x[z-a]".to_string()]).unwrap_err();
        assert!(e.to_string().contains("\"x[z-a]\""), "{e}");
    }
}

//! Scanning a workspace source: every folder, file and link the matcher
//! lets through, with what the index compares (size, modification time,
//! inode, mode). Ignored folders are not entered. Links are read, never
//! followed; one that points outside the source is refused.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde::{Deserialize, Serialize};

use super::matcher::Matcher;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// One path of the source as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// The inode number.
    pub ino: u64,
    /// The target (links).
    pub target: Option<String>,
}

/// A scanned source: the paths to sync, and the ones refused with why.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
    pub refused: Vec<(String, String)>,
}

/// Reads the matcher's root and everything below it. A path that cannot be read is refused by name and the rest goes on.
pub fn scan(matcher: &Matcher) -> Tree {
    let mut t = Tree::default();
    walk(matcher, "", &mut t);
    t
}

/// Everything below the folder `rel`.
pub fn scan_below(matcher: &Matcher, rel: &str) -> Tree {
    let mut t = Tree::default();
    walk(matcher, rel, &mut t);
    t
}

/// The node of one path (`None` when it is gone or ignored); a refusal
/// is recorded in `refused`.
pub fn node(matcher: &Matcher, rel: &str, refused: &mut Vec<(String, String)>) -> Option<Node> {
    let path = matcher.root().join(rel);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    let ft = meta.file_type();
    if matcher.ignored(rel, ft.is_dir()) {
        return None;
    }
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        refused.push((
            rel.to_string(),
            "not a file, folder or symbolic link: not synced".to_string(),
        ));
        return None;
    };
    let target = if kind == Kind::Symlink {
        let t = match std::fs::read_link(&path) {
            Ok(t) => t,
            Err(e) => {
                refused.push((rel.to_string(), format!("read the link: {e}")));
                return None;
            }
        };
        let Some(t) = t.to_str().map(str::to_string) else {
            refused.push((
                rel.to_string(),
                "the link's target is not UTF-8".to_string(),
            ));
            return None;
        };
        if let Err(why) = link_stays_inside(rel, &t) {
            refused.push((rel.to_string(), why));
            return None;
        }
        Some(t)
    } else {
        None
    };
    Some(Node {
        kind,
        mode: meta.permissions().mode() & 0o7777,
        size: if kind == Kind::File { meta.len() } else { 0 },
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ino: meta.ino(),
        target,
    })
}

fn walk(matcher: &Matcher, rel: &str, t: &mut Tree) {
    let dir = matcher.root().join(rel);
    let read = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) => {
            let shown = if rel.is_empty() { "." } else { rel };
            t.refused
                .push((shown.to_string(), format!("read the folder: {e}")));
            return;
        }
    };
    let mut names: Vec<String> = Vec::new();
    for item in read.flatten() {
        match item.file_name().into_string() {
            Ok(n) => names.push(n),
            Err(n) => t.refused.push((
                join(rel, &n.to_string_lossy()),
                "the name is not UTF-8: not synced".to_string(),
            )),
        }
    }
    names.sort();
    for name in names {
        let child = join(rel, &name);
        let Some(n) = node(matcher, &child, &mut t.refused) else {
            continue;
        };
        let is_dir = n.kind == Kind::Dir;
        t.nodes.insert(child.clone(), n);
        if is_dir {
            walk(matcher, &child, t);
        }
    }
}

/// `parent/name`, or `name` at the top.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Whether a link at `rel` pointing at `target` stays inside the source;
/// says why not.
pub fn link_stays_inside(rel: &str, target: &str) -> Result<(), String> {
    if target.starts_with('/') {
        return Err(format!(
            "the symbolic link points at {target}, outside the workspace source (an absolute path): not synced"
        ));
    }
    let mut depth: Vec<&str> = rel.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return Err(format!(
                        "the symbolic link points at {target}, outside the workspace source: not synced"
                    ));
                }
            }
            p => depth.push(p),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn links_inside_are_kept_and_escapes_refused() {
        assert!(link_stays_inside("a/b", "c").is_ok());
        assert!(link_stays_inside("a/b", "../c").is_ok());
        assert!(link_stays_inside("a/b/c", "../../d/e").is_ok());
        assert!(link_stays_inside("a/b", "../../c").is_err());
        assert!(link_stays_inside("b", "../c").is_err());
        assert!(link_stays_inside("b", "/etc/passwd").is_err());
        assert!(link_stays_inside("a/b", "x/../../../c").is_err());
    }

    #[test]
    fn scan_skips_ignored_folders_and_refuses_escaping_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("node_modules/x")).unwrap();
        std::fs::write(root.join("src/a.js"), "a").unwrap();
        std::fs::write(root.join("node_modules/x/i.js"), "i").unwrap();
        std::fs::write(root.join("src/.a.js.swp"), "swap").unwrap();
        std::os::unix::fs::symlink("a.js", root.join("src/link")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let m = Matcher::new(root, &["node_modules/".to_string()]).unwrap();
        let t = scan(&m);
        let paths: Vec<&str> = t.nodes.keys().map(String::as_str).collect();
        assert_eq!(paths, ["src", "src/a.js", "src/link"]);
        assert_eq!(t.nodes["src/link"].target.as_deref(), Some("a.js"));
        assert_eq!(t.refused.len(), 1);
        assert_eq!(t.refused[0].0, "etc");
        assert!(t.refused[0].1.contains("outside the workspace source"));
    }
}

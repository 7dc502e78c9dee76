//! Deciding a batch: the index (what the engine holds) against the tree
//! (what the source holds). Pure.

use std::collections::BTreeMap;

use super::index::Entry;
use super::tree::{Kind, Node};

/// What a batch must do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Paths to remove: gone from the source, or of another kind now.
    /// Only the topmost of a removed folder is named.
    pub delete: Vec<String>,
    /// Paths to write, parents before children.
    pub put: Vec<String>,
    /// Files whose stat changed but whose size did not: their content is
    /// hashed and written only when its digest differs.
    pub check: Vec<String>,
}

impl Diff {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.put.is_empty() && self.check.is_empty()
    }
}

/// The batch that takes `index` to `tree`, looking only at `scope`
/// (`None`: every path; else these paths, with what is below them).
pub fn diff(
    index: &BTreeMap<String, Entry>,
    tree: &BTreeMap<String, Node>,
    scope: Option<&[String]>,
) -> Diff {
    let in_scope = |p: &str| match scope {
        None => true,
        Some(s) => s.iter().any(|r| under(p, r)),
    };
    let mut d = Diff::default();
    for (path, e) in index {
        if !in_scope(path) {
            continue;
        }
        let gone = match tree.get(path) {
            None => true,
            Some(n) => n.kind != e.kind,
        };
        if gone && !d.delete.iter().any(|top| under(path, top)) {
            d.delete.push(path.clone());
        }
    }
    for (path, n) in tree {
        if !in_scope(path) {
            continue;
        }
        match index.get(path) {
            Some(e) if e.kind == n.kind => match n.kind {
                Kind::Dir => {
                    if e.mode != n.mode {
                        d.put.push(path.clone());
                    }
                }
                Kind::Symlink => {
                    if e.target != n.target {
                        d.put.push(path.clone());
                    }
                }
                Kind::File => {
                    if e.same_stat(n) {
                    } else if e.size == n.size && e.digest.is_some() {
                        d.check.push(path.clone());
                    } else {
                        d.put.push(path.clone());
                    }
                }
            },
            _ => d.put.push(path.clone()),
        }
    }
    d
}

/// Whether `path` is `top` or below it.
pub fn under(path: &str, top: &str) -> bool {
    path == top
        || (path.len() > top.len() && path.starts_with(top) && path.as_bytes()[top.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, mtime: i64) -> Node {
        Node {
            kind: Kind::File,
            mode: 0o644,
            size,
            mtime_ns: mtime,
            ino: 7,
            target: None,
        }
    }

    fn dir() -> Node {
        Node {
            kind: Kind::Dir,
            mode: 0o755,
            size: 0,
            mtime_ns: 1,
            ino: 2,
            target: None,
        }
    }

    fn sent(n: &Node) -> Entry {
        Entry::of(n, Some(&format!("sha256:{}", "00".repeat(32))))
    }

    #[test]
    fn nothing_changed_is_an_empty_batch() {
        let tree: BTreeMap<_, _> = [("a".to_string(), file(3, 10)), ("d".to_string(), dir())]
            .into_iter()
            .collect();
        let index = tree.iter().map(|(k, v)| (k.clone(), sent(v))).collect();
        assert!(diff(&index, &tree, None).is_empty());
    }

    #[test]
    fn new_changed_removed_and_retyped_paths() {
        let index: BTreeMap<String, Entry> = [
            ("same", file(3, 10)),
            ("touched", file(3, 10)),
            ("grown", file(3, 10)),
            ("gone", dir()),
            ("gone/a", file(1, 1)),
            ("gone/b", file(1, 1)),
            ("retyped", file(1, 1)),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), sent(v)))
        .collect();
        let tree: BTreeMap<String, Node> = [
            ("same", file(3, 10)),
            ("touched", file(3, 11)),
            ("grown", file(4, 11)),
            ("new", file(1, 1)),
            ("retyped", dir()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let d = diff(&index, &tree, None);
        assert_eq!(d.delete, ["gone", "retyped"]);
        assert_eq!(d.put, ["grown", "new", "retyped"]);
        assert_eq!(d.check, ["touched"]);
        // Scoped to one folder, only it is looked at.
        let d = diff(&index, &tree, Some(&["gone".to_string()]));
        assert_eq!(d.delete, ["gone"]);
        assert!(d.put.is_empty() && d.check.is_empty());
    }

    #[test]
    fn under_is_by_component() {
        assert!(under("a/b", "a"));
        assert!(under("a", "a"));
        assert!(!under("ab", "a"));
        assert!(!under("a", "a/b"));
    }
}
